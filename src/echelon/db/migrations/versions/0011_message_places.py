"""message places: the recipient's carrier and province on each message, as they were
when it was planned — reports group by them without joining the contacts, and the
dispatcher routes by carrier without reading the contact

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
    op.add_column("messages", sa.Column("carrier", sa.String(16), nullable=True))
    op.add_column("messages", sa.Column("province", sa.String(32), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "UPDATE messages SET carrier = c.carrier, province = c.province"
            " FROM contacts c WHERE c.id = messages.contact_id"
        )
    else:
        op.execute(
            "UPDATE messages SET"
            " carrier = (SELECT c.carrier FROM contacts c WHERE c.id = messages.contact_id),"
            " province = (SELECT c.province FROM contacts c WHERE c.id = messages.contact_id)"
        )


def downgrade() -> None:
    op.drop_column("messages", "province")
    op.drop_column("messages", "carrier")
