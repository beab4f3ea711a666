"""diagnostics: upload requests with their one-time token's hash, and the uploaded files (docs/api.md "Diagnostics")

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "diagnostics_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("charger_id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("log_type", sa.String(length=16), nullable=False),
        sa.Column("start_time", sa.DateTime(), nullable=True),
        sa.Column("stop_time", sa.DateTime(), nullable=True),
        sa.Column("token_hash", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["charger_id"],
            ["chargers.id"],
            name=op.f("fk_diagnostics_requests_charger_id_chargers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name=op.f("fk_diagnostics_requests_team_id_teams"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_diagnostics_requests")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_diagnostics_requests_token_hash")),
        sa.UniqueConstraint("uuid", name=op.f("uq_diagnostics_requests_uuid")),
    )
    op.create_index("ix_diagnostics_requests_charger_id_id", "diagnostics_requests", ["charger_id", "id"])
    op.create_table(
        "diagnostics_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("charger_id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=127), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["charger_id"], ["chargers.id"], name=op.f("fk_diagnostics_files_charger_id_chargers"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["diagnostics_requests.id"],
            name=op.f("fk_diagnostics_files_request_id_diagnostics_requests"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name=op.f("fk_diagnostics_files_team_id_teams"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_diagnostics_files")),
        sa.UniqueConstraint("uuid", name=op.f("uq_diagnostics_files_uuid")),
    )
    op.create_index("ix_diagnostics_files_charger_id_id", "diagnostics_files", ["charger_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_diagnostics_files_charger_id_id", table_name="diagnostics_files")
    op.drop_table("diagnostics_files")
    op.drop_index("ix_diagnostics_requests_charger_id_id", table_name="diagnostics_requests")
    op.drop_table("diagnostics_requests")
