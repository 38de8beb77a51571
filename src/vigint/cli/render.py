"""How every command shows its results: rich tables, one JSON document, times, a new API key shown once.

Commands choose their columns and fields; the look of them is decided here, once for all.
"""

import json
import sys
from datetime import datetime, timezone

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

UNBOUNDED = 100_000  # columns: wider than any table, to measure one's natural width


def iso(timestamp: float | None) -> str | None:
    """Return a Unix time as ISO 8601 UTC to the second (`2026-01-31T12:00:00Z`: Z is the zero offset), for
    JSON, every command's the same; None stays None."""
    if timestamp is None:
        return None
    text = datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="seconds")
    return text.replace("+00:00", "Z")


def local(timestamp: float | None) -> str:
    """Return a Unix time in the operator's time zone to the minute, the zone shown (`2026-01-31 13:00 CET`),
    for tables; a dash for none."""
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


def print_handover(console: Console, heading: str, link: str, expires_at: float) -> None:
    """Print a new key's one-time hand-over link, under a heading saying whose key it is."""
    console.print(heading)
    console.print(f"Send the customer this link: it shows the key once, until {local(expires_at)}. "
                  "The key works only once the link is opened (`vigint client list` shows when).",
                  highlight=False)
    print(f"\n{link}\n")  # plain print, as for a key: copied whole


def table(title: str, columns: tuple[str, ...], rows: list[tuple[str, ...]],
          right: frozenset[str] = frozenset()) -> Table:
    """Return a table of `rows` under `columns`; the columns named in `right` (numbers) are right-aligned. A
    value too long for its column wraps onto more lines, never cut to "Boul…": a name or key prefix must stay
    whole."""
    result = Table(title=title)
    for column in columns:
        result.add_column(column, justify="right" if column in right else "left", overflow="fold")
    for row in rows:
        result.add_row(*row)
    return result


def fitted(console: Console, title: str, columns: tuple[str, ...], rows: list[tuple[str, ...]],
           right: frozenset[str] = frozenset(), optional: tuple[str, ...] = ()) -> Table:
    """Return the table of `rows`, leaving out the `optional` columns, in that order, while it is wider than
    the console: on an 80-column terminal, fewer columns read better than ten folded ones. A caption says
    which were left out (`--json` has every field)."""
    kept = list(columns)
    unbounded = console.options.update_width(UNBOUNDED)  # its natural width, unwrapped
    for dropped in (None, *optional):
        if dropped is not None:
            kept.remove(dropped)
        shown = table(title, tuple(kept), [tuple(row[columns.index(c)] for c in kept) for row in rows], right)
        if Measurement.get(console, unbounded, shown).maximum <= console.width:
            break
    left_out = [column for column in columns if column not in kept]
    if left_out:
        shown.caption = f"Not shown at this width: {', '.join(left_out)} (--json has every field)"
    return shown


def listing(as_json: bool, console: Console, documents: list[dict], title: str, columns: tuple[str, ...],
            rows: list[tuple[str, ...]], right: frozenset[str] = frozenset(),
            optional: tuple[str, ...] = ()) -> int:
    """Print `documents` as one JSON document if `as_json`, else `rows` as a table that fits the console (see
    `fitted`); return exit code 0."""
    if as_json:
        print_json(documents)
    else:
        console.print(fitted(console, title, columns, rows, right, optional))
    return 0
