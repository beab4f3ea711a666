"""message-log rows carry their team; chargers remember their attachment

DESIGN (Charger security): message-log rows carry the team that owned the charger when they were
written, and rows from before a charger's current attachment are shown to no team. Rows logged
before this migration get no team: who owned the charger when they were written is not known,
so they are shown to nobody and age out with the log's retention.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("chargers") as batch_op:
        batch_op.add_column(sa.Column("attached_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("ocpp_messages") as batch_op:
        batch_op.add_column(sa.Column("team_id", sa.Integer(), nullable=True))
        batch_op.drop_index("ix_ocpp_messages_charger_id_id")
        batch_op.create_index("ix_ocpp_messages_charger_id_team_id_id", ["charger_id", "team_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ocpp_messages") as batch_op:
        batch_op.drop_index("ix_ocpp_messages_charger_id_team_id_id")
        batch_op.create_index("ix_ocpp_messages_charger_id_id", ["charger_id", "id"], unique=False)
        batch_op.drop_column("team_id")
    with op.batch_alter_table("chargers") as batch_op:
        batch_op.drop_column("attached_at")
