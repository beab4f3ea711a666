"""power pictures: the controller's last run of each site, for any process to serve

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "power_pictures",
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("picture", sa.Text(), nullable=False),
        sa.Column("taken_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_power_pictures_site_id_sites"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("site_id", name=op.f("pk_power_pictures")),
    )


def downgrade() -> None:
    op.drop_table("power_pictures")
