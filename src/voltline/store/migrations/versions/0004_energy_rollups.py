"""energy rollups

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "energy_rollups",
        sa.Column("charger_id", sa.Integer(), nullable=False),
        sa.Column("connector_number", sa.Integer(), nullable=False),
        sa.Column("bucket_start", sa.DateTime(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("site_id", sa.Integer(), nullable=True),
        sa.Column("wh", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["charger_id"], ["chargers.id"], name=op.f("fk_energy_rollups_charger_id_chargers"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("charger_id", "connector_number", "bucket_start", name=op.f("pk_energy_rollups")),
    )
    with op.batch_alter_table("energy_rollups", schema=None) as batch_op:
        batch_op.create_index("ix_energy_rollups_site_id_bucket_start", ["site_id", "bucket_start"], unique=False)

    op.create_table(
        "energy_registers",
        sa.Column("charger_id", sa.Integer(), nullable=False),
        sa.Column("connector_number", sa.Integer(), nullable=False),
        sa.Column("good_at", sa.DateTime(), nullable=False),
        sa.Column("good_wh", sa.BigInteger(), nullable=False),
        sa.Column("seen_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["charger_id"], ["chargers.id"], name=op.f("fk_energy_registers_charger_id_chargers"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("charger_id", "connector_number", name=op.f("pk_energy_registers")),
    )


def downgrade() -> None:
    op.drop_table("energy_registers")
    with op.batch_alter_table("energy_rollups", schema=None) as batch_op:
        batch_op.drop_index("ix_energy_rollups_site_id_bucket_start")

    op.drop_table("energy_rollups")
