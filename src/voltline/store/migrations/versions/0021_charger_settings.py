"""charger settings: the v3 settings of each charger (lock, socket lock, plug & charge; volttime-v3 §3.10)

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "charger_settings",
        sa.Column("charger_id", sa.Integer(), nullable=False),
        sa.Column("lock_enabled", sa.Boolean(), nullable=False),
        sa.Column("lock_applied", sa.Boolean(), nullable=True),
        sa.Column("socket_lock_enabled", sa.Boolean(), nullable=True),
        sa.Column("plug_charge_enabled", sa.Boolean(), nullable=False),
        sa.Column("plug_charge_card", sa.String(length=20), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["charger_id"], ["chargers.id"], name=op.f("fk_charger_settings_charger_id_chargers"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("charger_id", name=op.f("pk_charger_settings")),
    )


def downgrade() -> None:
    op.drop_table("charger_settings")
