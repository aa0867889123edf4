"""receipts without foreign keys to their message and channel

A receipt is a log line of what an SMSC said; the dispatcher stores thousands a second,
tied to messages it is updating at the same moment. Each foreign key check locked the
referenced row (``FOR KEY SHARE``): every receipt locked its message while the outcome
write was updating it, and the one channel row that every receipt, outcome and claim
of the channel locks — PostgreSQL turned those overlapping locks into multixacts. At
100,000 messages the receipts INSERT took 8.6 s of statement time, 4.9 s without the
keys; PostgreSQL's CPU fell from 10.6 s to 7.6 s and the dispatch rose 6%.

What the keys did is done by the code that writes and deletes: receipts are only ever
tied to a message the dispatcher has just read or written, channels are never deleted
(they are disabled), and forgetting a number deletes its receipts with its messages
(``audience.records``).

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_KEYS = (
    ("fk_receipts_message_id_messages", "messages", "message_id"),
    ("fk_receipts_channel_id_channels", "channels", "channel_id"),
)


def upgrade() -> None:
    with op.batch_alter_table("receipts", schema=None) as batch_op:
        for name, _, _ in _KEYS:
            batch_op.drop_constraint(name, type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("receipts", schema=None) as batch_op:
        for name, table, column in _KEYS:
            batch_op.create_foreign_key(name, table, [column], ["id"], ondelete="CASCADE")
