"""load management on existing sites; whether a charger's last boot was accepted

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # DESIGN "Load management": a new site starts unbalanced, but every site that exists now was
    # balanced (the controller ignored the flag), so it keeps load management on.
    sites = sa.table("sites", sa.column("load_management", sa.Boolean()))
    op.execute(sites.update().values(load_management=True))
    with op.batch_alter_table("chargers") as batch_op:
        batch_op.add_column(sa.Column("boot_accepted", sa.Boolean(), server_default=sa.false(), nullable=False))
    # Every boot so far was Accepted: a charger that ever booted keeps being served after the upgrade.
    chargers = sa.table("chargers", sa.column("boot_accepted", sa.Boolean()), sa.column("boot_payload", sa.Text()))
    op.execute(chargers.update().where(chargers.c.boot_payload.is_not(None)).values(boot_accepted=True))


def downgrade() -> None:
    with op.batch_alter_table("chargers") as batch_op:
        batch_op.drop_column("boot_accepted")
