"""charge limits: a per-connector cap (v3 actions/charge-limit), kept until cleared

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "connector_charge_limits",
        sa.Column("connector_id", sa.Integer(), nullable=False),
        sa.Column("charger_id", sa.Integer(), nullable=False),
        sa.Column("limit_tenths", sa.Integer(), nullable=True),
        sa.Column("stack_level", sa.Integer(), nullable=False),
        sa.Column("number_phases", sa.Integer(), nullable=True),
        sa.Column("profile_status", sa.String(length=16), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["charger_id"],
            ["chargers.id"],
            name=op.f("fk_connector_charge_limits_charger_id_chargers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["connector_id"],
            ["connectors.id"],
            name=op.f("fk_connector_charge_limits_connector_id_connectors"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("connector_id", name=op.f("pk_connector_charge_limits")),
    )
    op.create_index("ix_connector_charge_limits_charger_id", "connector_charge_limits", ["charger_id"])


def downgrade() -> None:
    op.drop_index("ix_connector_charge_limits_charger_id", table_name="connector_charge_limits")
    op.drop_table("connector_charge_limits")
