"""Live-view tickets and passes, fed values as a request would carry them."""

from vigint.web.livetickets import TICKET_SECONDS, Grant, camera_pass, read_pass, read_ticket, ticket

SECRET = "s" * 64
SESSION = "a" * 64
NOW = 1_800_000_000.0


def test_a_ticket_opens_its_camera_for_a_minute_only():
    given = ticket(SECRET, 7, "shop", SESSION, NOW)
    assert read_ticket(SECRET, given, "shop", NOW + TICKET_SECONDS) == Grant(7, SESSION)
    assert read_ticket(SECRET, given, "shop", NOW + TICKET_SECONDS + 1) is None
    assert read_ticket(SECRET, given, "yard", NOW) is None
    assert read_ticket("t" * 64, given, "shop", NOW) is None


def test_an_altered_or_malformed_ticket_or_pass_is_refused_without_raising():
    given = ticket(SECRET, 7, "shop", SESSION, NOW)
    client, expires, session, signature = given.split(".")
    for altered in (f"8.{expires}.{session}.{signature}",
                    f"{client}.{int(expires) + 1}.{session}.{signature}",
                    f"{client}.{expires}.{'b' * 64}.{signature}", given + "0", "", "é" * 10, "1." * 5000):
        assert read_ticket(SECRET, altered, "shop", NOW) is None
        assert read_pass(SECRET, altered, "shop") is None


def test_a_pass_is_its_cameras_and_no_ticket():
    grant = Grant(7, SESSION)
    value = camera_pass(SECRET, grant, "shop")
    assert read_pass(SECRET, value, "shop") == grant
    assert read_pass(SECRET, value, "shop/x") is None and read_pass(SECRET, value, "yard") is None
    client, session, signature = value.split(".")
    assert read_ticket(SECRET, f"{client}.0.{session}.{signature}", "shop", 0) is None
    assert SESSION not in repr(grant)
