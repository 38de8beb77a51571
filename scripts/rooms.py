"""Print Vigint's code map as the code sees it: each room's size and which rooms it imports.

Also the rules the README's code map states, checked by tests/test_rooms.py: no module over 400 lines,
no function over 60, and no room importing a room it must not (a later stage from an earlier one, the
agent from the server's rooms). Run: python scripts/rooms.py
"""

import ast
import sys
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "vigint"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
SERVER_ROOMS = {"serve", "ingest", "analysis", "incidents", "alerts", "fleet", "store", "billing", "web"}
# What each room must not import: stages run ingest → analysis → incidents → alerts, and each hands its
# work on; the fleet watches streams it is given; store and billing serve every stage and import none; the
# customer's page (web) reads what the stages recorded, through the store and the clip storage, and sits
# beside ingest (one connection's path): neither imports the other; serve, the composition root of
# `vigint serve`, builds them all and may import anything, but no room imports it back;
# shared modules (vigint/*.py) import no room; the agent runs on the customer's host and shares only them.
FORBIDDEN = {
    "shared": SERVER_ROOMS | {"cli", "agent"},
    "store": SERVER_ROOMS - {"store"} | {"cli", "agent"},
    "billing": SERVER_ROOMS - {"billing", "store"} | {"cli", "agent"},
    "analysis": SERVER_ROOMS - {"analysis"} | {"cli", "agent"},
    "alerts": {"serve", "ingest", "analysis", "incidents", "fleet", "web", "cli", "agent"},
    "incidents": {"serve", "ingest", "fleet", "web", "cli", "agent"},
    "fleet": {"serve", "ingest", "analysis", "incidents", "web", "cli", "agent"},
    "web": {"serve", "ingest", "analysis", "fleet", "cli", "agent"},
    "ingest": {"serve", "web", "cli", "agent"},
    "serve": set(),
    "agent": SERVER_ROOMS | {"cli"},
    "cli": set(),
}


def room(path: Path) -> str:
    """Return the room of a module: its folder under vigint/, or "shared" for vigint/*.py (but `python -m
    vigint`, which only runs the command line, is the cli room's)."""
    if path == PACKAGE / "__main__.py":
        return "cli"
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else "shared"


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def imported_rooms(path: Path) -> set[str]:
    """Return the rooms a module imports (by `import vigint.x` or `from vigint.x import`), its own
    included."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("vigint"):
            names = [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names if alias.name.startswith("vigint")]
        for name in names:
            first = name.split(".")[1] if "." in name else ""
            found.add(first if (PACKAGE / first).is_dir() and first else "shared")
    return found


def long_functions(path: Path) -> list[str]:
    """Return `name (N lines)` for each function of a module longer than MAX_FUNCTION_LINES."""
    return [f"{path.relative_to(PACKAGE)}:{node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]


def violations() -> list[str]:
    """Return every broken rule, one line each."""
    found = []
    for path in modules():
        lines = len(path.read_text().splitlines())
        if lines > MAX_MODULE_LINES:
            found.append(f"{path.relative_to(PACKAGE)} has {lines} lines (at most {MAX_MODULE_LINES})")
        found += [f"{name} is over {MAX_FUNCTION_LINES} lines" for name in long_functions(path)]
        for target in sorted(imported_rooms(path) & FORBIDDEN[room(path)]):
            found.append(f"{path.relative_to(PACKAGE)} ({room(path)}) imports {target}")
    return found


def main() -> int:
    graph = defaultdict(set)
    sizes = defaultdict(int)
    for path in modules():
        sizes[room(path)] += len(path.read_text().splitlines())
        graph[room(path)] |= imported_rooms(path) - {room(path)}
    for name in sorted(graph, key=lambda r: list(FORBIDDEN).index(r)):
        print(f"{name:10} {sizes[name]:5} lines  imports: {', '.join(sorted(graph[name])) or '-'}")
    problems = violations()
    print("\n".join(problems) or "every rule holds")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
