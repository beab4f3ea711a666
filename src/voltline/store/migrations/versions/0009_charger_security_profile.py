"""chargers get an OCPP security profile

Revision ID: 0009
Revises: 0008

Existing chargers without a password go on profile 0 (identity only, as they connected so
far); those with a password on profile 1. New chargers start at profile 1.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("chargers") as batch_op:
        batch_op.add_column(sa.Column("security_profile", sa.Integer(), server_default=sa.text("1"), nullable=False))
    op.execute("UPDATE chargers SET security_profile = 0 WHERE password_hash IS NULL")


def downgrade() -> None:
    with op.batch_alter_table("chargers") as batch_op:
        batch_op.drop_column("security_profile")
