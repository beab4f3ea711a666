"""The relational schema, shared by SQLite and PostgreSQL; Alembic migrations follow it."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# The columns that identify a stored meter frame row (see `meter_frames`), and their index.
FRAME_KEY = ("charger_id", "timestamp", "connector_number", "digest")
FRAME_KEY_INDEX = "uq_meter_frames_charger_id_timestamp_connector_number_digest"


def _timestamps() -> list[Column[object]]:
    return [
        Column("created_at", DateTime(), nullable=False),
        Column("updated_at", DateTime(), nullable=False),
    ]


users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("uuid", String(36), nullable=False, unique=True),
    Column("name", String(255), nullable=False),
    Column("email", String(255), nullable=False, unique=True),
    *_timestamps(),
)

teams = Table(
    "teams",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("uuid", String(36), nullable=False, unique=True),
    Column("name", String(255), nullable=False),
    Column("type", String(32), nullable=False),
    Column("email", String(255), nullable=True),
    Column("is_personal_team", Boolean, nullable=False, default=False),
    Column("owner_id", Integer, ForeignKey("users.id"), nullable=True),
    Column("authorization_mode", String(16), nullable=False, default="accept_all"),
    *_timestamps(),
)

team_members = Table(
    "team_members",
    metadata,
    Column("team_id", Integer, ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("role", String(16), nullable=False, default="member"),
    Column("created_at", DateTime(), nullable=False),
    Index("ix_team_members_user_id", "user_id"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", String(255), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("last_used_at", DateTime(), nullable=True),
    Column("revoked_at", DateTime(), nullable=True),
    *_timestamps(),
)

sites = Table(
    "sites",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("uuid", String(36), nullable=False, unique=True),
    Column("team_id", Integer, ForeignKey("teams.id"), nullable=False, index=True),
    Column("name", String(255), nullable=False),
    Column("street", String(255), nullable=False),
    Column("house_number", Integer, nullable=False),
    Column("house_number_addition", String(255), nullable=True),
    Column("postal_code", String(255), nullable=False),
    Column("city", String(255), nullable=False),
    Column("country", String(2), nullable=False),
    Column("phase", Integer, nullable=False, default=3),
    Column("main_fuse_amperage", Integer, nullable=False, default=25),
    Column("load_management", Boolean, nullable=False, default=False),
    Column("net_type", String(2), nullable=True),
    Column("timezone", String(64), nullable=True),
    Column("price_zone", String(16), nullable=True),
    Column("kwh_price", String(32), nullable=True),
    Column("start_cost", String(32), nullable=True),
    Column("smart_charging", String(32), nullable=False, default="disabled"),
    Column("day_ahead_pricing_strategy", String(16), nullable=False, default="automatic"),
    Column("day_ahead_pricing_threshold", Integer, nullable=True),
    Column("off_peak_start", String(5), nullable=False, default="23:00"),
    Column("off_peak_end", String(5), nullable=False, default="07:00"),
    Column("deleted_at", DateTime(), nullable=True),
    *_timestamps(),
)

meters = Table(
    "meters",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("uuid", String(36), nullable=False, unique=True),
    Column("team_id", Integer, ForeignKey("teams.id"), nullable=False, index=True),
    Column("type", String(32), nullable=False, default="ct_meter"),
    # No foreign key: chargers -> groups -> meters would form a cycle; the store checks it.
    Column("charger_id", Integer, nullable=True),
    *_timestamps(),
)

groups = Table(
    "groups",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("uuid", String(36), nullable=False, unique=True),
    Column("site_id", Integer, ForeignKey("sites.id"), nullable=False, index=True),
    Column("group_id", Integer, ForeignKey("groups.id"), nullable=True, index=True),
    Column("meter_id", Integer, ForeignKey("meters.id", ondelete="SET NULL"), nullable=True),
    Column("name", String(255), nullable=True),
    Column("total_amps", Integer, nullable=False),
    Column("method", String(16), nullable=False, default="boost"),
    Column("net_type", String(2), nullable=True),
    Column("solar_additional_amps", Integer, nullable=False, default=0),
    Column("solar_always_charge", Boolean, nullable=False, default=False),
    Column("solar_always_charge_amps", Integer, nullable=False, default=0),
    Column("peak_shaving_enabled", Boolean, nullable=False, default=False),
    Column("peak_shaving_threshold", Integer, nullable=False, default=0),
    *_timestamps(),
)

chargers = Table(
    "chargers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("uuid", String(36), nullable=False, unique=True),
    Column("identity", String(45), nullable=False, unique=True),
    Column("team_id", Integer, ForeignKey("teams.id"), nullable=True, index=True),
    Column("site_id", Integer, ForeignKey("sites.id"), nullable=True, index=True),
    Column("group_id", Integer, ForeignKey("groups.id", ondelete="SET NULL"), nullable=True),
    Column("reference", String(255), nullable=True),
    Column("serial_number", String(64), nullable=True, index=True),
    Column("pincode", String(8), nullable=False),
    Column("password_hash", String(64), nullable=True),
    # OCPP security profile (DESIGN: Charger security): 0 identity only, 1 Basic over ws, 2 Basic over wss.
    Column("security_profile", Integer, nullable=False, default=1, server_default=text("1")),
    Column("connection_status", String(16), nullable=False, default="never_seen"),
    Column("status", String(32), nullable=True),
    Column("error", String(64), nullable=True),
    Column("error_info", String(255), nullable=True),
    Column("vendor", String(64), nullable=True),
    Column("model", String(64), nullable=True),
    Column("firmware_version", String(64), nullable=True),
    Column("ocpp_version", String(16), nullable=True),
    Column("lenient", Boolean, nullable=True),
    Column("license_smart", Boolean, nullable=False, default=False),
    Column("license_pro", Boolean, nullable=False, default=False),
    Column("last_seen_at", DateTime(), nullable=True),
    Column("heartbeat_interval", Integer, nullable=True),
    Column("firmware_status", String(32), nullable=True),
    Column("diagnostics_status", String(32), nullable=True),
    Column("boot_payload", Text, nullable=True),
    # When the charger was last attached to a site (its team's message log starts there; DESIGN:
    # Charger security). Null: never attached since the column came (its log starts at creation).
    Column("attached_at", DateTime(), nullable=True),
    # Its last BootNotification was Accepted (kept across reconnects: OCPP 1.6 chargers boot after
    # power-up, not after every new socket); until a first one is, nothing is sent to it (DESIGN
    # "Load management", OCPP 1.6 §4.2).
    Column("boot_accepted", Boolean, nullable=False, default=False, server_default=false()),
    # DESIGN "Cluster": the gateway process holding the charger's socket (its node id) and that
    # socket's connection token (`<opened ns, 20 digits>-<random>`: later sockets sort higher).
    # Set when a socket opens, cleared when it closes; null while no socket is open.
    Column("gateway_id", String(200), nullable=True, index=True),
    Column("connection_token", String(64), nullable=True),
    # spec volttime-v3 §3.2: when a socket last came online, when one last dropped (a closed socket, or
    # its gateway gone silent), and when the charger last sent a Heartbeat; null until the first.
    Column("last_connection_at", DateTime(), nullable=True),
    Column("last_disconnection_at", DateTime(), nullable=True),
    Column("last_heartbeat_at", DateTime(), nullable=True),
    *_timestamps(),
)

connectors = Table(
    "connectors",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("uuid", String(36), nullable=False, unique=True),
    Column("charger_id", Integer, ForeignKey("chargers.id", ondelete="CASCADE"), nullable=False),
    Column("connector_id", Integer, nullable=False),
    Column("evse_id", Integer, nullable=True),
    Column("group_id", Integer, ForeignKey("groups.id", ondelete="SET NULL"), nullable=True),
    Column("status", String(32), nullable=True),
    Column("error", String(64), nullable=True),
    Column("error_info", String(255), nullable=True),
    Column("max_amperage", Integer, nullable=True),
    Column("max_voltage", Integer, nullable=True),
    Column("phases", Integer, nullable=False, default=3),
    Column("phase_rotation", String(8), nullable=True),
    Column("smart_charging_state", String(16), nullable=False, default="none"),
    *_timestamps(),
    UniqueConstraint("charger_id", "connector_id", name="uq_connectors_charger_id_connector_id"),
)

id_tags = Table(
    "id_tags",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("uuid", String(36), nullable=False, unique=True),
    Column("team_id", Integer, ForeignKey("teams.id", ondelete="CASCADE"), nullable=False),
    Column("id_tag", String(20), nullable=False),
    Column("status", String(16), nullable=False, default="Accepted"),
    Column("expiry_date", DateTime(), nullable=True),
    Column("parent_id_tag", String(20), nullable=True),
    Column("name", String(255), nullable=True),
    *_timestamps(),
    UniqueConstraint("team_id", "id_tag", name="uq_id_tags_team_id_id_tag"),
)


# SQLite only aliases rowid for INTEGER PRIMARY KEY; PostgreSQL gets 64-bit ids.
BigId = BigInteger().with_variant(Integer(), "sqlite")

transactions = Table(
    "transactions",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("team_id", Integer, ForeignKey("teams.id"), nullable=True),
    Column("site_id", Integer, ForeignKey("sites.id"), nullable=True),
    Column("charger_id", Integer, ForeignKey("chargers.id", ondelete="CASCADE"), nullable=False),
    Column("connector_ref", Integer, ForeignKey("connectors.id", ondelete="SET NULL"), nullable=True),
    Column("connector_number", Integer, nullable=False),
    Column("ocpp_transaction_id", String(64), nullable=True),
    Column("id_tag", String(36), nullable=True),
    Column("reservation_id", Integer, nullable=True),
    Column("meter_start", BigInteger, nullable=True),
    Column("meter_stop", BigInteger, nullable=True),
    Column("register_wh", BigInteger, nullable=True),
    Column("started_at", DateTime(), nullable=True),
    Column("stopped_at", DateTime(), nullable=True),
    Column("stop_reason", String(32), nullable=True),
    Column("kwh_price", String(32), nullable=True),
    Column("start_cost", String(32), nullable=True),
    Column("status", String(16), nullable=False, default="active"),
    *_timestamps(),
    UniqueConstraint("charger_id", "ocpp_transaction_id", name="uq_transactions_charger_id_ocpp_transaction_id"),
    Index("ix_transactions_site_id_started_at", "site_id", "started_at"),
    Index("ix_transactions_charger_id_started_at", "charger_id", "started_at"),
)

# DESIGN "Durability": a replayed MeterValues frame is stored once. `digest` is a 64-bit hash of a
# row's packed samples (store/meter_values.py `frame_digest`); with the charger, connector and
# timestamp it is unique, and the writer inserts with ON CONFLICT DO NOTHING. Rows written before
# migration 0008 have no digest (NULLs never conflict). The index also serves reads by charger and time.
meter_frames = Table(
    "meter_frames",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("team_id", Integer, nullable=True),
    Column("site_id", Integer, nullable=True),
    Column("charger_id", Integer, ForeignKey("chargers.id", ondelete="CASCADE"), nullable=False),
    Column("connector_number", Integer, nullable=False),
    Column("transaction_id", BigInteger, nullable=True),
    Column("timestamp", DateTime(), nullable=False),
    Column("samples", Text, nullable=False),
    Column("received_at", DateTime(), nullable=False),
    Column("digest", BigInteger, nullable=True),
    Index(FRAME_KEY_INDEX, *FRAME_KEY, unique=True),
)

meter_latest = Table(
    "meter_latest",
    metadata,
    Column("charger_id", Integer, ForeignKey("chargers.id", ondelete="CASCADE"), primary_key=True),
    Column("connector_number", Integer, primary_key=True),
    Column("measurand", String(48), primary_key=True),
    Column("phase", String(8), primary_key=True),
    Column("value", String(64), nullable=False),
    Column("unit", String(16), nullable=True),
    Column("normalised", String(64), nullable=True),
    Column("timestamp", DateTime(), nullable=False),
)

ocpp_messages = Table(
    "ocpp_messages",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("charger_id", Integer, ForeignKey("chargers.id", ondelete="CASCADE"), nullable=False),
    # The team that owned the charger when the frame was logged; null: no team (never shown).
    Column("team_id", Integer, nullable=True),
    Column("direction", String(3), nullable=False),
    Column("message_type", Integer, nullable=False),
    Column("message_id", String(64), nullable=False),
    Column("action", String(64), nullable=True),
    Column("payload", Text, nullable=False),
    Column("created_at", DateTime(), nullable=False),
    Index("ix_ocpp_messages_charger_id_team_id_id", "charger_id", "team_id", "id"),
    Index("ix_ocpp_messages_created_at", "created_at"),
)


# ---------------------------------------------------------------- meters and live usage (migration 0003)

# The latest reading posted for a meter (one row per meter; a later reading replaces it). Amperes
# are signed (negative = export) and watts optional; both kept as decimal text, so they round-trip.
meter_readings = Table(
    "meter_readings",
    metadata,
    Column("meter_id", Integer, ForeignKey("meters.id", ondelete="CASCADE"), primary_key=True),
    Column("l1", String(32), nullable=False),
    Column("l2", String(32), nullable=False),
    Column("l3", String(32), nullable=False),
    Column("power", String(32), nullable=True),
    Column("power_l1", String(32), nullable=True),
    Column("power_l2", String(32), nullable=True),
    Column("power_l3", String(32), nullable=True),
    Column("reading_at", DateTime(), nullable=False),
    Column("received_at", DateTime(), nullable=False),
)


# ---------------------------------------------------------------- energy rollups (migration 0004)

# Derived from the raw frames by the batched writer (DESIGN: derived tables): the energy of each
# connector (>= 1) per 15-minute UTC bucket in whole Wh (spec/smart-charging.md R-96..R-98), with
# the team and site stamped on the frames. `energy_registers` holds each connector's last good
# register reading (the baseline of the next delta) and the newest reading time seen.
energy_rollups = Table(
    "energy_rollups",
    metadata,
    Column("charger_id", Integer, ForeignKey("chargers.id", ondelete="CASCADE"), primary_key=True),
    Column("connector_number", Integer, primary_key=True),
    Column("bucket_start", DateTime(), primary_key=True),
    Column("team_id", Integer, nullable=True),
    Column("site_id", Integer, nullable=True),
    Column("wh", BigInteger, nullable=False),
    Index("ix_energy_rollups_site_id_bucket_start", "site_id", "bucket_start"),
)

energy_registers = Table(
    "energy_registers",
    metadata,
    Column("charger_id", Integer, ForeignKey("chargers.id", ondelete="CASCADE"), primary_key=True),
    Column("connector_number", Integer, primary_key=True),
    Column("good_at", DateTime(), nullable=False),
    Column("good_wh", BigInteger, nullable=False),
    Column("seen_at", DateTime(), nullable=False),
)


# ---------------------------------------------------------------- day-ahead prices (migration 0005)

# Day-ahead prices per bidding zone (R-62: slots in UTC). The price is the published EUR/MWh
# decimal kept as text, so it round-trips exactly on SQLite and PostgreSQL alike.
day_ahead_prices = Table(
    "day_ahead_prices",
    metadata,
    Column("zone", String(16), primary_key=True),
    Column("slot_start", DateTime(), primary_key=True),
    Column("slot_end", DateTime(), nullable=False),
    Column("price", String(24), nullable=False),
    Column("imported_at", DateTime(), nullable=False),
)


# ---------------------------------------------------------------- smart-charging state (migration 0006)

# What the smart-charging controller installed on each charger (DESIGN: state that survives a
# restart): one row per (charger, connector, purpose), the last profile sent and the charger's
# answer. A decrease still `pending` or `timeout` keeps `reserved_tenths` (the limit installed
# before it) counting against the group until it is acknowledged (DESIGN: ).
charging_profiles = Table(
    "charging_profiles",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("charger_id", Integer, ForeignKey("chargers.id", ondelete="CASCADE"), nullable=False),
    Column("connector_number", Integer, nullable=False),
    Column("purpose", String(32), nullable=False),
    Column("stack_level", Integer, nullable=False),
    Column("profile_id", Integer, nullable=False),
    Column("limit_tenths", Integer, nullable=False),
    Column("reserved_tenths", Integer, nullable=True),
    Column("unit", String(1), nullable=False, default="A"),
    Column("status", String(16), nullable=False),
    Column("transaction_id", BigInteger, nullable=True),
    Column("sent_at", DateTime(), nullable=False),
    Column("acknowledged_at", DateTime(), nullable=True),
    UniqueConstraint(
        "charger_id", "connector_number", "purpose", name="uq_charging_profiles_charger_id_connector_number_purpose"
    ),
)

# What a charger told us about its smart-charging abilities, read at boot.
charger_capabilities = Table(
    "charger_capabilities",
    metadata,
    Column("charger_id", Integer, ForeignKey("chargers.id", ondelete="CASCADE"), primary_key=True),
    Column("rate_units", String(16), nullable=True),
    Column("max_stack_level", Integer, nullable=True),
    Column("zero_amp_supported", Boolean, nullable=True),
    Column("pause_unsupported", Boolean, nullable=False, default=False),
    # A CALLERROR NotImplemented/NotSupported to SetChargingProfile: left alone until it reconnects.
    Column("profiles_unsupported", Boolean, nullable=False, default=False, server_default=false()),
    Column("configuration", Text, nullable=True),
    Column("read_at", DateTime(), nullable=True),
)

# The smart-charging controller's picture of its last run of a site (gate, allocation, limits and
# reasons), written after each run so that any process can serve the site's power management.
power_pictures = Table(
    "power_pictures",
    metadata,
    Column("site_id", Integer, ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True),
    Column("picture", Text, nullable=False),
    Column("taken_at", DateTime(), nullable=False),
)


# ---------------------------------------------------------------- audit log (migration 0013)

# Who changed what (DESIGN "Services tier"): one row per state change or charger command, written
# in the changing service's own transaction (a command: after the charger answered or failed).
# `team_id` null: an account-level change (users, tokens) no team reads. `detail` is small JSON
# (changed field names, command arguments), never a secret.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("team_id", Integer, ForeignKey("teams.id", ondelete="CASCADE"), nullable=True),
    Column("at", DateTime(), nullable=False),
    Column("actor_kind", String(8), nullable=False),
    Column("actor_id", String(36), nullable=True),
    Column("actor_user_id", Integer, nullable=True),
    Column("actor_label", String(255), nullable=True),
    Column("action", String(64), nullable=False),
    Column("object_type", String(32), nullable=False),
    Column("object_id", String(64), nullable=True),
    Column("outcome", String(64), nullable=False),
    Column("detail", Text, nullable=True),
    Index("ix_audit_log_team_id_id", "team_id", "id"),
)

# DESIGN "Cluster": the control lease's epoch, one row per lease name; it rises at every takeover.
control_leases = Table(
    "control_leases",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("epoch", BigInteger, nullable=False),
    Column("holder", Text, nullable=False),
    Column("acquired_at", DateTime(), nullable=False),
)

# ---------------------------------------------------------------- firmware updates (migration 0016)

# OCPP 1.6 §5.19 / §4.5: one row per UpdateFirmware a team asked for. `team_id` is the asking
# team (a team reads only its rows); `status` starts at Requested, then follows the charger's
# FirmwareStatusNotifications; `history` is JSON, a list of {"status", "at"} in order;
# `finished_at` is set once the update is Installed or failed (domain/firmware.py).
firmware_updates = Table(
    "firmware_updates",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("uuid", String(36), nullable=False, unique=True),
    Column("charger_id", Integer, ForeignKey("chargers.id", ondelete="CASCADE"), nullable=False),
    Column("team_id", Integer, ForeignKey("teams.id", ondelete="CASCADE"), nullable=False),
    Column("location", Text, nullable=False),
    Column("retrieve_at", DateTime(), nullable=False),
    Column("retries", Integer, nullable=True),
    Column("retry_interval", Integer, nullable=True),
    Column("status", String(32), nullable=False),
    Column("firmware_version_before", String(64), nullable=True),
    Column("firmware_version_after", String(64), nullable=True),
    Column("history", Text, nullable=False),
    *_timestamps(),
    Column("finished_at", DateTime(), nullable=True),
    Index("ix_firmware_updates_charger_id_id", "charger_id", "id"),
    Index("ix_firmware_updates_team_id_charger_id_id", "team_id", "charger_id", "id"),
)


# ---------------------------------------------------------------- reservations (migration 0017)

# OCPP 1.6 §5.13 ReserveNow: `id` is the reservationId sent to the charger, so the row exists
# (status `pending`, never listed) before the call goes out; `active` once the charger accepted,
# then `used` (a StartTransaction carried the id: `transaction_id`), `cancelled` or `expired`.
reservations = Table(
    "reservations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("uuid", String(36), nullable=False, unique=True),
    Column("charger_id", Integer, ForeignKey("chargers.id", ondelete="CASCADE"), nullable=False),
    Column("team_id", Integer, ForeignKey("teams.id", ondelete="CASCADE"), nullable=False),
    Column("connector_number", Integer, nullable=False),
    Column("id_tag", String(36), nullable=False),
    Column("expires_at", DateTime(), nullable=False),
    Column("status", String(16), nullable=False),
    Column("transaction_id", BigInteger, nullable=True),
    *_timestamps(),
    Column("ended_at", DateTime(), nullable=True),
    Index("ix_reservations_charger_id_id", "charger_id", "id"),
    Index("ix_reservations_status_expires_at", "status", "expires_at"),
)


# Diagnostics uploads (docs/api.md "Diagnostics"; OCPP 1.6 §5.9 GetDiagnostics, §4.4
# DiagnosticsStatusNotification): one request per GetDiagnostics (the SHA-256 of its one-time
# upload token, never the token), and the file the charger uploaded, kept in the database so
# any process of a cluster serves it.
diagnostics_requests = Table(
    "diagnostics_requests",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("uuid", String(36), nullable=False, unique=True),
    Column("charger_id", Integer, ForeignKey("chargers.id", ondelete="CASCADE"), nullable=False),
    Column("team_id", Integer, ForeignKey("teams.id", ondelete="CASCADE"), nullable=False),
    Column("log_type", String(16), nullable=False),
    Column("start_time", DateTime(), nullable=True),
    Column("stop_time", DateTime(), nullable=True),
    Column("token_hash", String(64), nullable=True, unique=True),
    Column("status", String(32), nullable=False),
    Column("file_name", String(255), nullable=False),
    *_timestamps(),
    Column("expires_at", DateTime(), nullable=False),
    Index("ix_diagnostics_requests_charger_id_id", "charger_id", "id"),
)

diagnostics_files = Table(
    "diagnostics_files",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("uuid", String(36), nullable=False, unique=True),
    Column("request_id", Integer, ForeignKey("diagnostics_requests.id", ondelete="CASCADE"), nullable=False),
    Column("charger_id", Integer, ForeignKey("chargers.id", ondelete="CASCADE"), nullable=False),
    Column("team_id", Integer, ForeignKey("teams.id", ondelete="CASCADE"), nullable=False),
    Column("file_name", String(255), nullable=False),
    Column("content_type", String(127), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("content", LargeBinary, nullable=False),
    Column("created_at", DateTime(), nullable=False),
    Index("ix_diagnostics_files_charger_id_id", "charger_id", "id"),
)


# ---------------------------------------------------------------- local lists (migration 0019)

# OCPP 1.6 §3.5.3: what we last set as a charger's local list. `enabled` null: decided from the
# charger's features (`supported`: it reported LocalAuthListManagement with LocalAuthListEnabled
# true, or answered -1 / NotSupported: false); `entries` is JSON of what the
# charger holds (id_tag -> {status, expiry_date, parent_id_tag}); `version` is the listVersion we set.
charger_local_lists = Table(
    "charger_local_lists",
    metadata,
    Column("charger_id", Integer, ForeignKey("chargers.id", ondelete="CASCADE"), primary_key=True),
    Column("enabled", Boolean, nullable=True),
    Column("supported", Boolean, nullable=True),
    Column("version", Integer, nullable=False, default=0),
    Column("entries", Text, nullable=True),
    Column("max_length", Integer, nullable=True),
    Column("chunk_length", Integer, nullable=True),
    Column("last_sync_at", DateTime(), nullable=True),
    Column("last_outcome", String(32), nullable=True),
    Column("updated_at", DateTime(), nullable=False),
)

# Per-connector charge-limit caps (DESIGN "v3 API": v3 `actions/charge-limit`), one row per connector
# until cleared. `limit_tenths` in tenths of an ampere per phase (0 = pause); NULL = cleared, but a
# TxDefaultProfile of ours may still be on the charger and is removed when it is reachable again.
# `profile_status` is what became of the TxDefaultProfile we installed for a connector the
# smart-charging controller does not manage (the charger's answer, `pending`); NULL = none of ours.
connector_charge_limits = Table(
    "connector_charge_limits",
    metadata,
    Column("connector_id", Integer, ForeignKey("connectors.id", ondelete="CASCADE"), primary_key=True),
    Column("charger_id", Integer, ForeignKey("chargers.id", ondelete="CASCADE"), nullable=False),
    Column("limit_tenths", Integer, nullable=True),
    Column("stack_level", Integer, nullable=False, default=1),
    Column("number_phases", Integer, nullable=True),
    Column("profile_status", String(16), nullable=True),
    Column("updated_at", DateTime(), nullable=False),
    Index("ix_connector_charge_limits_charger_id", "charger_id"),
)


# v3 charger settings (spec/volttime-v3.md §3.10), one row per charger, made on first change.
# `lock_enabled`: the charger is blocked (every connector Inoperative, OCPP 1.6 §5.2); `lock_applied`:
# the availability the charger last accepted from us (True Inoperative, False Operative, None never sent).
# `socket_lock_enabled`: the cable stays locked in the socket (UnlockConnectorOnEVSideDisconnect false,
# OCPP 1.6 §9.1.35); None: never set through us. `plug_charge_*`: start a session with the card when
# a cable is plugged in (a connector reports Preparing).
charger_settings = Table(
    "charger_settings",
    metadata,
    Column("charger_id", Integer, ForeignKey("chargers.id", ondelete="CASCADE"), primary_key=True),
    Column("lock_enabled", Boolean, nullable=False, default=False),
    Column("lock_applied", Boolean, nullable=True),
    Column("socket_lock_enabled", Boolean, nullable=True),
    Column("plug_charge_enabled", Boolean, nullable=False, default=False),
    Column("plug_charge_card", String(20), nullable=True),
    Column("updated_at", DateTime(), nullable=False),
)
