"""day ahead prices

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "day_ahead_prices",
        sa.Column("zone", sa.String(length=16), nullable=False),
        sa.Column("slot_start", sa.DateTime(), nullable=False),
        sa.Column("slot_end", sa.DateTime(), nullable=False),
        sa.Column("price", sa.String(length=24), nullable=False),
        sa.Column("imported_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("zone", "slot_start", name=op.f("pk_day_ahead_prices")),
    )


def downgrade() -> None:

    op.drop_table("day_ahead_prices")
