"""Receipts matched in memory: whenever a receipt comes, its message ends exactly once,
by the right write — folded into the outcome write, right after it, or on its own."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from echelon.channels.base import Receipt
from echelon.dispatch.correlation import Arrived, Correlator
from echelon.dispatch.inbound import Sent

AT = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
CHANNEL = 7
# When a message's receipt comes, relative to its batch's outcome write.
BEFORE_WRITE, DURING_WRITE, AFTER_WRITE, NEVER = "before", "during", "after", "never"


def receipt(provider_id: str, status: str = "delivered") -> Arrived[str]:
    return Arrived(
        CHANNEL,
        Receipt(provider_id, status, None, None, None, raw=provider_id),  # type: ignore[arg-type]
        AT,
        token=provider_id,
    )


def test_a_receipt_that_overtakes_the_write_is_folded_into_it() -> None:
    correlator: Correlator[str] = Correlator()
    correlator.responded(CHANNEL, "p1", 1)
    matched, rest = correlator.sort([receipt("p1", "undelivered")])
    assert [(m.message_id, m.sent) for m in matched] == [(1, None)] and rest == []
    assert correlator.endings([1, 2])[1].status == "undelivered"
    assert correlator.close([1, 2], [(CHANNEL, "p2", Sent(2, 1, "+8613800000002"))]) == []
    assert correlator.awaiting == 1


def test_a_receipt_nobody_here_sent_takes_the_database_path() -> None:
    correlator: Correlator[str] = Correlator()
    correlator.responded(CHANNEL, "p1", 1)
    other_channel = Arrived(CHANNEL + 1, receipt("p1").receipt, AT, "x")
    matched, rest = correlator.sort([receipt("p9"), other_channel])
    assert matched == [] and [a.token for a in rest] == ["p9", "x"]


def test_the_oldest_awaited_give_way_beyond_capacity() -> None:
    correlator: Correlator[str] = Correlator(capacity=2)
    correlator.close([], [(CHANNEL, f"p{i}", Sent(i, 1, "+86138")) for i in range(3)])
    assert correlator.awaiting == 2
    matched, rest = correlator.sort([receipt("p0"), receipt("p2")])
    assert [a.token for a in rest] == ["p0"] and [m.message_id for m in matched] == [2]


@given(
    st.lists(
        st.tuples(
            st.sampled_from([BEFORE_WRITE, DURING_WRITE, AFTER_WRITE, NEVER]),
            st.booleans(),  # accepted (else the SMSC refused it: no provider id)
            st.booleans(),  # the SMSC sends the receipt twice
        ),
        min_size=1,
        max_size=30,
    ),
    st.booleans(),  # the write fails
)
def test_each_receipt_ends_its_message_once_by_the_right_write(
    plan: list[tuple[str, bool, bool]], write_fails: bool
) -> None:
    correlator: Correlator[str] = Correlator()
    ids = list(range(1, len(plan) + 1))
    ended: dict[int, list[str]] = {i: [] for i in ids}  # message → the writes that ended it
    stored: list[str] = []  # receipts stored linked
    to_database: list[str] = []

    def arrive(phase: str) -> None:
        batch = []
        for message_id, (when, accepted, twice) in zip(ids, plan, strict=True):
            if when == phase and accepted:
                batch += [receipt(f"p{message_id}")] * (2 if twice else 1)
        matched, rest = correlator.sort(batch)
        for m in matched:
            assert m.arrived.receipt.provider_id == f"p{m.message_id}"
            stored.append(m.arrived.token)
            if m.sent is not None:
                ended[m.message_id].append("own")
        to_database.extend(a.token for a in rest)

    for message_id, (_, accepted, _) in zip(ids, plan, strict=True):
        if accepted:
            correlator.responded(CHANNEL, f"p{message_id}", message_id)
    arrive(BEFORE_WRITE)
    folded = correlator.endings(ids)
    arrive(DURING_WRITE)
    written = [] if write_fails else [i for i, (_, ok, _) in zip(ids, plan, strict=True) if ok]
    for message_id in written:
        if message_id in folded:
            ended[message_id].append("fold")
    awaiting = [
        (CHANNEL, f"p{i}", Sent(i, 1, f"+86138{i:08d}")) for i in written if i not in folded
    ]
    for sent, _ in correlator.close(ids, awaiting):
        ended[sent.message_id].append("late")
    arrive(AFTER_WRITE)

    for message_id, (when, accepted, twice) in zip(ids, plan, strict=True):
        token = f"p{message_id}"
        expected = {
            BEFORE_WRITE: ["fold"], DURING_WRITE: ["late"], AFTER_WRITE: ["own"], NEVER: [],
        }[when]  # fmt: skip
        if not accepted or (write_fails and when != NEVER):
            expected = []
        assert ended[message_id] == expected, (message_id, when)
        if accepted and when != NEVER:
            # Stored linked once whenever the message was known; a second copy, or one
            # after a failed write, is for the database path (idempotent there).
            known = not (write_fails and when == AFTER_WRITE)
            assert stored.count(token) == (1 if known else 0)
            assert to_database.count(token) == (2 if twice else 1) - stored.count(token)
