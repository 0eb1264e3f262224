"""Every table of the registry. Times used in queries are epoch seconds (float), so SQLite
and PostgreSQL compare them the same way; payloads as received are kept as JSON text."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
)

metadata = MetaData()

ID = 64  # ids match ^[A-Za-z0-9_-]{1,64}$ (DESIGN.md conventions)


def _row_id() -> Column[int]:
    # SQLite autoincrements only an INTEGER PRIMARY KEY, PostgreSQL wants BIGINT for history.
    return Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )


# --- what agents report (ingest) -------------------------------------------------------

agents = Table(
    "agents",
    metadata,
    Column("agent_id", String(ID), primary_key=True),
    Column("state", String(16)),  # online | offline; None until the first state message
    Column("bdseq", BigInteger),
    Column("version", String(64)),
    Column("offline_reason", String(64)),
    Column("clock_synced", Boolean),
    Column("state_ts", Float),  # when the agent said it (its ts), epoch s
    Column("last_seen", Float),  # when the registry last received anything from it
    # Enrolment: the device public key (raw Ed25519, base64url) and its RFC 7638 thumbprint.
    Column("public_key", String(64)),
    Column("key_thumbprint", String(64)),
    Column("enrolled_at", Float),
    Column("audit_head", String(128)),  # chain hash of the newest audit entry received
    Column("audit_entries", BigInteger, nullable=False, default=0),
)

cameras = Table(
    "cameras",
    metadata,
    Column("agent_id", String(ID), primary_key=True),
    Column("camera_id", String(ID), primary_key=True),
    Column("name", String(200)),
    Column("lat", Float),
    Column("lon", Float),
    Column("bearing_deg", Float),
    Column("fov_deg", Float),
    Column("range_m", Float),
    Column("dori_json", Text),  # {"detect":m,"observe":m,"recognise":m,"identify":m}
    Column("status", String(16)),  # ok | degraded | failed | offline; None before any health
    Column("problems_json", Text),
    Column("report_ts", Float),  # ts of the newest health report
    Column("footage_oldest", Float),
    Column("footage_newest", Float),
    Column("health_json", Text),  # the newest health object as received
    # Loss counting by (bdseq, seq): the newest pair, reports received and reports missing.
    Column("bdseq", BigInteger),
    Column("seq", BigInteger),
    Column("received", BigInteger, nullable=False, default=0),
    Column("missing", BigInteger, nullable=False, default=0),
    # Ingest: the lowest seq and the distinct reports of the current bdseq, so reports that
    # arrive out of order (several ingest workers) still give the right `missing`.
    Column("seq_first", BigInteger),
    Column("epoch_received", BigInteger, nullable=False, default=0),
    # The open (not yet closed) intervals of camera_intervals (registry/ingest/intervals.py):
    # the state since `state_start` and the footage recorded without a known gap since
    # `run_start` (their ends are `report_ts` and `footage_newest`); the gap totals of the
    # report the run last grew by.
    Column("state_start", Float),
    Column("state_code", SmallInteger),
    Column("state_problems", Integer),
    Column("run_start", Float),
    Column("gap_count", BigInteger),
    Column("gap_seconds", Float),
    Index("cameras_lat_lon", "lat", "lon"),
)

# What each camera's state and footage were, as closed intervals (the open ones are in
# `cameras`): one row per state change, recorded run or gap, not one per report, so 30
# days of 350,000 cameras fit one PostgreSQL server (docs/registry.md has the cost).
# Codes, not text, for size: registry/ingest/intervals.py defines them.
camera_intervals = Table(
    "camera_intervals",
    metadata,
    Column("agent_id", String(ID), nullable=False),
    Column("camera_id", String(ID), nullable=False),
    Column("kind", SmallInteger, nullable=False),  # state | run | gap
    Column("start_ts", Float, nullable=False),
    Column("end_ts", Float, nullable=False),
    Column("status", SmallInteger),  # state rows: ok, degraded, failed, offline
    Column("problems", Integer),  # state rows: a bit per problem code
    # A camera's intervals that reach into a searched moment (end_ts >= T).
    Index("camera_intervals_camera_end", "agent_id", "camera_id", "end_ts"),
    # The retention prune (end_ts < cutoff): rows arrive in about end_ts order, so a BRIN
    # index of a few pages serves it on PostgreSQL (SQLite makes a plain one).
    Index("camera_intervals_end", "end_ts", postgresql_using="brin"),
)

health_history = Table(
    "health_history",
    metadata,
    _row_id(),
    Column("agent_id", String(ID), nullable=False),
    Column("camera_id", String(ID), nullable=False),
    Column("bdseq", BigInteger, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("ts", Float, nullable=False),
    Column("status", String(16), nullable=False),
    Column("problems_json", Text, nullable=False),
    Column("payload", Text, nullable=False),
    Column("received_at", Float, nullable=False),
    Index("health_history_camera_ts", "agent_id", "camera_id", "ts"),
    # One row per report: a redelivered (QoS 1) or re-sent retained report is a duplicate.
    Index("health_history_report", "agent_id", "camera_id", "bdseq", "seq", unique=True),
)

request_status = Table(
    "request_status",
    metadata,
    Column("agent_id", String(ID), primary_key=True),
    Column("request_id", String(ID), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("reason", String(64)),
    Column("bytes_sent", BigInteger),
    Column("bytes_total", BigInteger),
    Column("manifest_sha256", String(64)),
    Column("ts", Float, nullable=False),
    Column("payload", Text, nullable=False),
)

agent_audit = Table(
    "agent_audit",
    metadata,
    _row_id(),
    Column("agent_id", String(ID), nullable=False),
    Column("entry", Text, nullable=False),  # the line exactly as the agent published it
    Column("received_at", Float, nullable=False),
    # The entry's own seq and chain hash (ingest): a redelivered entry is one row, and the
    # head is the entry with the highest seq whatever order entries arrived in.
    Column("seq", BigInteger),
    Column("hash", String(64)),
    Index("agent_audit_agent", "agent_id", "id"),
    Index("agent_audit_entry", "agent_id", "hash", unique=True),
    Index("agent_audit_seq", "agent_id", "seq"),
)

rejected_messages = Table(
    "rejected_messages",
    metadata,
    _row_id(),
    Column("topic", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("received_at", Float, nullable=False),
)

# --- police requests and evidence -------------------------------------------------------

requests = Table(
    "requests",
    metadata,
    Column("request_id", String(ID), primary_key=True),  # the token's jti
    Column("agent_id", String(ID), nullable=False),
    Column("cameras_json", Text, nullable=False),
    Column("window_start", Float, nullable=False),
    Column("window_end", Float, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("case_ref", String(200), nullable=False),
    Column("basis", Text, nullable=False),
    Column("requester", String(200), nullable=False),
    Column("reason", Text, nullable=False),  # why the officer asked (user audit)
    # What the server prepared, unsigned, without the upload bearer (`upload.url` only).
    Column("claims_json", Text, nullable=False),
    # The bearer the agent presents at the intake; only its SHA-256 is kept.
    Column("upload_token_sha256", String(64), nullable=False),
    Column("prepared_by", String(64), nullable=False),
    Column("prepared_at", Float, nullable=False),
    # Always NULL: the signed token carries the upload bearer and is not kept (older
    # registries kept it here; registry/db/upgrade.py clears it).
    Column("token", Text),
    Column("token_status_id", String(16)),  # where a rejected token's status lands
    Column("submitted_by", String(64)),
    Column("submitted_at", Float),
    # When the registry relayed a police withdrawal of it, or its agent said it withdrew it:
    # the evidence intake takes nothing more for it (registry/evidence/admission.py).
    Column("withdrawn_at", Float),
)

evidence_uploads = Table(
    "evidence_uploads",
    metadata,
    Column("upload_id", String(64), primary_key=True),
    Column("request_id", String(ID), nullable=False),
    Column("filename", String(255), nullable=False),
    Column("sha256", String(64), nullable=False),  # as declared in Upload-Metadata
    Column("length", BigInteger, nullable=False),
    Column("offset", BigInteger, nullable=False, default=0),
    Column("created_at", Float, nullable=False),
    Column("completed_at", Float),
    Column("actual_sha256", String(64)),  # computed when the last byte arrived
    Index("evidence_uploads_request", "request_id"),
)

evidence_packages = Table(
    "evidence_packages",
    metadata,
    Column("request_id", String(ID), primary_key=True),
    Column("agent_id", String(ID), nullable=False),
    Column("verified", Boolean, nullable=False),
    Column("verdict", Text, nullable=False),  # plain words: what was checked, what failed
    Column("manifest_json", Text),
    Column("checked_at", Float, nullable=False),
)

# --- people ------------------------------------------------------------------------------

users = Table(
    "users",
    metadata,
    Column("username", String(64), primary_key=True),
    Column("password_hash", Text, nullable=False),
    Column("role", String(16), nullable=False),  # police | operator
    Column("failed_logins", Integer, nullable=False, default=0),
    Column("locked_until", Float),
    Column("created_at", Float, nullable=False),
)

sessions = Table(
    "sessions",
    metadata,
    Column("session_sha256", String(64), primary_key=True),  # the cookie holds the secret
    Column("username", String(64), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("token_sha256", String(64), primary_key=True),
    Column("username", String(64), nullable=False),
    Column("label", String(200), nullable=False),
    Column("created_at", Float, nullable=False),
)

enrol_codes = Table(
    "enrol_codes",
    metadata,
    Column("code_sha256", String(64), primary_key=True),
    Column("created_by", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("used_at", Float),
    # The one agent id the code enrols (None only for codes made before codes were bound,
    # which therefore enrol nobody).
    Column("agent_id", String(ID)),
    # A re-enrolment code: the thumbprint of the device key it replaces; None for a first
    # enrolment, which an already enrolled id refuses.
    Column("replaces_key", String(64)),
)

user_audit = Table(
    "user_audit",
    metadata,
    _row_id(),
    Column("ts", Float, nullable=False),
    Column("username", String(64)),  # None when nobody was logged in (a failed login)
    Column("action", String(64), nullable=False),  # login, search, request_prepare, ...
    Column("remote", String(64)),
    Column("detail", Text, nullable=False),  # JSON: where, when, why, outcome
)
