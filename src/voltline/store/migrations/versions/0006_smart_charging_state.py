"""smart charging state

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "charging_profiles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("charger_id", sa.Integer(), nullable=False),
        sa.Column("connector_number", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("stack_level", sa.Integer(), nullable=False),
        sa.Column("profile_id", sa.Integer(), nullable=False),
        sa.Column("limit_tenths", sa.Integer(), nullable=False),
        sa.Column("reserved_tenths", sa.Integer(), nullable=True),
        sa.Column("unit", sa.String(length=1), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("transaction_id", sa.BigInteger(), nullable=True),
        sa.Column("sent_at", sa.DateTime(), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["charger_id"],
            ["chargers.id"],
            name=op.f("fk_charging_profiles_charger_id_chargers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_charging_profiles")),
        sa.UniqueConstraint(
            "charger_id",
            "connector_number",
            "purpose",
            name="uq_charging_profiles_charger_id_connector_number_purpose",
        ),
    )
    op.create_table(
        "charger_capabilities",
        sa.Column("charger_id", sa.Integer(), nullable=False),
        sa.Column("rate_units", sa.String(length=16), nullable=True),
        sa.Column("max_stack_level", sa.Integer(), nullable=True),
        sa.Column("zero_amp_supported", sa.Boolean(), nullable=True),
        sa.Column("pause_unsupported", sa.Boolean(), nullable=False),
        sa.Column("configuration", sa.Text(), nullable=True),
        sa.Column("read_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["charger_id"],
            ["chargers.id"],
            name=op.f("fk_charger_capabilities_charger_id_chargers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("charger_id", name=op.f("pk_charger_capabilities")),
    )


def downgrade() -> None:
    op.drop_table("charger_capabilities")
    op.drop_table("charging_profiles")
