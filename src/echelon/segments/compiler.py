"""The compiler: a segment definition → one SQL predicate over ``contacts``.

The whole definition becomes a single SQLAlchemy Core expression that the database
evaluates; nothing is fetched into Python to decide membership. It means the same on
SQLite and PostgreSQL (the dialect differences live in ``expressions``), and every
moment in it comes from the ``now`` given — never the database clock — so a count is
reproducible and the tests can compare it with a plain-Python evaluation.

Meaning, in one place:
- event, message, click and reply windows are ``(now - window, now]``; later rows are
  ignored; a contact's own facts (tags, consent, suppression) are as they are now;
- every condition is two-valued (a missing value fails the test), so ``not`` is
  "everyone else";
- behaviour tests are EXISTS sub-queries on the contact's rows in the workspace. Tests
  of aggregates on the same rows inside one ``and`` share one sub-query (frequency and
  monetary read a contact's purchases once); recency is a pair of existence tests; a
  test that holds for someone with no rows at all ("at most 2 times", "spent at most
  ¥100") is compiled as NOT of its complement.

How, for speed (``_Compiler._matching``): the rows of a short window are read once as
a set; longer histories are read per contact, after the tests on the contact's own row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Select,
    String,
    and_,
    exists,
    func,
    literal,
    not_,
    or_,
    select,
)
from sqlalchemy.sql.util import ClauseAdapter

from echelon.db.outbox import messages, replies
from echelon.db.tables import consents, contact_tags, contacts, events, suppressions
from echelon.db.tracking import clicks
from echelon.db.types import UTCDateTime
from echelon.segments.expressions import (
    among,
    as_number,
    binary_text,
    contains_text,
    json_property,
    no_index,
    plus_seconds,
)
from echelon.segments.models import (
    ANY_EVENT,
    Age,
    AllOf,
    AnyOf,
    Attribute,
    Comparison,
    Consent,
    Engagement,
    Event,
    EventFilter,
    EventNotFollowed,
    Gender,
    InvalidDefinition,
    NewContact,
    Node,
    NoneOf,
    Purchases,
    SegmentRef,
    Suppressed,
    Tags,
    walk,
)

_OWN_ROW = (Attribute, Gender, Age, NewContact, AllOf, AnyOf, NoneOf)

_EVENT_COLUMNS = ("category", "coupon_code", "order_id")
# Both databases keep microseconds: "after one microsecond before t" is "at or after t".
_JUST_BEFORE = timedelta(microseconds=1)
# Rows of a window up to this long are read as one set, longer ones per contact (see
# _Compiler._matching): a month holds a small share of a shop's history.
SHORT_WINDOW = timedelta(days=31)


@dataclass(frozen=True)
class Scope:
    """What a definition is evaluated against: the workspace, the moment, the zone
    (for ages), and the definitions of the segments it refers to (by id)."""

    workspace_id: int
    now: datetime
    timezone: str
    segments: Mapping[int, Node] = field(default_factory=dict)

    @property
    def today(self) -> date:
        return self.now.astimezone(ZoneInfo(self.timezone)).date()


def segment_predicate(node: Node, scope: Scope) -> ColumnElement[bool]:
    """Membership as a predicate over ``contacts``; the caller scopes ``contacts`` to
    the workspace (every sub-query here is scoped already)."""
    if scope.now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    return _Compiler(scope).node(node)


def members_query(node: Node, scope: Scope, *columns: Any) -> Select[Any]:
    """``SELECT columns FROM contacts`` of the workspace's members of ``node``."""
    # Not through (workspace_id, phone): SQLite would look each contact up from there;
    # the table read in id order is faster (the campaign planner does the same).
    mine = no_index(contacts.c.workspace_id) == scope.workspace_id
    return select(*columns).where(mine, segment_predicate(node, scope))


# ---------------------------------------------------------------- facts and tests


@dataclass(frozen=True)
class _Facts:
    """Rows of one table that belong to a contact: events of a type, delivered
    messages, replies. ``key`` is equal exactly when the rows are."""

    key: tuple[Any, ...]
    table: FromClause
    contact: ColumnElement[int]
    time: ColumnElement[datetime]
    workspace: ColumnElement[int]
    where: tuple[ColumnElement[bool], ...]


class _Aggregates:
    """Aggregates of one test over its own window, inside a scan of a wider one."""

    def __init__(self, facts: _Facts, since: datetime | None, scanned: datetime | None) -> None:
        self._facts = facts
        self._narrower = since is not None and since != scanned
        self._since = since

    def _windowed(self, aggregate: Any) -> Any:
        return aggregate.filter(self._facts.time > self._since) if self._narrower else aggregate

    def count(self) -> ColumnElement[int]:
        return self._windowed(func.count())  # type: ignore[no-any-return]

    def count_of(self, column: str) -> ColumnElement[int]:
        return self._windowed(func.count(self._facts.table.c[column]))  # type: ignore[no-any-return]

    def sum_of(self, column: str) -> ColumnElement[int]:
        return self._windowed(func.sum(self._facts.table.c[column]))  # type: ignore[no-any-return]


Having = Callable[[_Aggregates], ColumnElement[bool]]


@dataclass(frozen=True)
class _Test:
    """ "Has rows in the window (since, now] whose aggregates pass ``having``";
    ``having`` None: has at least one such row."""

    facts: _Facts
    since: datetime | None
    having: Having | None = None


@dataclass(frozen=True)
class _Negated:
    test: _Test


_Compiled = ColumnElement[bool] | _Test | _Negated


class _Compiler:
    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.ws = scope.workspace_id
        self.now = scope.now
        self._resolving: list[int] = []
        # Tests on the contact's own row of each enclosing ``and``.
        self._narrowing: list[list[ColumnElement[bool]]] = []

    # -------------------------------------------------------- tree

    def node(self, node: Node) -> ColumnElement[bool]:
        return self._finish(self._compile(node))

    def _compile(self, node: Node) -> _Compiled:
        if isinstance(node, AllOf):
            return self._all(node.nodes)
        if isinstance(node, AnyOf):
            return or_(*(self.node(n) for n in node.nodes))
        if isinstance(node, NoneOf):
            inner = self._compile(node.node)
            if isinstance(inner, _Test):
                return _Negated(inner)
            if isinstance(inner, _Negated):
                return inner.test
            return not_(inner)
        if isinstance(node, SegmentRef):
            return self._segment(node)
        return self._condition(node)

    def _finish(self, compiled: _Compiled) -> ColumnElement[bool]:
        if isinstance(compiled, _Test):
            return self._passes(compiled.facts, [compiled])
        if isinstance(compiled, _Negated):
            return not_(self._passes(compiled.test.facts, [compiled.test]))
        return compiled

    def _conjuncts(self, nodes: Iterable[Node]) -> Iterable[Node]:
        for node in nodes:
            if isinstance(node, AllOf):
                yield from self._conjuncts(node.nodes)
            else:
                yield node

    def _all(self, nodes: Sequence[Node]) -> ColumnElement[bool]:
        conjuncts = list(self._conjuncts(nodes))
        cheap = [n for n in conjuncts if all(isinstance(m, _OWN_ROW) for m in walk(n))]
        own_row = [self.node(n) for n in cheap]
        # Whoever fails these is out whatever the rest says: the sets read below may
        # leave such contacts out too, and so stay small (see _matching).
        self._narrowing.append(own_row)
        try:
            other: list[ColumnElement[bool]] = []
            aggregated: dict[tuple[Any, ...], list[_Test]] = {}
            for node in conjuncts:
                if any(node is n for n in cheap):
                    continue
                part = self._compile(node)
                if isinstance(part, _Test) and part.having is not None:
                    aggregated.setdefault(part.facts.key, []).append(part)
                else:
                    other.append(self._finish(part))
            shared = [self._passes(tests[0].facts, tests) for tests in aggregated.values()]
        finally:
            self._narrowing.pop()
        # Cheapest first: the contact's own row, then the joins, then the per-contact
        # aggregates, so both databases aggregate only for the contacts still in.
        return and_(*own_row, *other, *shared)

    def _segment(self, ref: SegmentRef) -> _Compiled:
        if not isinstance(ref.segment, int) or ref.segment not in self.scope.segments:
            raise InvalidDefinition(f"引用的分群「{ref.segment}」不存在")
        if ref.segment in self._resolving:
            raise InvalidDefinition(f"分群引用成环：分群 #{ref.segment} 引用了自己")
        self._resolving.append(ref.segment)
        try:
            return self._compile(self.scope.segments[ref.segment])
        finally:
            self._resolving.pop()

    # -------------------------------------------------------- sub-queries

    def _passes(self, facts: _Facts, tests: Sequence[_Test]) -> ColumnElement[bool]:
        """Contacts whose rows of ``facts`` pass every test. Tests of aggregates share one
        sub-query (RFM reads a contact's purchases once)."""
        sinces = [t.since for t in tests]
        scanned = None if None in sinces else min(s for s in sinces if s is not None)
        where = [*facts.where, facts.time <= self.now]
        if scanned is not None:
            where.append(facts.time > scanned)
        havings: list[ColumnElement[bool]] = []
        if len(tests) > 1 or tests[0].having is not None:
            for test in tests:
                aggregates = _Aggregates(facts, test.since, scanned)
                havings.append(
                    aggregates.count() >= 1 if test.having is None else test.having(aggregates)
                )
        short = scanned is not None and self.now - scanned <= SHORT_WINDOW
        return self._matching(
            facts.table, facts.contact, facts.workspace, where, havings, short=short
        )

    def _matching(
        self,
        table: FromClause,
        contact: ColumnElement[int],
        workspace: ColumnElement[int],
        where: Sequence[ColumnElement[bool]],
        havings: Sequence[ColumnElement[bool]] = (),
        *,
        short: bool,
    ) -> ColumnElement[bool]:
        """Contacts with rows of ``table`` passing ``where`` (and, grouped per contact,
        ``havings``), written so that both planners do well:

        - the rows of a short window are few: they are read once, as a set, through
          the workspace's index (PostgreSQL joins the set to the contacts, SQLite
          builds it once and looks each contact up in it);
        - otherwise each contact's own rows are read through its own index, and only
          for the contacts that the cheaper tests have not ruled out.

        Either way an EXISTS, which PostgreSQL makes a semi-join, or under NOT an
        anti-join."""
        if short:
            narrowing = [test for tests in self._narrowing for test in tests]
            source = table
            if narrowing:
                # The set leaves out contacts the enclosing ``and`` rules out anyway
                # (the shop's province, say): smaller, and both planners then start
                # from it rather than from every contact.
                member = contacts.alias("member")
                source = table.join(member, member.c.id == contact)
                narrowing = [ClauseAdapter(member).traverse(test) for test in narrowing]
            rows = select(contact.label("contact_id")).select_from(source)
            rows = rows.where(workspace == self.ws, contact.is_not(None), *where, *narrowing)
            if havings:
                rows = rows.group_by(contact).having(and_(*havings))
            return among(contacts.c.id, rows.scalar_subquery())
        own = select(literal(1)).select_from(table)
        own = own.where(contact == contacts.c.id, no_index(workspace) == self.ws, *where)
        if havings:
            own = own.group_by(contact).having(and_(*havings))
        return exists(own)

    def _since(self, window: timedelta | None) -> datetime | None:
        return None if window is None else self.now - window

    def _events(
        self, event: str, filters: Sequence[EventFilter], table: FromClause = events
    ) -> _Facts:
        where = [] if event == ANY_EVENT else [table.c.type == event]
        where.extend(self._event_filter(table, f) for f in filters)
        key = ("events", event, tuple(f.model_dump_json() for f in filters))
        return _Facts(
            key, table, table.c.contact_id, table.c.occurred_at, table.c.workspace_id, tuple(where)
        )

    # -------------------------------------------------------- conditions

    def _condition(self, node: Node) -> _Compiled:
        if isinstance(node, Attribute):
            return self._attribute(node)
        if isinstance(node, Tags):
            return self._tags(node)
        if isinstance(node, Gender):
            if node.value == "unknown":
                return contacts.c.gender.is_(None)
            return and_(contacts.c.gender.is_not(None), contacts.c.gender == node.value)
        if isinstance(node, Age):
            return self._age(node)
        if isinstance(node, NewContact):
            return and_(
                contacts.c.created_at > self.now - timedelta(days=node.days),
                contacts.c.created_at <= self.now,
            )
        if isinstance(node, Consent):
            return self._consent(node)
        if isinstance(node, Suppressed):
            # By number, through the (workspace_id, phone, kind) key.
            s = suppressions.c
            found = exists().where(s.workspace_id == self.ws, s.phone == contacts.c.phone)
            if node.kinds is not None:
                found = found.where(s.kind.in_(node.kinds))
            return found
        if isinstance(node, Purchases):
            return self._purchases(node)
        if isinstance(node, Event):
            facts = self._events(node.event, node.where)
            return _counted(facts, self._since(node.window()), node.min, node.max)
        if isinstance(node, EventNotFollowed):
            return self._not_followed(node)
        if isinstance(node, Engagement):
            return _counted(
                self._engagement(node.action), self._since(node.window()), node.min, node.max
            )
        raise AssertionError(f"uncompiled node {node!r}")

    def _attribute(self, node: Attribute) -> ColumnElement[bool]:
        key = node.custom_key
        if key is not None:
            return _compare(json_property(contacts.c.attributes, key), node, text=True)
        if node.field == "birthday":
            return _compare(contacts.c.birthday, node, text=False, convert=_date)
        return _compare(contacts.c[node.field], node, text=True)

    def _event_filter(self, table: FromClause, node: EventFilter) -> ColumnElement[bool]:
        if node.property == "amount":
            return _compare(table.c.amount_fen, node, text=False, convert=_fen)
        if node.property in _EVENT_COLUMNS:
            return _compare(table.c[node.property], node, text=True)
        return _compare(json_property(table.c.properties, node.property), node, text=True)

    def _tags(self, node: Tags) -> ColumnElement[bool]:
        tags = sorted(set(node.tags))
        t = contact_tags.c
        every = [] if node.match == "any" else [func.count() == len(tags)]
        return self._matching(
            contact_tags, t.contact_id, t.workspace_id, [t.tag.in_(tags)], every, short=False
        )

    def _age(self, node: Age) -> ColumnElement[bool]:
        today = self.scope.today
        birthday = contacts.c.birthday
        tests: list[ColumnElement[bool]] = [birthday.is_not(None)]
        if node.min is not None:
            tests.append(birthday <= _birthday_for_age(today, node.min))
        if node.max is not None:
            tests.append(birthday > _birthday_for_age(today, node.max + 1))
        return and_(*tests)

    def _consent(self, node: Consent) -> ColumnElement[bool]:
        c = consents.c

        def grant(*more: ColumnElement[bool]) -> ColumnElement[bool]:
            where = [c.purpose == node.purpose, *more]
            return self._matching(consents, c.contact_id, c.workspace_id, where, short=False)

        live = grant(c.revoked_at.is_(None))
        if node.state == "granted":
            return live
        if node.state == "revoked":
            return and_(~live, grant(c.revoked_at.is_not(None)))
        return ~grant()

    def _purchases(self, node: Purchases) -> _Compiled:
        facts = self._events("purchase", node.where)
        since = self._since(node.window())
        low, high = node.min, node.max
        if node.measure == "count":
            return _counted(facts, since, int(low or 0), None if high is None else int(high))
        if node.measure == "total":
            low_fen = None if low is None else _fen(low)
            high_fen = None if high is None else _fen(high)
            if not low_fen:
                assert high_fen is not None
                return _Negated(_Test(facts, since, lambda a: a.sum_of("amount_fen") > high_fen))

            def total(a: _Aggregates) -> ColumnElement[bool]:
                spent = a.sum_of("amount_fen")
                return and_(spent >= low_fen, *([] if high_fen is None else [spent <= high_fen]))

            return _Test(facts, since, total)
        if node.measure == "average":

            def average(a: _Aggregates) -> ColumnElement[bool]:
                priced, spent = a.count_of("amount_fen"), a.sum_of("amount_fen")
                tests = [priced >= 1]
                if low is not None:
                    tests.append(spent >= _fen(low) * priced)
                if high is not None:
                    tests.append(spent <= _fen(high) * priced)
                return and_(*tests)

            return _Test(facts, since, average)
        if node.measure == "coupon_share":

            def share(a: _Aggregates) -> ColumnElement[bool]:
                orders, with_coupon = a.count(), a.count_of("coupon_code")
                tests = [orders >= 1]
                if low is not None:
                    p, q = low.as_integer_ratio()
                    tests.append(with_coupon * q >= orders * p)
                if high is not None:
                    p, q = high.as_integer_ratio()
                    tests.append(with_coupon * q <= orders * p)
                return and_(*tests)

            return _Test(facts, since, share)

        # Days since the last purchase, as existence tests (semi- and anti-joins, no
        # aggregate): at most ``high`` days ⇔ a purchase in [now - high, now]; at least
        # ``low`` days ⇔ none in (now - low, now] (and one before, by the first test).
        bought = _Test(
            facts,
            None if high is None else self.now - timedelta(days=int(high)) - _JUST_BEFORE,
        )
        if not low:
            return bought
        quiet = _Negated(_Test(facts, self.now - timedelta(days=int(low))))
        return and_(self._finish(bought), self._finish(quiet))

    def _not_followed(self, node: EventNotFollowed) -> ColumnElement[bool]:
        first = events.alias("first_event")
        later = events.alias("later_event")
        follow_up = self._events(node.then_not, node.then_where, later)
        until = [later.c.occurred_at <= self.now]
        if node.within_hours is not None:
            until.append(
                later.c.occurred_at <= plus_seconds(first.c.occurred_at, node.within_hours * 3600)
            )
        followed = exists().where(
            no_index(later.c.workspace_id) == self.ws,
            later.c.contact_id == first.c.contact_id,
            *follow_up.where,
            later.c.occurred_at > first.c.occurred_at,
            *until,
        )
        started = self._events(node.event, node.where, first)
        since = self._since(node.window())
        assert since is not None
        where = [*started.where, first.c.occurred_at > since, first.c.occurred_at <= self.now]
        short = self.now - since <= SHORT_WINDOW
        return self._matching(
            first, first.c.contact_id, first.c.workspace_id, [*where, ~followed], short=short
        )

    def _engagement(self, action: str) -> _Facts:
        if action == "received":
            m = messages.c
            return _Facts(
                ("received",),
                messages,
                m.contact_id,
                func.coalesce(m.done_at, m.submitted_at, type_=UTCDateTime()),
                m.workspace_id,
                (no_index(m.status) == "delivered",),
            )
        if action == "clicked":
            k = clicks.c
            return _Facts(
                ("clicked",), clicks, k.contact_id, k.clicked_at, k.workspace_id, (k.human,)
            )
        r = replies.c
        return _Facts(("replied",), replies, r.contact_id, r.received_at, r.workspace_id, ())


def _counted(facts: _Facts, since: datetime | None, low: int, high: int | None) -> _Compiled:
    """At least ``low`` and at most ``high`` rows in the window."""
    if low == 0:
        assert high is not None
        return _Negated(_Test(facts, since, lambda a: a.count() > high))
    if low == 1 and high is None:
        return _Test(facts, since)

    def between(a: _Aggregates) -> ColumnElement[bool]:
        n = a.count()
        return and_(n >= low, *([] if high is None else [n <= high]))

    return _Test(facts, since, between)


def _compare(
    value: ColumnElement[Any],
    node: Comparison,
    *,
    text: bool,
    convert: Callable[..., Any] = str,
) -> ColumnElement[bool]:
    """``node``'s test of ``value``. A text value tested by range compares as a number
    when the bounds are numbers (values that are not numbers fail), else as text in
    code point order. Never NULL: a missing value fails every test but ``not``."""
    present = value.is_not(None)
    if node.op == "exists":
        return and_(present, value != "") if text else present
    if node.op == "equals":
        return and_(present, value == convert(node.value))
    if node.op == "in":
        return and_(present, value.in_([convert(v) for v in node.values or ()]))
    if node.op == "contains":
        return and_(present, contains_text(value, literal(str(node.value), String())))
    low: Any = node.min
    high: Any = node.max
    if not text:
        low = None if low is None else convert(low, up=True)
        high = None if high is None else convert(high, up=False)
    elif isinstance(low if low is not None else high, Decimal):
        value = as_number(value)
    else:
        value = binary_text(value)
    tests: list[ColumnElement[bool]] = [value.is_not(None)]
    if low is not None:
        tests.append(value >= low)
    if high is not None:
        tests.append(value <= high)
    return and_(*tests)


def _date(value: Any, up: bool = False) -> date:
    return date.fromisoformat(str(value))


def _fen(yuan: Any, up: bool = False) -> int:
    """Yuan as whole fen; a bound between two fen rounds inwards (``up`` for a minimum)."""
    fen = Decimal(str(yuan)) * 100
    return int(fen.to_integral_value(rounding=ROUND_CEILING if up else ROUND_FLOOR))


def _birthday_for_age(today: date, years: int) -> date:
    """The latest birthday of someone who is ``years`` old today (29 Feb → 28 Feb)."""
    year = today.year - years
    try:
        return today.replace(year=year)
    except ValueError:
        return date(year, 2, 28)


__all__ = ["Scope", "members_query", "segment_predicate"]
