"""meter frames stored once: a digest column and a unique frame key

Revision ID: 0008
Revises: 0007

DESIGN "Durability": a MeterValues frame identical to a stored one (same charger, connector,
timestamp and samples) is stored once. The unique index on (charger_id, timestamp,
connector_number, digest) replaces the index on (charger_id, timestamp), whose reads it serves
as well. Rows written before this migration keep a NULL digest: NULLs never conflict, so no
existing row has to be hashed or removed, and a process of the previous release (which writes
no digest) keeps working beside the new one (expand/contract).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

KEY_INDEX = "uq_meter_frames_charger_id_timestamp_connector_number_digest"
KEY = ["charger_id", "timestamp", "connector_number", "digest"]


def upgrade() -> None:
    with op.batch_alter_table("meter_frames") as batch_op:
        batch_op.add_column(sa.Column("digest", sa.BigInteger(), nullable=True))
        batch_op.create_index(KEY_INDEX, KEY, unique=True)
        batch_op.drop_index("ix_meter_frames_charger_id_timestamp")


def downgrade() -> None:
    with op.batch_alter_table("meter_frames") as batch_op:
        batch_op.create_index("ix_meter_frames_charger_id_timestamp", ["charger_id", "timestamp"], unique=False)
        batch_op.drop_index(KEY_INDEX)
        batch_op.drop_column("digest")
