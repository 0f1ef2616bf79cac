"""jobs.kind: what a job does ("create" or "revise"), carried from its admission

Before it, a job's kind was read from its description's first words, so a /create-plugin
whose text began with "/plugin-revise " ran as a revision. Existing rows: a description
that begins so was a revision's (the dispatcher wrote it), any other a create.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(
            sa.Column("kind", sa.String(length=16), nullable=False, server_default="create")
        )
    op.execute("UPDATE jobs SET kind = 'revise' WHERE description LIKE '/plugin-revise %'")


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("kind")
