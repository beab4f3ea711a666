"""charger gateway: which gateway process holds each charger's socket, and that socket's token

Revision ID: 0014
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("chargers") as batch:
        batch.add_column(sa.Column("gateway_id", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("connection_token", sa.String(length=64), nullable=True))
    op.create_index(op.f("ix_chargers_gateway_id"), "chargers", ["gateway_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_chargers_gateway_id"), table_name="chargers")
    with op.batch_alter_table("chargers") as batch:
        batch.drop_column("connection_token")
        batch.drop_column("gateway_id")
