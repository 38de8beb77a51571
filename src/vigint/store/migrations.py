"""The schema, as numbered migrations: the store applies those a database lacks when it opens it.

``MIGRATIONS[n]`` takes a database from schema version n to n + 1 (``PRAGMA user_version``), all in one
transaction. To change the schema, append a new tuple of statements at the end; never edit or reorder
one that has shipped, since existing databases have already run it.

The same statements build a SQLite file and a PostgreSQL database: write them in SQLite's types
(INTEGER, REAL, TEXT, AUTOINCREMENT), which `vigint.store.postgres.ddl` maps to PostgreSQL's, and use only
what both engines mean the same way.
"""

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE clients (
            id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: audit rows and invoices name it
            name TEXT NOT NULL CHECK (length(name) > 0),
            email TEXT NOT NULL UNIQUE COLLATE NOCASE,
            status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL)""",
        """CREATE TABLE api_keys (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            client_id INTEGER NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
            hash TEXT NOT NULL UNIQUE,  -- SHA-256 of the whole key; the key itself is never stored
            prefix TEXT NOT NULL,
            label TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL,
            expires_at REAL,
            revoked_at REAL,
            -- 'client' when revoked with its client, so reactivating the client restores exactly those
            revoked_by TEXT CHECK (revoked_by IN ('key', 'client')),
            last_used_at REAL)""",
        "CREATE INDEX api_keys_client ON api_keys(client_id)",
        """CREATE TABLE usage (
            key_id INTEGER NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
            bucket_start INTEGER NOT NULL,  -- Unix seconds at the start of the hour
            stream_seconds REAL NOT NULL DEFAULT 0,
            bytes_received INTEGER NOT NULL DEFAULT 0,
            frames_decoded INTEGER NOT NULL DEFAULT 0,
            ai_calls INTEGER NOT NULL DEFAULT 0,
            ai_tokens INTEGER NOT NULL DEFAULT 0,
            alerts_sent INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (key_id, bucket_start)) WITHOUT ROWID""",
        """CREATE TABLE incidents (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            client_id INTEGER NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
            key_id INTEGER REFERENCES api_keys(id) ON DELETE SET NULL,
            camera TEXT NOT NULL,
            started_at REAL NOT NULL,
            ended_at REAL,
            type TEXT NOT NULL,
            description TEXT NOT NULL DEFAULT '',
            threat INTEGER NOT NULL DEFAULT 0,
            clip_path TEXT,  -- relative to [storage] data_dir
            -- not_checked (no AI), confirmed, rejected, unverified (AI unreachable or malformed)
            verdict TEXT NOT NULL DEFAULT 'not_checked',
            -- pending (outbox rows undelivered), delivered, suppressed (not alerted), none (no channel)
            alert_state TEXT NOT NULL DEFAULT 'pending')""",
        "CREATE INDEX incidents_client ON incidents(client_id, started_at)",
        """CREATE TABLE alert_outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            incident_id INTEGER NOT NULL REFERENCES incidents(id) ON DELETE CASCADE,
            channel TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL,
            delivered_at REAL,
            last_error TEXT)""",
        "CREATE INDEX alert_outbox_due ON alert_outbox(delivered_at, next_attempt_at)",
        """CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at REAL NOT NULL,
            action TEXT NOT NULL,
            client_id INTEGER,  -- no foreign key: the trail outlives a deleted client
            key_id INTEGER,
            detail TEXT NOT NULL DEFAULT '')""",
        "CREATE INDEX audit_log_client ON audit_log(client_id)",
    ),
    (
        # Issued invoices keep a copy of everything they show, so they print the same after prices change
        # or their client is deleted; the number is never reused.
        """CREATE TABLE invoices (
            number INTEGER PRIMARY KEY AUTOINCREMENT,
            client_id INTEGER NOT NULL,  -- no foreign key: invoices outlive a deleted client
            period TEXT NOT NULL,
            issued_on TEXT NOT NULL,
            document TEXT NOT NULL,  -- JSON: client, seller, currency, VAT rate, lines; amounts as strings
            UNIQUE (client_id, period))""",
    ),
    (
        """CREATE TABLE cameras (
            client_id INTEGER NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
            camera TEXT NOT NULL,
            last_seen_at REAL NOT NULL,
            down_since REAL,  -- set once the camera was reported down; cleared when it returns
            PRIMARY KEY (client_id, camera))""",
        """CREATE TABLE flags (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at REAL NOT NULL,
            kind TEXT NOT NULL,  -- addresses, spike, hellos
            subject TEXT NOT NULL,  -- what is flagged: key:<id> or address:<ip>; one open flag per kind and subject a day
            client_id INTEGER REFERENCES clients(id) ON DELETE CASCADE,
            key_id INTEGER,
            detail TEXT NOT NULL,
            notified_at REAL)""",
        "CREATE INDEX flags_subject ON flags(kind, subject, at)",
        """CREATE TABLE server_status (
            id INTEGER PRIMARY KEY CHECK (id = 1),  -- one row: the running server's latest snapshot
            updated_at REAL NOT NULL,
            document TEXT NOT NULL)""",
    ),
    (
        # Several nodes, one service (docs/scaling.md). Emails are unique whatever their case on both engines
        # (SQLite's NOCASE column has no PostgreSQL twin).
        "CREATE UNIQUE INDEX clients_email ON clients (lower(email))",
        # Each running `vigint serve`: its heartbeat and snapshot, for `vigint status` (was server_status).
        """CREATE TABLE nodes (
            id TEXT PRIMARY KEY,  -- host:port:random, new at every start
            started_at REAL NOT NULL,
            seen_at REAL NOT NULL,  -- its latest snapshot
            stopped_at REAL,  -- set by a graceful stop
            document TEXT NOT NULL)  -- JSON: its streams and decode load""",
        "DROP TABLE server_status",
        # The registry of open streams, shared by every node: camera names unique per client, the per-client
        # limit counted across nodes. A node renews its rows' leases; a dead node's expire, freeing the names.
        """CREATE TABLE live_streams (
            client_id INTEGER NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
            camera TEXT NOT NULL,
            key_id INTEGER NOT NULL,
            node_id TEXT NOT NULL,
            session_id TEXT NOT NULL,
            address TEXT NOT NULL,
            since REAL NOT NULL,
            lease_until REAL NOT NULL,
            PRIMARY KEY (client_id, camera))""",
        "CREATE INDEX live_streams_node ON live_streams(node_id)",
        # Jobs one node runs for all (fleet checks, retention): whoever holds the unexpired lease.
        """CREATE TABLE leases (
            name TEXT PRIMARY KEY,
            holder TEXT NOT NULL,
            until REAL NOT NULL)""",
    ),
    (
        # Recorded footage sent after an outage (backfill, docs/protocol.md 4a): its incidents are marked as
        # recorded while the camera was offline, and its usage is counted apart from live streams'.
        "ALTER TABLE incidents ADD COLUMN offline INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE usage ADD COLUMN backfill_bytes INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE usage ADD COLUMN backfill_seconds REAL NOT NULL DEFAULT 0",  # footage time received
        # How much recorded footage a live stream's agent said it is about to send (the camera-back alert).
        "ALTER TABLE live_streams ADD COLUMN spooled_seconds REAL",
    ),
    (
        # The customer's time zone for the times in its alerts (an IANA name); NULL: the server's.
        "ALTER TABLE clients ADD COLUMN timezone TEXT",
    ),
    (
        # The customer's own page (docs/web.md): an incident's stills (JPEGs clips/<client>/<id>-<n>.jpg, the
        # first its thumbnail), the client's language, one-time sign-in links and signed-in browsers. Links
        # and sessions are kept as hashes of their tokens: the database never holds one that works.
        "ALTER TABLE incidents ADD COLUMN stills INTEGER NOT NULL DEFAULT 0",
        # en or fr, for its alerts and page; NULL: the server's
        "ALTER TABLE clients ADD COLUMN language TEXT",
        """CREATE TABLE sign_in_links (
            token_hash TEXT PRIMARY KEY,
            client_id INTEGER NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL,
            used_at REAL)""",
        """CREATE TABLE web_sessions (
            token_hash TEXT PRIMARY KEY,
            client_id INTEGER NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL)""",
        "CREATE INDEX web_sessions_client ON web_sessions(client_id)",
    ),
    (
        # Invoices a business can send: the client's postal address and VAT number, and credit notes.
        # A credit note voids an invoice with the next number; the period may then be invoiced again, so the
        # table is rebuilt without UNIQUE (client_id, period): only one invoice in force per client and
        # period.
        "ALTER TABLE clients ADD COLUMN address TEXT",
        "ALTER TABLE clients ADD COLUMN vat_id TEXT",
        """CREATE TABLE invoices_before_8 (
            number INTEGER PRIMARY KEY, client_id INTEGER NOT NULL, period TEXT NOT NULL, issued_on TEXT NOT NULL,
            document TEXT NOT NULL)""",
        "INSERT INTO invoices_before_8 SELECT number, client_id, period, issued_on, document FROM invoices",
        "DROP TABLE invoices",
        """CREATE TABLE invoices (
            number INTEGER PRIMARY KEY AUTOINCREMENT,
            client_id INTEGER NOT NULL,  -- no foreign key: invoices outlive a deleted client
            period TEXT NOT NULL,
            issued_on TEXT NOT NULL,
            document TEXT NOT NULL,  -- JSON: client, seller, currency, VAT rate, lines, due date; amounts as strings
            voids INTEGER,  -- a credit note: the number of the invoice it voids
            voided_by INTEGER)  -- an invoice: the number of the credit note that voids it""",
        "INSERT INTO invoices (number, client_id, period, issued_on, document) SELECT * FROM invoices_before_8",
        "DROP TABLE invoices_before_8",
        "CREATE UNIQUE INDEX invoices_in_force ON invoices (client_id, period) WHERE voids IS NULL AND voided_by IS NULL",
    ),
    (
        # Keys handed over by a one-time link instead of shown: the key is derived from the link's token and a
        # random seal (vigint.keys.derive). The row keeps the SHA-256 of the token, the seal until the link is
        # used or dies, and when the link dies; the key works only once picked up.
        "ALTER TABLE api_keys ADD COLUMN handover_hash TEXT",
        "ALTER TABLE api_keys ADD COLUMN handover_seal TEXT",  # hex; NULL once the link is used or dead
        "ALTER TABLE api_keys ADD COLUMN handover_expires_at REAL",
        "ALTER TABLE api_keys ADD COLUMN picked_up_at REAL",
        "CREATE UNIQUE INDEX api_keys_handover ON api_keys (handover_hash)",
        # When the operator was warned that this key, still in use, expires soon (once per key).
        "ALTER TABLE api_keys ADD COLUMN expiry_warned_at REAL",
    ),
    (
        # Crash recovery (incidents/recovery.py): an incident's alerts are queued held in the transaction that
        # records it, and released once its clip's first span and thumbnail are stored (or deleted by the AI's
        # verdict, in the transaction that records it). The run of the node recording an incident is named in
        # its row until its end, clip, stills and alerts are all recorded; a run that died leaves its name
        # there, and a live node finishes what it left. clip_from is the capture time of the clip's first
        # frame, its time 0.
        "ALTER TABLE alert_outbox ADD COLUMN held INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE incidents ADD COLUMN recording_node TEXT",
        "ALTER TABLE incidents ADD COLUMN clip_from REAL",
        # left open by a crash: no node records it
        "UPDATE incidents SET recording_node = '' WHERE ended_at IS NULL",
        "CREATE INDEX incidents_recording ON incidents (recording_node) WHERE recording_node IS NOT NULL",
    ),
    (
        # What each live stream received, as the capture times (µs) of its first and newest media: footage an
        # agent sends again as backfill (a GOP left in its spool by a stop) is acknowledged without being
        # analysed again, on whichever node it arrives. One row per live stream, written with the usage and at
        # its end.
        """CREATE TABLE live_footage (
            session TEXT PRIMARY KEY,
            client_id INTEGER NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
            camera TEXT NOT NULL,
            first_us INTEGER NOT NULL,
            last_us INTEGER NOT NULL)""",
        "CREATE INDEX live_footage_camera ON live_footage(client_id, camera, last_us)",
        # A camera's latest incident is looked up as each opens: one back within the cooldown continues it.
        "CREATE INDEX incidents_camera ON incidents(client_id, camera, started_at)",
    ),
    (
        # Each customer's own settings of its cameras (store/cameras.py), edited on its page, by the operator
        # or by an alert's mute link, for cameras that need not have streamed yet. A NULL sensitivity or
        # masks: the operator's ([camera CLIENT_ID/NAME] of config.ini, else [motion]).
        """CREATE TABLE camera_settings (
            client_id INTEGER NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
            camera TEXT NOT NULL,
            armed TEXT NOT NULL DEFAULT 'always' CHECK (armed IN ('always', 'never', 'schedule')),
            schedule TEXT,  -- the SCHEDULE in its canonical form (vigint.schedule), when armed = 'schedule'
            sensitivity REAL,
            masks TEXT,  -- JSON: a list of polygons, each a list of [x, y] fractions of the picture
            muted_until REAL,
            updated_at REAL NOT NULL,
            updated_by TEXT NOT NULL,  -- operator, customer (its signed-in page) or mute link (an alert email's)
            CHECK ((armed = 'schedule') = (schedule IS NOT NULL)),
            PRIMARY KEY (client_id, camera))""",
    ),
    (
        # Each incident's review by its customer: reviewed or a false alarm, a short note, when and by whom (a
        # false alarm counted per camera hints at a mask). NULL: not reviewed.
        "ALTER TABLE incidents ADD COLUMN review TEXT CHECK (review IN ('reviewed', 'false_alarm'))",
        "ALTER TABLE incidents ADD COLUMN review_note TEXT",
        "ALTER TABLE incidents ADD COLUMN reviewed_at REAL",
        "ALTER TABLE incidents ADD COLUMN reviewed_by TEXT",
        "CREATE INDEX incidents_review ON incidents(client_id, review, started_at)",
        # The mute links of alert emails that were used, each kept until it expires: a link mutes once, and a
        # replayed one is refused (alerts/mutes.py). The signature names the link; the link itself is not
        # kept.
        """CREATE TABLE mute_links_used (
            signature TEXT PRIMARY KEY,
            client_id INTEGER NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
            used_at REAL NOT NULL,
            expires_at REAL NOT NULL)""",
    ),
    (
        # Live-view time per key (the key its camera streams with), in viewer-seconds: what the customers'
        # page sent of its cameras live, priced only if [billing] price_per_live_hour says so.
        "ALTER TABLE usage ADD COLUMN live_view_seconds REAL NOT NULL DEFAULT 0",
    ),
)
