"""How every command shows its results: rich tables, one JSON document, times, a new API key shown once.

Commands choose their columns and fields; the look of them is decided here, once for all.
"""

import json
import sys
from datetime import datetime, timezone

from rich.console import Console
from rich.table import Table


def iso(timestamp: float | None) -> str | None:
    """Return a Unix time as ISO 8601 UTC to the second (`2026-01-31T12:00:00Z`: Z is the zero offset), for JSON,
    every command's the same; None stays None."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def local(timestamp: float | None) -> str:
    """Return a Unix time in the operator's time zone to the minute, the zone shown (`2026-01-31 13:00 CET`), for
    tables; a dash for none."""
    if timestamp is None:
        return "—"
    return datetime.fromtimestamp(timestamp).astimezone().strftime("%Y-%m-%d %H:%M %Z")


def print_json(document) -> None:
    """Print one JSON document on stdout (not through rich, which would colour or wrap it)."""
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def print_new_key(console: Console, heading: str, api_key: str) -> None:
    """Print a new API key the one time it can be shown, with a heading saying whose it is."""
    console.print(heading)
    console.print("The API key is shown only this once; give it to the customer for their .env file:")
    # Plain print: rich would wrap or highlight a long token, and this line is meant to be copied whole.
    print(f"\nVIGINT_API_KEY={api_key}\n")


def table(title: str, columns: tuple[str, ...], rows: list[tuple[str, ...]],
          right: frozenset[str] = frozenset()) -> Table:
    """Return a table of `rows` under `columns`; the columns named in `right` (numbers) are right-aligned."""
    result = Table(title=title)
    for column in columns:
        result.add_column(column, justify="right" if column in right else "left")
    for row in rows:
        result.add_row(*row)
    return result


def listing(as_json: bool, console: Console, documents: list[dict], title: str, columns: tuple[str, ...],
            rows: list[tuple[str, ...]], right: frozenset[str] = frozenset()) -> int:
    """Print `documents` as one JSON document if `as_json`, else `rows` as a table; return exit code 0."""
    if as_json:
        print_json(documents)
    else:
        console.print(table(title, columns, rows, right))
    return 0
