"""`vigint camera list` and `vigint camera set` through the real command line: settings of cameras that never
streamed, their state now in the client's zone, the audit trail, and hostile values refused with nothing
changed."""

import time
from datetime import UTC, datetime

from helpers import run_vigint


def create(cli, name: str = "Acme", email: str = "ops@acme.test") -> int:
    result = cli("client", "create", "--name", name, "--email", email, "--timezone", "UTC", "--json")
    assert result.code == 0, result.err
    return result.json()["client_id"]


def cameras(cli, client_id: int | None = None) -> dict[str, dict]:
    listed = cli("camera", "list", "--json", *(["--client-id", str(client_id)] if client_id else []))
    assert listed.code == 0, listed.err
    return {f"{camera['client_id']}/{camera['camera']}": camera for camera in listed.json()}


def camera_audit(cli, client_id: int) -> list[str]:
    return [entry["detail"] for entry in cli("audit", "--client-id", str(client_id), "--json").json()
            if entry["action"] == "camera.set"]


def test_a_camera_that_never_streamed_is_set_listed_with_its_state_now_and_audited(cli):
    client_id = create(cli)
    hour = datetime.now(UTC).hour
    armed = f"Mon-Sun {hour:02d}:00-{(hour + 2) % 24:02d}:00"  # armed from this hour on, for two hours
    set_shop = cli("camera", "set", "--client-id", str(client_id), "--camera", "back door", "--armed", armed,
                   "--sensitivity", "0.5", "--mask", "0,0.5,0.25,0.5", "--mask", "0.8,0,0.2,0.2")
    assert set_shop.code == 0, set_shop.err
    assert f"armed until {(hour + 2) % 24:02d}:00 now" in set_shop.out and "masks: 2 masks" in set_shop.out
    client = ("--client-id", str(client_id))
    assert cli("camera", "set", *client, "--camera", "yard", "--mute-minutes", "42").code == 0
    assert cli("camera", "set", *client, "--camera", "cellar", "--armed", "never").code == 0
    listed = cameras(cli, client_id)
    door = listed[f"{client_id}/back door"]
    assert door["streamed"] is False and door["schedule"] == armed and door["armed_now"] is True
    assert door["state"] == f"armed until {(hour + 2) % 24:02d}:00" and door["sensitivity"] == 0.5
    assert door["masks"] == [[[0, 0.5], [0.25, 0.5], [0.25, 1], [0, 1]],
                             [[0.8, 0], [1, 0], [1, 0.2], [0.8, 0.2]]]
    assert door["updated_by"] == "operator"
    assert listed[f"{client_id}/yard"]["state"] in ("muted for 42 min", "muted for 41 min")
    assert listed[f"{client_id}/yard"]["armed_now"] is False and listed[f"{client_id}/yard"]["muted_until"]
    cellar = listed[f"{client_id}/cellar"]
    assert cellar["state"] == "disarmed" and cellar["armed_now"] is False
    table = cli("camera", "list", "--client-id", str(client_id))
    assert "back door" in table.out and "never streamed" in table.out and "muted for 4" in table.out
    back = cli("camera", "set", *client, "--camera", "back door", "--default-sensitivity", "--default-masks",
               "--armed", "always")
    assert back.code == 0 and "sensitivity 1 (operator's)" in back.out
    assert "masks: none (operator's)" in back.out
    assert cli("camera", "set", "--client-id", str(client_id), "--camera", "yard", "--unmute").code == 0
    assert cameras(cli, client_id)[f"{client_id}/yard"]["state"] == "armed"
    assert camera_audit(cli, client_id)[-1].startswith(
        f"camera='back door' by=operator: schedule: 'always' -> '{armed}'; sensitivity: default -> 0.5; "
        "masks: default -> 2 shapes")
    assert len(camera_audit(cli, client_id)) == 5


def test_hostile_or_contradicting_values_are_refused_in_one_line_and_change_nothing(cli):
    client_id = create(cli)
    other = create(cli, "Beta", "b@beta.test")
    assert cli("camera", "set", "--client-id", str(client_id), "--camera", "shop", "--armed", "Sun").code == 0
    before = cameras(cli)
    trail = camera_audit(cli, client_id)
    shop = ("camera", "set", "--client-id", str(client_id), "--camera", "shop")
    cases = {
        (*shop, "--armed", "Mon-Sat 25:00-08:00"): "'Mon-Sat 25:00-08:00': 25:00 is not a time of day",
        (*shop, "--armed", "Mon 20:00-08:00, " * 70_000): "a schedule is at most 500 characters",
        (*shop, "--sensitivity", "nan"): "the sensitivity nan is not a number from 0.1 to 10",
        (*shop, "--sensitivity", "inf", "--armed", "never"): "the sensitivity inf is not a number",
        (*shop, *["--mask", "0,0,0.1,0.1"] * 1_000): "a camera has at most 32 masks (this one has 1,000)",
        (*shop, "--mask", "0.9,0.9,0.5,0.5"): "reaches past the picture's edge",
        (*shop, "--mask", "nan,0,0.1,0.1"): "is not X,Y,W,H",
        (*shop, "--mask", "0,0,0,0.5"): "covers no area",
        (*shop, "--mask", "0,0,1,1", "--no-masks"): "--mask and --no-masks contradict each other",
        (*shop, "--sensitivity", "2", "--default-sensitivity"): "contradict each other",
        (*shop, "--mute-minutes", "20000"): "--mute-minutes is a number of minutes from 1 to 10,080",
        (*shop, "--mute-minutes", "-5"): "--mute-minutes is a number of minutes",
        (*shop, "--mute-minutes", "10", "--unmute"): "contradict each other",
        shop: "nothing to change",
        ("camera", "set", "--client-id", "42", "--camera", "shop", "--armed", "never"):
            "no client with id 42",
        ("camera", "set", "--client-id", str(client_id), "--camera", "../etc", "--armed", "never"):
            "camera names are",
        ("camera", "list", "--client-id", "42"): "no client with id 42",
    }
    for args, message in cases.items():
        result = cli(*args)
        assert result.code == 1, args[:8]
        assert result.err.startswith("vigint: error: ") and message in result.err, result.err[:300]
        assert result.err.count("\n") == 1 and "Traceback" not in result.err
    assert cli(*shop, "--sensitivity", "two").code == 2  # not a number at all: bad usage, as argparse says
    assert cameras(cli) == before and camera_audit(cli, client_id) == trail
    # The other client's camera of the same name is its own: setting it leaves the first client's as it was.
    assert cli("camera", "set", "--client-id", str(other), "--camera", "shop", "--armed", "never").code == 0
    after = cameras(cli)
    assert after[f"{client_id}/shop"] == before[f"{client_id}/shop"]
    assert after[f"{other}/shop"]["armed"] == "never"
    assert camera_audit(cli, client_id) == trail


def test_the_help_documents_the_schedule_with_examples(tmp_path):
    shown = run_vigint("camera", "set", "--help", cwd=tmp_path)
    assert shown.returncode == 0
    assert "always | never | [outside] DAYS" in shown.stdout
    assert 'vigint camera set --client-id 3 --camera shop --armed "Mon-Sat 20:00-08:00, Sun"' in shown.stdout
    assert "camera" in run_vigint("--help", cwd=tmp_path).stdout
    started = time.monotonic()
    assert run_vigint("camera", "list", cwd=tmp_path).returncode == 1  # no database here: said, none created
    assert not (tmp_path / "vigint.db").exists() and time.monotonic() - started < 30
