"""experiments: a campaign's A/B test (variants, split, holdout, test window, decision)
and when its winner is due to be chosen

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from echelon.db.types import Json, UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("campaigns", sa.Column("experiment", Json, nullable=True))
    op.add_column("campaigns", sa.Column("rollout_due_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    # Plain ALTER TABLE … DROP COLUMN: a batch rebuild of campaigns would cascade.
    op.drop_column("campaigns", "rollout_due_at")
    op.drop_column("campaigns", "experiment")
