"""jobs.retry_of: the job a /plugin-retry runs again (the first of its chain)

A retry publishes onto the branch and pull request of the job it retries, so it must know
which one; before, the dispatcher's link was dropped at admission.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("retry_of", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("retry_of")
