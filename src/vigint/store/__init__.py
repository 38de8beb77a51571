"""The store: every SQL statement Vigint runs lives in this package, behind the one `Store` facade.

Open it with ``await Store.open(path_or_url)``; rows come back as the small frozen dataclasses of `records`
(re-exported here); nothing here formats output or generates keys. The rooms:

- `records`: the record dataclasses and the enums of domain states (pure, no SQL).
- `engine`: which database, transactions, `is_busy`; its backends `sqlite` (the embedded default) and
  `postgres` (shared by several nodes); `migrations`: the schema, the same for both.
- one query module per concern: `clients` (clients and keys), `audit`, `usage`, `incidents` (with the
  alert outbox), `invoices`, `fleet` (cameras, flags), `nodes` (the stream registry, node snapshots, job
  leases), `pages` (what a client's own page reads: sign-in links, sessions, its rows only), `handovers`
  (keys handed over by a one-time link), `deadletters` (alerts given up), `footage` (live footage received,
  resent footage refused), `cameras` (each customer's camera settings: schedule, masks, sensitivity, mute).
  To add a query, add a method to its concern's class; to add a concern, add a module and its class to
  `Store`'s bases.
- `copy`: every table of a SQLite store into an empty PostgreSQL one (`vigint db copy`), beside the facade.
"""

from vigint.store.audit import AuditQueries
from vigint.store.cameras import CameraQueries, CameraSetting, Editor
from vigint.store.clients import ClientQueries
from vigint.store.deadletters import DeadLetterQueries
from vigint.store.engine import BUSY_TIMEOUT_MS, is_busy
from vigint.store.fleet import FleetQueries
from vigint.store.footage import FootageQueries, LiveSpan
from vigint.store.handovers import HandoverQueries
from vigint.store.incidents import IncidentQueries
from vigint.store.invoices import InvoiceQueries
from vigint.store.migrations import MIGRATIONS
from vigint.store.nodes import NodeQueries
from vigint.store.pages import Listed, PageQueries
from vigint.store.records import (
    Alert,
    AlertState,
    ApiKey,
    AuditEntry,
    CameraRecord,
    Channel,
    Claim,
    Client,
    ClientStatus,
    Flag,
    FlagKind,
    Handover,
    Incident,
    Invoice,
    KeyState,
    Line,
    Node,
    Review,
    ReviewMark,
    StreamEntry,
    UsageDelta,
    UsageRow,
    Verdict,
)
from vigint.store.usage import UsageQueries

__all__ = [
    "BUSY_TIMEOUT_MS", "MIGRATIONS", "Alert", "AlertState", "ApiKey", "AuditEntry", "CameraRecord",
    "CameraSetting", "Channel", "Claim", "Client", "ClientStatus", "Editor", "Flag", "FlagKind", "Handover",
    "Incident", "Invoice", "KeyState", "Line", "Listed", "LiveSpan", "Node", "Review", "ReviewMark", "Store",
    "StreamEntry", "UsageDelta", "UsageRow", "Verdict", "is_busy",
]


class Store(ClientQueries, AuditQueries, UsageQueries, IncidentQueries, InvoiceQueries, FleetQueries,
            NodeQueries, PageQueries, HandoverQueries, DeadLetterQueries, FootageQueries, CameraQueries):
    """An open database. Use `await Store.open(path)` (or ``async with await Store.open(path)``)."""
