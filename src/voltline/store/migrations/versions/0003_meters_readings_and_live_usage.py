"""meters readings and live usage

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "meter_readings",
        sa.Column("meter_id", sa.Integer(), nullable=False),
        sa.Column("l1", sa.String(length=32), nullable=False),
        sa.Column("l2", sa.String(length=32), nullable=False),
        sa.Column("l3", sa.String(length=32), nullable=False),
        sa.Column("power", sa.String(length=32), nullable=True),
        sa.Column("power_l1", sa.String(length=32), nullable=True),
        sa.Column("power_l2", sa.String(length=32), nullable=True),
        sa.Column("power_l3", sa.String(length=32), nullable=True),
        sa.Column("reading_at", sa.DateTime(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["meter_id"], ["meters.id"], name=op.f("fk_meter_readings_meter_id_meters"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("meter_id", name=op.f("pk_meter_readings")),
    )


def downgrade() -> None:

    op.drop_table("meter_readings")
