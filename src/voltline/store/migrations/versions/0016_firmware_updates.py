"""firmware updates: each UpdateFirmware a team asked for and the states it went through

OCPP 1.6 §5.19 UpdateFirmware, §4.5 FirmwareStatusNotification. A new table only, so old and
new processes run side by side across it (expand).

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "firmware_updates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("charger_id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("retrieve_at", sa.DateTime(), nullable=False),
        sa.Column("retries", sa.Integer(), nullable=True),
        sa.Column("retry_interval", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("firmware_version_before", sa.String(length=64), nullable=True),
        sa.Column("firmware_version_after", sa.String(length=64), nullable=True),
        sa.Column("history", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["charger_id"],
            ["chargers.id"],
            name=op.f("fk_firmware_updates_charger_id_chargers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name=op.f("fk_firmware_updates_team_id_teams"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_firmware_updates")),
        sa.UniqueConstraint("uuid", name=op.f("uq_firmware_updates_uuid")),
    )
    op.create_index("ix_firmware_updates_charger_id_id", "firmware_updates", ["charger_id", "id"], unique=False)
    op.create_index(
        "ix_firmware_updates_team_id_charger_id_id",
        "firmware_updates",
        ["team_id", "charger_id", "id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_firmware_updates_team_id_charger_id_id", table_name="firmware_updates")
    op.drop_index("ix_firmware_updates_charger_id_id", table_name="firmware_updates")
    op.drop_table("firmware_updates")
