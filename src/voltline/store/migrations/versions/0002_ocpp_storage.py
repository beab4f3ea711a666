"""ocpp transactions meter values and message log

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "meter_frames",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("site_id", sa.Integer(), nullable=True),
        sa.Column("charger_id", sa.Integer(), nullable=False),
        sa.Column("connector_number", sa.Integer(), nullable=False),
        sa.Column("transaction_id", sa.BigInteger(), nullable=True),
        sa.Column("timestamp", sa.DateTime(), nullable=False),
        sa.Column("samples", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["charger_id"], ["chargers.id"], name=op.f("fk_meter_frames_charger_id_chargers"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meter_frames")),
    )
    with op.batch_alter_table("meter_frames", schema=None) as batch_op:
        batch_op.create_index("ix_meter_frames_charger_id_timestamp", ["charger_id", "timestamp"], unique=False)

    op.create_table(
        "meter_latest",
        sa.Column("charger_id", sa.Integer(), nullable=False),
        sa.Column("connector_number", sa.Integer(), nullable=False),
        sa.Column("measurand", sa.String(length=48), nullable=False),
        sa.Column("phase", sa.String(length=8), nullable=False),
        sa.Column("value", sa.String(length=64), nullable=False),
        sa.Column("unit", sa.String(length=16), nullable=True),
        sa.Column("normalised", sa.String(length=64), nullable=True),
        sa.Column("timestamp", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["charger_id"], ["chargers.id"], name=op.f("fk_meter_latest_charger_id_chargers"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("charger_id", "connector_number", "measurand", "phase", name=op.f("pk_meter_latest")),
    )
    op.create_table(
        "ocpp_messages",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("charger_id", sa.Integer(), nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("message_type", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["charger_id"], ["chargers.id"], name=op.f("fk_ocpp_messages_charger_id_chargers"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ocpp_messages")),
    )
    with op.batch_alter_table("ocpp_messages", schema=None) as batch_op:
        batch_op.create_index("ix_ocpp_messages_charger_id_id", ["charger_id", "id"], unique=False)
        batch_op.create_index("ix_ocpp_messages_created_at", ["created_at"], unique=False)

    op.create_table(
        "transactions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("site_id", sa.Integer(), nullable=True),
        sa.Column("charger_id", sa.Integer(), nullable=False),
        sa.Column("connector_ref", sa.Integer(), nullable=True),
        sa.Column("connector_number", sa.Integer(), nullable=False),
        sa.Column("ocpp_transaction_id", sa.String(length=64), nullable=True),
        sa.Column("id_tag", sa.String(length=36), nullable=True),
        sa.Column("reservation_id", sa.Integer(), nullable=True),
        sa.Column("meter_start", sa.BigInteger(), nullable=True),
        sa.Column("meter_stop", sa.BigInteger(), nullable=True),
        sa.Column("register_wh", sa.BigInteger(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("stopped_at", sa.DateTime(), nullable=True),
        sa.Column("stop_reason", sa.String(length=32), nullable=True),
        sa.Column("kwh_price", sa.String(length=32), nullable=True),
        sa.Column("start_cost", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["charger_id"], ["chargers.id"], name=op.f("fk_transactions_charger_id_chargers"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["connector_ref"],
            ["connectors.id"],
            name=op.f("fk_transactions_connector_ref_connectors"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_transactions_site_id_sites")),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"], name=op.f("fk_transactions_team_id_teams")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transactions")),
        sa.UniqueConstraint("charger_id", "ocpp_transaction_id", name="uq_transactions_charger_id_ocpp_transaction_id"),
    )
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.create_index("ix_transactions_charger_id_started_at", ["charger_id", "started_at"], unique=False)
        batch_op.create_index("ix_transactions_site_id_started_at", ["site_id", "started_at"], unique=False)

    with op.batch_alter_table("chargers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("heartbeat_interval", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("firmware_status", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("diagnostics_status", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("boot_payload", sa.Text(), nullable=True))


def downgrade() -> None:

    with op.batch_alter_table("chargers", schema=None) as batch_op:
        batch_op.drop_column("boot_payload")
        batch_op.drop_column("diagnostics_status")
        batch_op.drop_column("firmware_status")
        batch_op.drop_column("heartbeat_interval")

    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.drop_index("ix_transactions_site_id_started_at")
        batch_op.drop_index("ix_transactions_charger_id_started_at")

    op.drop_table("transactions")
    with op.batch_alter_table("ocpp_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_ocpp_messages_created_at")
        batch_op.drop_index("ix_ocpp_messages_charger_id_id")

    op.drop_table("ocpp_messages")
    op.drop_table("meter_latest")
    with op.batch_alter_table("meter_frames", schema=None) as batch_op:
        batch_op.drop_index("ix_meter_frames_charger_id_timestamp")

    op.drop_table("meter_frames")
