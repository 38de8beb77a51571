"""What the store hands out and takes in: small frozen dataclasses and the enums of domain states.

Pure: no SQL and no I/O, so billing, alerts and the server build and read these without a connection.
The enums are StrEnums: a member equals its text, which is also what the database stores.
"""

import enum
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

# Invoices round money to the cent, half up, line by line and for the VAT.
CENT = Decimal("0.01")


class ClientStatus(enum.StrEnum):
    """Whether a client's keys may be used at all."""

    ACTIVE = "active"
    REVOKED = "revoked"


class KeyState(enum.StrEnum):
    """Whether one key authenticates now."""

    ACTIVE = "active"
    REVOKED = "revoked"
    EXPIRED = "expired"  # past its expiry, or its hand-over link died unopened
    AWAITING_PICKUP = "awaiting_pickup"  # handed over by a link not opened yet: refused until it is


class Verdict(enum.StrEnum):
    """What the AI check said about an incident."""

    NOT_CHECKED = "not_checked"  # no AI configured, or not a motion incident (a camera down or back)
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    UNVERIFIED = "unverified"  # the AI was unreachable, answered nonsense, or its hourly limit was reached


class ReviewMark(enum.StrEnum):
    """What the customer, having looked at an incident, says it was."""

    REVIEWED = "reviewed"  # looked at: something worth the alert
    FALSE_ALARM = "false_alarm"  # nothing: a shadow, a tree, the cat (a hint to draw a mask)


@dataclass(frozen=True)
class Review:
    """An incident's review: its mark, the customer's optional note, when, and by whom (an `Editor` value)."""

    mark: ReviewMark
    note: str
    at: float
    by: str


class AlertState(enum.StrEnum):
    """How far an incident's alerts got."""

    PENDING = "pending"  # not judged yet, or outbox rows not all delivered
    DELIVERED = "delivered"
    # not alerted: the AI said no (or could not say, and [ai] says not to alert then)
    SUPPRESSED = "suppressed"
    NONE = "none"  # no alert channel is configured
    # an alert was given up (refused for good, or too many attempts): kept, flagged to the operator
    DEAD = "dead"


class Channel(enum.StrEnum):
    """Where an alert goes."""

    EMAIL = "email"
    WEBHOOK = "webhook"


class FlagKind(enum.StrEnum):
    """What kind of unusual usage (or undeliverable alert) a flag reports."""

    ADDRESSES = "addresses"  # one key streaming from several addresses at once: leaked?
    SPIKE = "spike"  # a key's hourly bytes far over its usual
    HELLOS = "hellos"  # an address blocked after too many refused hellos
    # an alert given up: refused for good, or not delivered after max_attempts
    UNDELIVERABLE = "undeliverable"
    # footage resent for an alerted incident differs from its clip: a stolen key rewriting it?
    EVIDENCE = "evidence"


@dataclass(frozen=True)
class Client:
    """One customer."""

    id: int
    name: str
    email: str
    status: ClientStatus
    created_at: float
    updated_at: float
    timezone: str | None = None  # IANA name for the times in its alerts; None: the server's
    language: str | None = None  # en or fr, for its alerts and page; None: the server's ([alerts] language)
    address: str | None = None  # postal address, printed on its invoices
    vat_id: str | None = None  # VAT number, printed on its invoices


@dataclass(frozen=True)
class ApiKey:
    """One API key's record: its hash stays in the database, only the display prefix comes out."""

    id: int
    client_id: int
    prefix: str
    label: str
    created_at: float
    expires_at: float | None
    revoked_at: float | None
    last_used_at: float | None
    client_status: ClientStatus
    handover_expires_at: float | None = None  # handed over by a one-time link, which works until then
    picked_up_at: float | None = None  # when that link was opened and the key shown

    @property
    def awaits_pickup(self) -> bool:
        """Whether it was handed over by a link that was not opened yet (it may have died since)."""
        return self.handover_expires_at is not None and self.picked_up_at is None

    def state(self, now: float) -> KeyState:
        """Return whether this key authenticates at time `now` (Unix seconds)."""
        if self.revoked_at is not None or self.client_status is not ClientStatus.ACTIVE:
            return KeyState.REVOKED
        if self.awaits_pickup:
            return KeyState.AWAITING_PICKUP if self.handover_expires_at > now else KeyState.EXPIRED
        if self.expires_at is not None and self.expires_at <= now:
            return KeyState.EXPIRED
        return KeyState.ACTIVE


@dataclass(frozen=True)
class Handover:
    """What the database keeps of a one-time link handing a new key over (the link's token derives the key
    with the seal, see `vigint.keys.derive`): never the token, never the key."""

    token_hash: str  # SHA-256 of the link's token: the link is looked up by it
    seal: bytes = field(repr=False)  # erased when the link is used or dies
    expires_at: float


@dataclass(frozen=True)
class AuditEntry:
    """One admin action: what, on which client or key, when. Never a key."""

    id: int
    at: float
    action: str
    client_id: int | None
    key_id: int | None
    detail: str


@dataclass
class UsageDelta:
    """Usage to add to one key's hourly bucket: the meter fills it in memory, the store adds it up."""

    key_id: int
    bucket_start: int
    stream_seconds: float = 0.0
    bytes_received: int = 0
    frames_decoded: int = 0
    ai_calls: int = 0
    ai_tokens: int = 0
    alerts_sent: int = 0
    backfill_bytes: int = 0  # recorded footage received after an outage, apart from live video
    backfill_seconds: float = 0.0  # the footage time of it
    live_view_seconds: float = 0.0  # its cameras watched live on the customers' page, per viewer


@dataclass(frozen=True)
class UsageRow:
    """One key's usage over a period."""

    client_id: int
    client_name: str
    key_id: int
    key_prefix: str
    stream_seconds: float
    bytes_received: int
    frames_decoded: int
    ai_calls: int
    ai_tokens: int
    alerts_sent: int
    incidents: int
    backfill_bytes: int = 0
    backfill_seconds: float = 0.0
    live_view_seconds: float = 0.0


@dataclass(frozen=True)
class Incident:
    """Something that happened in front of a camera, with what was done about it."""

    id: int
    client_id: int
    key_id: int | None
    camera: str
    started_at: float
    ended_at: float | None
    type: str
    description: str
    threat: int
    clip_path: str | None
    verdict: Verdict
    alert_state: AlertState
    offline: bool = False  # found in footage recorded while the camera was offline (sent later: a backfill)
    stills: int = 0  # JPEGs kept beside the clip (`incidents.storage.still_name`), the first its thumbnail
    # the node's run recording it; None once its end, clip, stills, alerts are
    recording_node: str | None = None
    # all recorded (see `incidents.recovery`)
    clip_from: float | None = None  # the capture time of its clip's first frame (the clip's time 0)
    review: Review | None = None  # None: nobody reviewed it yet


@dataclass(frozen=True)
class Alert:
    """One undelivered outbox row, with what delivering it needs."""

    id: int
    channel: Channel
    attempts: int
    incident: Incident
    client_name: str
    client_email: str
    client_timezone: str | None = None  # the client's settings for its alerts; None: the server's
    client_language: str | None = None


@dataclass(frozen=True)
class CameraRecord:
    """A camera that streamed at least once."""

    client_id: int
    camera: str
    last_seen_at: float
    down_since: float | None


class Claim(enum.Enum):
    """The registry's answer to a stream asking for its camera name."""

    CLAIMED = enum.auto()
    TAKEN = enum.auto()  # the client's camera of that name streams already (on any node)
    OVER_LIMIT = enum.auto()  # the client streams as many cameras as it may


@dataclass(frozen=True)
class StreamEntry:
    """An open stream in the registry shared by the nodes."""

    client_id: int
    camera: str
    key_id: int
    node_id: str
    session_id: str
    address: str
    since: float
    spooled_seconds: float | None = None  # recorded footage its agent is about to send (see the hello)


@dataclass(frozen=True)
class Node:
    """A `vigint serve` process, as its latest snapshot shows it."""

    id: str
    started_at: float
    seen_at: float
    stopped_at: float | None
    document: dict


@dataclass(frozen=True)
class Flag:
    """Something unusual the operator should look at."""

    id: int
    at: float
    kind: FlagKind
    subject: str
    client_id: int | None
    key_id: int | None
    detail: str
    notified_at: float | None


@dataclass(frozen=True)
class Line:
    """One priced line of an invoice."""

    description: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    amount: Decimal


@dataclass(frozen=True)
class Invoice:
    """An issued invoice: everything needed to print it again, even after its client is deleted."""

    number: int
    issued_on: str  # YYYY-MM-DD
    period: str  # YYYY-MM
    client_id: int
    client_name: str
    client_email: str
    currency: str
    lines: tuple[Line, ...]
    vat_rate: Decimal
    seller_name: str
    seller_address: str
    seller_vat_id: str
    # Invoices issued before these were printed (all empty then).
    client_address: str = ""
    client_vat_id: str = ""
    due_on: str = ""  # YYYY-MM-DD
    payment_details: str = ""  # how to pay: bank account, reference
    voids: int | None = None  # a credit note: the invoice it voids (its lines are that invoice's, negated)
    reason: str = ""  # a credit note: why
    voided_by: int | None = None  # an invoice: the credit note that voids it

    @property
    def is_credit_note(self) -> bool:
        return self.voids is not None

    @property
    def subtotal(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal("0.00"))

    @property
    def vat(self) -> Decimal:
        return (self.subtotal * self.vat_rate).quantize(CENT, ROUND_HALF_UP)

    @property
    def total(self) -> Decimal:
        return self.subtotal + self.vat
