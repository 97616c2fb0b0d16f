"""Named brokers, and queues that live on one.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "brokers",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("backend", sa.String(32), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("endpoints", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )
    op.add_column("queues", sa.Column("broker", sa.String(128), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("queues") as batch:
        batch.drop_column("broker")
    op.drop_table("brokers")
