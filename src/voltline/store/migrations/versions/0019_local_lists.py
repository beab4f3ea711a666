"""local lists: what each charger's local authorization list holds, as we last set it (OCPP 1.6 §3.5.3)

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "charger_local_lists",
        sa.Column("charger_id", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=True),
        sa.Column("supported", sa.Boolean(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("entries", sa.Text(), nullable=True),
        sa.Column("max_length", sa.Integer(), nullable=True),
        sa.Column("chunk_length", sa.Integer(), nullable=True),
        sa.Column("last_sync_at", sa.DateTime(), nullable=True),
        sa.Column("last_outcome", sa.String(length=32), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["charger_id"], ["chargers.id"], name=op.f("fk_charger_local_lists_charger_id_chargers"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("charger_id", name=op.f("pk_charger_local_lists")),
    )


def downgrade() -> None:
    op.drop_table("charger_local_lists")
