"""The state database's tables and the SQL the journal runs against them.

`deliveries` holds one row per campaign run and recipient; `marks` is the append-only log
folded into it (see `kzmail.state.journal`); `suppressions` and `rate_stamps` as their
names say; `unsuppressions` records each suppression the organiser removed, and why.
Only constants live here, so the statements can be read in one place.
"""

from __future__ import annotations

SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    campaign   TEXT NOT NULL,
    address    TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN
               ('pending', 'sending', 'sent', 'failed', 'uncertain', 'bounced')),
    attempts   INTEGER NOT NULL DEFAULT 0,
    code       INTEGER,
    detail     TEXT,
    message_id TEXT,
    updated_at REAL NOT NULL,
    name       TEXT,
    retryable  INTEGER NOT NULL DEFAULT 0,
    created_at REAL,
    sent_at    REAL,
    PRIMARY KEY (campaign, address)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS marks (
    campaign   TEXT NOT NULL,
    address    TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN
               ('pending', 'sending', 'sent', 'failed', 'uncertain', 'bounced')),
    attempts   INTEGER NOT NULL,
    code       INTEGER,
    detail     TEXT,
    message_id TEXT,
    updated_at REAL NOT NULL,
    name       TEXT,
    retryable  INTEGER NOT NULL,
    created_at REAL,
    sent_at    REAL
);
CREATE TABLE IF NOT EXISTS rate_stamps (
    scope TEXT NOT NULL,
    at    REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS rate_stamps_scope_at ON rate_stamps (scope, at);
CREATE TABLE IF NOT EXISTS suppressions (
    list_id    TEXT NOT NULL,
    address    TEXT NOT NULL,
    reason     TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (list_id, address)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS unsuppressions (
    list_id    TEXT NOT NULL,
    address    TEXT NOT NULL,
    reason     TEXT NOT NULL,
    at         REAL NOT NULL,
    was_reason TEXT NOT NULL,
    was_at     REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS keys (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS handled_messages (
    key  TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    at   REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS soft_bounces (
    address  TEXT NOT NULL,
    campaign TEXT NOT NULL,
    status   TEXT NOT NULL,
    reason   TEXT NOT NULL,
    at       REAL NOT NULL,
    PRIMARY KEY (address, campaign)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS runs (
    campaign TEXT PRIMARY KEY,
    list_id  TEXT NOT NULL,
    at       REAL NOT NULL
) WITHOUT ROWID;
"""

# a state database made before `bounced` existed: its CHECKs refuse the new status, and
# SQLite cannot alter a CHECK, so the two tables are rebuilt once (`Journal._migrate`)
STATUS_TABLES = ("deliveries", "marks")
AFTER_MIGRATION = """CREATE INDEX IF NOT EXISTS deliveries_message_id
    ON deliveries (message_id) WHERE message_id IS NOT NULL"""


ADDED_COLUMNS = (
    ("name", "TEXT"),
    ("retryable", "INTEGER NOT NULL DEFAULT 0"),
    ("created_at", "REAL"),
    ("sent_at", "REAL"),
)


ROW = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"


UPSERT = """INSERT INTO deliveries (campaign, address, status, attempts, code, detail,
                           message_id, updated_at, name, retryable, created_at, sent_at)
   VALUES (?)
   ON CONFLICT (campaign, address) DO UPDATE SET
     status=excluded.status,
     attempts=attempts + excluded.attempts,
     code=COALESCE(excluded.code, code),
     detail=COALESCE(excluded.detail, detail),
     message_id=COALESCE(excluded.message_id, message_id),
     updated_at=excluded.updated_at,
     name=COALESCE(excluded.name, name),
     retryable=excluded.retryable,
     sent_at=COALESCE(excluded.sent_at, sent_at)"""


COLUMNS = """campaign, address, status, attempts, code, detail, message_id, updated_at,
    name, retryable, created_at, sent_at"""


APPEND = f"INSERT INTO marks ({COLUMNS}) VALUES "  # noqa: S608 - constants only


# later marks of an address win (rowid order); sorted by key, neighbours share pages
MERGE = UPSERT.replace(
    "VALUES (?)",
    f"SELECT {COLUMNS} FROM marks WHERE true "  # noqa: S608
    "ORDER BY campaign, address, rowid",
)


SELECT_DELIVERIES = """SELECT address, name, status, attempts, code, detail, message_id,
    updated_at, retryable FROM deliveries WHERE campaign=? AND status IN (?)
    ORDER BY created_at, address"""
