"""v3 core: when a charger last connected, disconnected and sent a Heartbeat (spec volttime-v3 §3.2)

Revision ID: 0022
Revises: 0021
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("chargers") as batch:
        batch.add_column(sa.Column("last_connection_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("last_disconnection_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("last_heartbeat_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("chargers") as batch:
        batch.drop_column("last_heartbeat_at")
        batch.drop_column("last_disconnection_at")
        batch.drop_column("last_connection_at")
