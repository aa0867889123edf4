"""planning cursor: campaigns plan page by page and resume after the last contact planned

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from echelon.db.types import Id

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("campaigns", sa.Column("planned_through", Id, nullable=True))


def downgrade() -> None:
    # Plain ALTER TABLE … DROP COLUMN (SQLite ≥ 3.35): a batch rebuild would drop and
    # re-create campaigns, and the drop would cascade into their messages.
    op.drop_column("campaigns", "planned_through")
