"""The journey definition: a versioned JSON document of a trigger, a re-entry policy,
goal and exit events, and a list of steps.

Every part is validated here and every error names its place ("steps › 第 2 步
（reminder）› template：缺少这一项") in words a marketer reads. Steps run in list order
unless a step names where to go (``next``, ``then``/``else``, split ``paths``); a jump
may only go forward, so a journey always ends. The meaning of each step is carried
out by ``rules`` (pure) and the runner.
"""

from __future__ import annotations

from datetime import time, timedelta
from functools import cached_property
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictInt,
    StrictStr,
    Tag,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from echelon.errors import InvalidInput
from echelon.segments.models import (
    EventFilter,
    EventName,
    InvalidDefinition,
    Node,
    SegmentRef,
    parse_definition,
    walk,
)
from echelon.validation import explain

GRAMMAR_VERSION: Final = 1
MAX_STEPS = 50
MAX_WAIT_DAYS = 366
STEP_TYPES = ("send", "wait", "wait_for", "branch", "split", "exit")
TRIGGER_TYPES = ("event", "segment", "date", "inactivity", "holiday")
CONDITION_KINDS = ("clicked", "converted", "replied", "segment", "condition")

# The official holidays by the names people use, as the holiday calendar names them.
HOLIDAYS: dict[str, str] = {
    "元旦": "New Year's Day",
    "春节": "Spring Festival",
    "清明节": "Tomb-sweeping Day",
    "劳动节": "Labour Day",
    "端午节": "Dragon Boat Festival",
    "中秋节": "Mid-autumn Festival",
    "国庆节": "National Day",
}
_HOLIDAY_ALIASES = {"清明": "清明节", "五一": "劳动节", "端午": "端午节", "中秋": "中秋节"}
_HOLIDAY_ALIASES |= {"国庆": "国庆节", "新年": "元旦"}
_HOLIDAY_ALIASES |= {english.lower(): chinese for chinese, english in HOLIDAYS.items()}

StepId = Annotated[str, Field(pattern=r"^[\w-]{1,32}$")]
SegmentName = Annotated[StrictInt, Field(ge=1)] | Annotated[StrictStr, Field(min_length=1)]
Minutes = Annotated[int, Field(ge=0, le=MAX_WAIT_DAYS * 24 * 60)]
Hours = Annotated[int, Field(ge=0, le=MAX_WAIT_DAYS * 24)]
Days = Annotated[int, Field(ge=0, le=MAX_WAIT_DAYS)]


class InvalidJourney(InvalidInput):
    code = "invalid_journey"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class _Span(_Model):
    """A duration written as whole days, hours and minutes (all optional)."""

    days: Days = 0
    hours: Hours = 0
    minutes: Minutes = 0

    @property
    def span(self) -> timedelta:
        return timedelta(days=self.days, hours=self.hours, minutes=self.minutes)


# ---------------------------------------------------------------- triggers


class EventTrigger(_Model):
    """Enters each contact who performs ``event`` (matching every ``where`` filter)."""

    type: Literal["event"]
    event: EventName
    where: list[EventFilter] = Field(default_factory=list)


class SegmentTrigger(_Model):
    """Enters each contact who becomes a member of the saved segment. Those already
    members when the journey is activated enter too only with ``include_existing``."""

    type: Literal["segment"]
    segment: SegmentName
    include_existing: bool = False


class _Scheduled(_Model):
    """A daily check at ``at`` (workspace time) over an audience: the members of
    ``segment``, or, without one, every contact with marketing consent."""

    at: time = time(10, 0)
    segment: SegmentName | None = None


class DateTrigger(_Scheduled):
    """A date of each contact: ``birthday`` (solar, or lunar when the contact's
    birthday is lunar; 29 Feb is kept on 28 Feb in other years) or ``anniversary`` of
    membership (the day the contact joined, or the ISO date in the custom
    ``attribute``), ``days_before`` that date."""

    type: Literal["date"]
    field: Literal["birthday", "anniversary"]
    attribute: Annotated[str, Field(min_length=1, max_length=64, pattern=r'^[^"\\]+$')] | None = (
        None
    )
    days_before: Annotated[int, Field(ge=0, le=60)] = 0

    @model_validator(mode="after")
    def _attribute_for_anniversary(self) -> DateTrigger:
        if self.attribute is not None and self.field != "anniversary":
            raise ValueError("attribute 只用于 anniversary（入会纪念日）")
        return self


class InactivityTrigger(_Scheduled):
    """Enters each contact with no activity for ``days`` days: no event of ``events``
    (any event when empty) since then — or, never active, who joined that long ago."""

    type: Literal["inactivity"]
    days: Annotated[int, Field(ge=1, le=3650)]
    events: list[EventName] = Field(default_factory=list)


class HolidayTrigger(_Scheduled):
    """Enters the audience ``offset_days`` from the official holiday period's first
    (``anchor: start``) or last day: negative is before. With ``workdays`` the offset
    counts working days as the official calendar has them, make-up workdays (调休)
    included."""

    type: Literal["holiday"]
    holiday: str
    anchor: Literal["start", "end"] = "start"
    offset_days: Annotated[int, Field(ge=-60, le=60)] = 0
    workdays: bool = False

    @field_validator("holiday", mode="before")
    @classmethod
    def _known_holiday(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        name = value.strip()
        name = _HOLIDAY_ALIASES.get(name.lower(), _HOLIDAY_ALIASES.get(name, name))
        if name not in HOLIDAYS:
            raise ValueError(f"节假日「{value}」未知，可用：{'、'.join(HOLIDAYS)}")
        return name

    @property
    def calendar_name(self) -> str:
        return HOLIDAYS[self.holiday]


Trigger = Annotated[
    Annotated[EventTrigger, Tag("event")]
    | Annotated[SegmentTrigger, Tag("segment")]
    | Annotated[DateTrigger, Tag("date")]
    | Annotated[InactivityTrigger, Tag("inactivity")]
    | Annotated[HolidayTrigger, Tag("holiday")],
    Discriminator(lambda v: v.get("type") if isinstance(v, dict) else getattr(v, "type", None)),
]


class Reentry(_Model):
    """``once``: a contact enters at most once ever; ``once_per``: at most once in
    ``days`` days; ``every_time``: on every trigger. Never while still inside."""

    policy: Literal["once", "once_per", "every_time"] = "once"
    days: Annotated[int, Field(ge=1, le=3650)] | None = None

    @model_validator(mode="after")
    def _days_for_once_per(self) -> Reentry:
        if (self.policy == "once_per") != (self.days is not None):
            raise ValueError("once_per 须给出 days（多少天内最多进入一次），其他策略不接受 days")
        return self

    @property
    def window(self) -> timedelta | None:
        return None if self.days is None else timedelta(days=self.days)


class EventCondition(_Model):
    """An event (matching every ``where`` filter) after the contact entered."""

    event: EventName
    where: list[EventFilter] = Field(default_factory=list)


# ---------------------------------------------------------------- branch conditions


class Clicked(_Model):
    """A person (not a link scanner) clicked a link of the journey's last message."""

    kind: Literal["clicked"]


class Converted(_Model):
    """Performed ``event`` (a purchase unless named) since entering the journey."""

    kind: Literal["converted"]
    event: EventName = "purchase"
    where: list[EventFilter] = Field(default_factory=list)


class Replied(_Model):
    """Replied to the journey's last message."""

    kind: Literal["replied"]


class InSegment(_Model):
    """Is a member of the saved segment now."""

    kind: Literal["segment"]
    segment: SegmentName


class Matches(_Model):
    """Matches a segment definition now (attributes, tags, purchases …), written as
    the segments' JSON; a saved segment is referred to with ``kind: segment``."""

    kind: Literal["condition"]
    condition: dict[str, Any]

    @field_validator("condition")
    @classmethod
    def _valid_definition(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            node = parse_definition(value)
        except InvalidDefinition as exc:
            raise ValueError(exc.message.removeprefix("分群定义有误：")) from exc
        if any(isinstance(n, SegmentRef) for n in walk(node)):
            raise ValueError('条件里不能引用分群：请用 {"kind": "segment", "segment": …}')
        return value

    @property
    def node(self) -> Node:
        return parse_definition(self.condition)


Condition = Annotated[
    Annotated[Clicked, Tag("clicked")]
    | Annotated[Converted, Tag("converted")]
    | Annotated[Replied, Tag("replied")]
    | Annotated[InSegment, Tag("segment")]
    | Annotated[Matches, Tag("condition")],
    Discriminator(lambda v: v.get("kind") if isinstance(v, dict) else getattr(v, "kind", None)),
]


# ---------------------------------------------------------------- steps


class _Step(_Model):
    id: StepId


class SendStep(_Step):
    """Plan the approved ``template`` through the gate (consent, quiet hours, caps)."""

    type: Literal["send"]
    template: Annotated[str, Field(min_length=1, max_length=100)]
    next: StepId | None = None


class WaitStep(_Step, _Span):
    """Wait the duration, then (if given) until the next ``weekday`` (1 = Monday) and/or
    time of day ``at``, then (``window``) until sending is allowed (quiet hours)."""

    type: Literal["wait"]
    at: time | None = None
    weekday: Annotated[int, Field(ge=1, le=7)] | None = None
    window: bool = False
    next: StepId | None = None

    @model_validator(mode="after")
    def _waits_for_something(self) -> WaitStep:
        if not (self.span or self.at is not None or self.weekday is not None or self.window):
            raise ValueError("wait 须给出 days/hours/minutes、at、weekday 或 window 之一")
        return self


class WaitForStep(_Step, _Span):
    """Wait up to the duration for ``event`` (matching ``where``) or a ``click`` on a
    link of the journey's messages: on it go to ``then``, on timeout to ``else``."""

    type: Literal["wait_for"]
    event: EventName | None = None
    where: list[EventFilter] = Field(default_factory=list)
    click: bool = False
    then: StepId | None = None
    otherwise: StepId | None = Field(default=None, alias="else")

    @model_validator(mode="after")
    def _one_thing_and_a_timeout(self) -> WaitForStep:
        if (self.event is None) == (not self.click):
            raise ValueError('wait_for 须给出 event（等待的事件）或 "click": true，二者选一')
        if self.where and self.event is None:
            raise ValueError("where 只用于 event")
        if not self.span:
            raise ValueError("wait_for 须给出最长等待时间 days/hours/minutes")
        return self


class BranchStep(_Step):
    """Go to ``then`` when the condition ``if`` holds, else to ``else``."""

    type: Literal["branch"]
    condition: Condition = Field(alias="if")
    then: StepId | None = None
    otherwise: StepId | None = Field(default=None, alias="else")

    @model_validator(mode="after")
    def _somewhere_to_go(self) -> BranchStep:
        if self.then is None and self.otherwise is None:
            raise ValueError("branch 须给出 then 和/或 else（不给的一边走下一步）")
        return self


class SplitPath(_Model):
    percent: Annotated[int, Field(ge=1, le=100)]
    next: StepId


class SplitStep(_Step):
    """Send each contact down one path at random, by the paths' percentages (a fixed
    draw per contact and step, so a retry takes the same path)."""

    type: Literal["split"]
    paths: list[SplitPath] = Field(min_length=2, max_length=10)

    @model_validator(mode="after")
    def _percentages(self) -> SplitStep:
        total = sum(p.percent for p in self.paths)
        if total != 100:
            raise ValueError(f"各路径 percent 之和须为 100，现为 {total}")
        return self


class ExitStep(_Step):
    """Leave the journey here."""

    type: Literal["exit"]


Step = Annotated[
    Annotated[SendStep, Tag("send")]
    | Annotated[WaitStep, Tag("wait")]
    | Annotated[WaitForStep, Tag("wait_for")]
    | Annotated[BranchStep, Tag("branch")]
    | Annotated[SplitStep, Tag("split")]
    | Annotated[ExitStep, Tag("exit")],
    Discriminator(lambda v: v.get("type") if isinstance(v, dict) else getattr(v, "type", None)),
]


# ---------------------------------------------------------------- the journey


class JourneyDefinition(_Model):
    version: Literal[1] = GRAMMAR_VERSION
    trigger: Trigger
    reentry: Reentry = Field(default_factory=Reentry)
    goal: EventCondition | None = None
    exit_when: list[EventCondition] = Field(default_factory=list, max_length=10)
    steps: list[Step] = Field(min_length=1, max_length=MAX_STEPS)

    @model_validator(mode="after")
    def _steps_connect(self) -> JourneyDefinition:
        place = {step.id: i for i, step in enumerate(self.steps)}
        if len(place) != len(self.steps):
            seen: set[str] = set()
            for i, step in enumerate(self.steps):
                if step.id in seen:
                    raise ValueError(f"第 {i + 1} 步的 id「{step.id}」与前面的步骤重复")
                seen.add(step.id)
        for i, step in enumerate(self.steps):
            for target in targets(step):
                if target not in place:
                    raise ValueError(f"第 {i + 1} 步（{step.id}）跳到的步骤「{target}」不存在")
                if place[target] <= i:
                    raise ValueError(
                        f"第 {i + 1} 步（{step.id}）只能跳到它后面的步骤，不能跳回「{target}」"
                    )
        return self

    @property
    def first_step(self) -> str:
        return self.steps[0].id

    @cached_property
    def _by_id(self) -> dict[str, tuple[Step, str | None]]:
        """Each step by id, with the id of the step after it (None after the last)."""
        ids = [step.id for step in self.steps]
        return {
            step.id: (step, ids[i + 1] if i + 1 < len(ids) else None)
            for i, step in enumerate(self.steps)
        }

    def step(self, step_id: str) -> Step:
        return self._by_id[step_id][0]

    def following(self, step_id: str) -> str | None:
        """The step after ``step_id`` in the list; None after the last."""
        return self._by_id[step_id][1]

    def next_of(self, step_id: str, chosen: str | None) -> str | None:
        """Where to go from ``step_id``: ``chosen`` if named, else the following step."""
        return chosen if chosen is not None else self.following(step_id)

    def templates(self) -> list[str]:
        return sorted({s.template for s in self.steps if isinstance(s, SendStep)})

    def segments(self) -> list[int | str]:
        """Every saved segment the journey names (trigger, audience, branches)."""
        found: list[int | str] = []
        trigger = self.trigger
        if isinstance(trigger, SegmentTrigger | _Scheduled) and trigger.segment is not None:
            found.append(trigger.segment)
        for step in self.steps:
            if isinstance(step, BranchStep) and isinstance(step.condition, InSegment):
                found.append(step.condition.segment)
        return found

    def with_segment_ids(self, ids: dict[int | str, int]) -> JourneyDefinition:
        """The definition with each named segment written as the id it resolves to."""
        document = definition_json(self)
        trigger = document["trigger"]
        if "segment" in trigger:
            trigger["segment"] = ids[trigger["segment"]]
        for step in document["steps"]:
            condition = step.get("if")
            if condition is not None and condition.get("kind") == "segment":
                condition["segment"] = ids[condition["segment"]]
        return parse_journey(document)


def targets(step: Step) -> list[str]:
    """The steps ``step`` names as where to go next."""
    if isinstance(step, SendStep | WaitStep):
        return [] if step.next is None else [step.next]
    if isinstance(step, WaitForStep | BranchStep):
        return [t for t in (step.then, step.otherwise) if t is not None]
    if isinstance(step, SplitStep):
        return [p.next for p in step.paths]
    return []


_ADAPTER: TypeAdapter[JourneyDefinition] = TypeAdapter(JourneyDefinition)


def parse_journey(document: object) -> JourneyDefinition:
    """The validated definition, or ``InvalidJourney`` naming each wrong place."""
    try:
        return _ADAPTER.validate_python(document)
    except ValidationError as exc:
        problems = [
            f"{_place(e['loc'], document)}：{explain(e, pattern=NAME_RULE)}" for e in exc.errors()
        ]
        shown = "；".join(problems[:3])
        more = f"（另有 {len(problems) - 3} 处）" if len(problems) > 3 else ""
        raise InvalidJourney(f"旅程定义有误：{shown}{more}") from exc


def definition_json(definition: JourneyDefinition) -> dict[str, Any]:
    """The stored (and printed) form; ``parse_journey`` reads it back equal."""
    dumped: dict[str, Any] = _ADAPTER.dump_python(
        definition, mode="json", by_alias=True, exclude_none=True
    )
    # Each step reads id and type first (a duration's fields come first in the model).
    dumped["steps"] = [{"id": step["id"], "type": step["type"]} | step for step in dumped["steps"]]
    conditions = [step["if"] for step in dumped["steps"] if "if" in step]
    # Left out where they say nothing: zero durations, false flags, empty filters.
    parts = [dumped["trigger"], *dumped["steps"], dumped.get("goal"), *dumped["exit_when"]]
    for part in [*parts, *conditions]:
        if part is None:
            continue
        for key, value in list(part.items()):
            if (key in ("days", "hours", "minutes") and value == 0 and "type" in part) or (
                key in ("window", "click", "where") and value in (False, [])
            ):
                del part[key]
            elif key == "at":
                part[key] = value[:5]  # 10:00, not 10:00:00
    if not dumped["exit_when"]:
        del dumped["exit_when"]
    return dumped


# ---------------------------------------------------------------- error wording


_TAGS = set(STEP_TYPES + TRIGGER_TYPES + CONDITION_KINDS)


NAME_RULE = "只能由字母、数字、汉字、_ 和 - 组成（最多 32 个）"


def _place(loc: tuple[int | str, ...], document: object) -> str:
    """``steps › 第 2 步（reminder）› template``; the root is 「定义」."""
    parts: list[str] = []
    node: Any = document
    items = list(loc)
    for i, item in enumerate(items):
        previous = items[i - 1] if i else None
        if isinstance(item, int) and previous == "steps":
            step_id = node[item].get("id") if isinstance(node, list) and item < len(node) else None
            step_id = step_id if isinstance(step_id, str) else None
            parts.append(f"第 {item + 1} 步" + (f"（{step_id}）" if step_id else ""))
        elif isinstance(item, int):
            parts.append(f"第 {item + 1} 项")
        elif (item in _TAGS and previous in ("trigger", "if")) or (
            item in STEP_TYPES and isinstance(previous, int)
        ):
            continue  # the union's tag: the place is already named
        else:
            parts.append(str(item))
        node = _down(node, item)
    return "定义" + "".join(f" › {p}" for p in parts)


def _down(node: Any, item: int | str) -> Any:
    if isinstance(node, list) and isinstance(item, int) and item < len(node):
        return node[item]
    if isinstance(node, dict) and isinstance(item, str):
        return node.get(item, node)
    return node
