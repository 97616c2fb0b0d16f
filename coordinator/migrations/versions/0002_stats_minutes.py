"""1 minute stats rollups per queue and per (queue, node label).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stats_minutes",
        sa.Column("queue", sa.String(128), primary_key=True),
        sa.Column("dim", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(255), primary_key=True),
        sa.Column("minute", sa.BigInteger(), primary_key=True),
        sa.Column("succeeded", sa.BigInteger(), nullable=False),
        sa.Column("failed", sa.BigInteger(), nullable=False),
        sa.Column("retried", sa.BigInteger(), nullable=False),
        sa.Column("dead_lettered", sa.BigInteger(), nullable=False),
        sa.Column("rejected", sa.BigInteger(), nullable=False),
        sa.Column("backlog", sa.BigInteger(), nullable=False),
        sa.Column("run_time", sa.LargeBinary(), nullable=False),
        sa.Column("wait_time", sa.LargeBinary(), nullable=False),
        sa.Column("end_to_end", sa.LargeBinary(), nullable=False),
    )
    # Retention deletes by minute across every series.
    op.create_index("ix_stats_minutes_minute", "stats_minutes", ["minute"])


def downgrade() -> None:
    op.drop_index("ix_stats_minutes_minute", "stats_minutes")
    op.drop_table("stats_minutes")
