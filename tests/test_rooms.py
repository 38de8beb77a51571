"""The code map's rules hold: sizes, and which rooms import which (see scripts/rooms.py and the README)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

import rooms  # noqa: E402 - a script, found through the path set above


def test_every_module_and_function_is_small_and_no_room_imports_what_it_must_not():
    assert rooms.violations() == []


def test_the_rules_see_imports_of_every_form(tmp_path):
    module = tmp_path / "example.py"
    module.write_text("import vigint.ingest.server\nfrom vigint.store import records\nfrom vigint import protocol\n"
                      "from vigint.analysis.pipeline import StreamAnalysis\n")
    assert rooms.imported_rooms(module) == {"ingest", "store", "shared", "analysis"}


def test_the_map_shows_the_composition_root_above_the_rooms_it_wires_and_none_importing_it(capsys):
    rooms.main()
    order = [line.split()[0] for line in capsys.readouterr().out.splitlines() if line and not line[0].isspace()]
    assert order.index("serve") > max(order.index("ingest"), order.index("web"))
    # Every room with a rule forbids serve: only the command line and serve itself may import anything.
    assert all("serve" in forbidden for forbidden in rooms.FORBIDDEN.values() if forbidden)
    assert {"web", "serve"} <= rooms.FORBIDDEN["ingest"] and "ingest" in rooms.FORBIDDEN["web"]
