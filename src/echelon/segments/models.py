"""The segment definition: a JSON tree of ``and`` / ``or`` / ``not`` over conditions.

A node is a group (``{"and": [...]}``, ``{"or": [...]}``, ``{"not": {...}}``) or a
condition named by its ``kind``. Every node is validated here, and every error names
the node (its place from the root) and what is wrong, in words a marketer reads.
Values are normalised on the way in (广东省 → 广东, 中国移动 → china_mobile, 加购 →
cart_add), so a stored definition is canonical. The meaning of each kind is written
once, in ``compiler.py``; ``ONE_PER_KIND`` in tests/unit/segments lists one example
per kind.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    StrictInt,
    StrictStr,
    Tag,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from echelon.audience.fields import parse_event_type, parse_gender
from echelon.audience.phone import Carrier, InvalidNumber, normalise_phone
from echelon.audience.regions import canonical_province
from echelon.errors import InvalidInput
from echelon.validation import explain

MAX_DAYS = 36_500
# What ``event`` may name besides an event type: any event at all.
ANY_EVENT = "*"
CUSTOM_PREFIX = "attributes."
TEXT_FIELDS = ("name", "phone", "province", "city", "carrier")
BUILTIN_FIELDS = (*TEXT_FIELDS, "birthday")
_CARRIERS = {c.value: c.value for c in Carrier} | {c.label: c.value for c in Carrier}
_CUSTOM_KEY = re.compile(r'^[^"\\]{1,64}$')


class InvalidDefinition(InvalidInput):
    code = "invalid_segment"


def _json_number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


# A number that stays a JSON number when stored, so a range bound read back is still a
# number (not a text bound); Decimal in between, so no float rounds a threshold.
Number = Annotated[Decimal, PlainSerializer(_json_number, when_used="json")]
Scalar = StrictStr | StrictInt
Bound = Number | StrictStr
Count = Annotated[int, Field(ge=0, le=1_000_000)]
Days = Annotated[int, Field(ge=1, le=MAX_DAYS)]


class _Node(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# ---------------------------------------------------------------- groups


class AllOf(_Node):
    """Members of every sub-node."""

    nodes: list[Node] = Field(alias="and", min_length=1)


class AnyOf(_Node):
    """Members of at least one sub-node."""

    nodes: list[Node] = Field(alias="or", min_length=1)


class NoneOf(_Node):
    """Contacts who are not members of the sub-node."""

    node: Node = Field(alias="not")


# ---------------------------------------------------------------- value tests


class Comparison(_Node):
    """One test of a text (or date) value: equals, in, range, contains, exists.

    Text compares exactly (case and width as written). ``range`` with number bounds
    compares values that are numbers (``"1200"`` or ``1200``), ignoring the rest; with
    text bounds it compares text (ISO dates order correctly as text).
    """

    op: Literal["equals", "in", "range", "contains", "exists"]
    value: Scalar | None = None
    values: list[Scalar] | None = None
    min: Bound | None = None
    max: Bound | None = None

    @model_validator(mode="after")
    def _operands_fit_the_op(self) -> Comparison:
        given = {
            name for name in ("value", "values", "min", "max") if getattr(self, name) is not None
        }
        wanted = {
            "equals": ({"value"}, "须给出 value"),
            "contains": ({"value"}, "须给出 value（要包含的文字）"),
            "in": ({"values"}, "须给出 values（可选值列表）"),
            "exists": (set(), ""),
        }
        if self.op == "range":
            if not given or not given <= {"min", "max"}:
                raise ValueError("range 须给出 min 和/或 max，不能给 value/values")
            if self.min is not None and self.max is not None:
                if isinstance(self.min, str) != isinstance(self.max, str):
                    raise ValueError("range 的 min 和 max 须同为数字或同为文字")
                if self.min > self.max:  # type: ignore[operator]
                    raise ValueError("range 的 min 不能大于 max")
            return self
        allowed, hint = wanted[self.op]
        if given != allowed:
            extra = sorted(given - allowed)
            raise ValueError(
                f"{self.op} 不接受 {'、'.join(extra)}" if extra else f"{self.op} {hint}"
            )
        if self.op == "in" and not self.values:
            raise ValueError("in 的 values 不能为空")
        if self.op == "contains" and not str(self.value):
            raise ValueError("contains 的 value 不能为空")
        return self

    def texts(self) -> list[str]:
        """The value(s) of equals / in / contains as text."""
        if self.values is not None:
            return [str(v) for v in self.values]
        return [] if self.value is None else [str(self.value)]


def _normalise_operands(data: Any, normalise: Any) -> Any:
    """``data`` with value / values passed through ``normalise`` (raising ValueError)."""
    if not isinstance(data, dict):
        return data
    data = dict(data)
    if isinstance(data.get("value"), str) and data.get("op") != "contains":
        data["value"] = normalise(data["value"])
    if isinstance(data.get("values"), list):
        data["values"] = [normalise(v) if isinstance(v, str) else v for v in data["values"]]
    return data


def _province(text: str) -> str:
    found = canonical_province(text)
    if found is None:
        raise ValueError(f"省份「{text}」无法识别，应写作 广东 或 广东省")
    return found


def _carrier(text: str) -> str:
    found = _CARRIERS.get(text.strip())
    if found is None:
        labels = "、".join(c.label for c in Carrier)
        raise ValueError(f"运营商「{text}」无法识别，可用：{labels}")
    return found


def _phone(text: str) -> str:
    try:
        return normalise_phone(text)
    except InvalidNumber as exc:
        raise ValueError(f"号码「{text}」无效：{exc.message}") from exc


def _iso_date(text: str) -> str:
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError as exc:
        raise ValueError(f"日期「{text}」应写作 1990-05-17") from exc


_NORMALISERS = {"province": _province, "carrier": _carrier, "phone": _phone, "birthday": _iso_date}


class Attribute(Comparison):
    """A contact's built-in field (name, phone, province, city, carrier, birthday) or a
    custom one written ``attributes.会员等级``."""

    kind: Literal["attribute"]
    field: str

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("field"), str):
            return data
        field = data["field"]
        normalise = _NORMALISERS.get(field)
        if normalise is None:
            return data
        data = _normalise_operands(data, normalise)
        if field == "birthday":
            for bound in ("min", "max"):
                if isinstance(data.get(bound), str):
                    data[bound] = _iso_date(data[bound])
        return data

    @field_validator("field")
    @classmethod
    def _known_field(cls, field: str) -> str:
        if field in BUILTIN_FIELDS:
            return field
        if field.startswith(CUSTOM_PREFIX) and _CUSTOM_KEY.match(field[len(CUSTOM_PREFIX) :]):
            return field
        if field == "gender":
            raise ValueError('性别请用 {"kind": "gender", "value": "female"}')
        raise ValueError(
            f"字段「{field}」未知：可用 {'、'.join(BUILTIN_FIELDS)}，"
            "自定义字段写作 attributes.字段名（字段名不含引号和反斜杠）"
        )

    @model_validator(mode="after")
    def _op_fits_the_field(self) -> Attribute:
        if self.field == "birthday":
            if self.op == "contains":
                raise ValueError("生日不支持 contains，请用 range")
            if self.op == "range" and not all(
                isinstance(b, str) for b in (self.min, self.max) if b is not None
            ):
                raise ValueError("生日的 range 须用日期，如 1990-01-01")
        elif self.field in TEXT_FIELDS and self.op == "range":
            raise ValueError(f"{self.field} 不支持 range")
        if self.field in ("province", "carrier") and self.op == "contains":
            raise ValueError(f"{self.field} 请用 equals 或 in")
        return self

    @property
    def custom_key(self) -> str | None:
        return self.field[len(CUSTOM_PREFIX) :] if self.field.startswith(CUSTOM_PREFIX) else None


class EventFilter(Comparison):
    """A test of an event's property: category, coupon_code, order_id, amount (yuan),
    or any other property the event was imported with."""

    property: Annotated[str, Field(min_length=1, max_length=64, pattern=r'^[^"\\]+$')]

    @model_validator(mode="after")
    def _amount_is_a_number(self) -> EventFilter:
        if self.property == "amount":
            if self.op in ("contains",) or (
                self.op == "range" and any(isinstance(b, str) for b in (self.min, self.max))
            ):
                raise ValueError("amount（金额，元）请用数字 range、equals 或 exists")
            if self.op in ("equals", "in") and not all(map(_is_money, self.texts())):
                raise ValueError("amount（金额，元）须为数字，最多两位小数")
        return self


def _is_money(value: object) -> bool:
    try:
        amount = Decimal(str(value))
    except ArithmeticError:
        return False
    return amount.is_finite() and amount == amount.quantize(Decimal("0.01"))


# ---------------------------------------------------------------- who they are


class Tags(_Node):
    """Has any (or all) of the tags."""

    kind: Literal["tag"]
    tags: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(min_length=1)
    match: Literal["any", "all"] = "any"


class Gender(_Node):
    kind: Literal["gender"]
    value: Literal["male", "female", "unknown"]

    @field_validator("value", mode="before")
    @classmethod
    def _chinese(cls, value: Any) -> Any:
        if isinstance(value, str) and value not in ("male", "female", "unknown"):
            try:
                return parse_gender(value) or "unknown"
            except InvalidInput as exc:
                raise ValueError(f"性别「{value}」无法识别，应为 男/女/未知") from exc
        return value


class Age(_Node):
    """Age in whole years on today's date in the workspace's time zone, from the
    birthday (a lunar birthday counts by its stored solar date). No birthday: no age."""

    kind: Literal["age"]
    min: Annotated[int, Field(ge=0, le=150)] | None = None
    max: Annotated[int, Field(ge=0, le=150)] | None = None

    @model_validator(mode="after")
    def _bounds(self) -> Age:
        _check_bounds(self.min, self.max, "年龄")
        return self


class NewContact(_Node):
    """Became a contact within the last ``days`` days."""

    kind: Literal["new_contact"]
    days: Days


class Consent(_Node):
    """granted: a live grant; revoked: had one, took it back; never: never had one."""

    kind: Literal["consent"]
    purpose: Literal["marketing", "service"] = "marketing"
    state: Literal["granted", "revoked", "never"] = "granted"


class Suppressed(_Node):
    """The number is on a suppression list (any, or one of ``kinds``)."""

    kind: Literal["suppressed"]
    kinds: list[Literal["opt_out", "blacklist", "dnc", "invalid"]] | None = Field(
        default=None, min_length=1
    )


# ---------------------------------------------------------------- what they did


class _Window(_Node):
    """``days`` or ``hours``: the window ending now; neither: everything up to now."""

    days: Days | None = None
    hours: Annotated[int, Field(ge=1, le=MAX_DAYS * 24)] | None = None

    @model_validator(mode="after")
    def _one_window(self) -> _Window:
        if self.days is not None and self.hours is not None:
            raise ValueError("days 和 hours 只能给一个")
        return self

    def window(self) -> timedelta | None:
        if self.days is not None:
            return timedelta(days=self.days)
        if self.hours is not None:
            return timedelta(hours=self.hours)
        return None


def _event_name(value: Any) -> Any:
    if isinstance(value, str) and value != ANY_EVENT:
        try:
            return parse_event_type(value)
        except InvalidInput as exc:
            raise ValueError(exc.message) from exc
    return value


EventName = Annotated[str, BeforeValidator(_event_name), Field(min_length=1, max_length=32)]


class Purchases(_Window):
    """RFM over ``purchase`` events (those matching ``where``, if given):

    - ``days_since_last``: days since the last purchase (never bought: not a member);
    - ``count``: purchases in the window (0 if none);
    - ``total``: yuan spent in the window (0 if none);
    - ``average``: average order value in yuan (no priced order: not a member);
    - ``coupon_share``: share of purchases with a coupon, 0–1 (no purchase: not a member).
    """

    kind: Literal["purchases"]
    measure: Literal["days_since_last", "count", "total", "average", "coupon_share"]
    min: Number | None = None
    max: Number | None = None
    where: list[EventFilter] = Field(default_factory=list)

    @model_validator(mode="after")
    def _bounds_fit_the_measure(self) -> Purchases:
        _check_bounds(self.min, self.max, self.measure)
        bounds = [b for b in (self.min, self.max) if b is not None]
        if any(b < 0 for b in bounds):
            raise ValueError(f"{self.measure} 的 min/max 不能为负数")
        if self.measure == "days_since_last":
            if self.window() is not None:
                raise ValueError(
                    "days_since_last 不接受 days/hours：距最近一次购买的天数用 min/max"
                )
            if any(b != b.to_integral_value() or b > MAX_DAYS for b in bounds):
                raise ValueError("days_since_last 的 min/max 须为天数（整数）")
        elif self.measure == "count":
            if any(b != b.to_integral_value() for b in bounds):
                raise ValueError("count 的 min/max 须为整数（次数）")
        elif self.measure in ("total", "average"):
            if any(b != b.quantize(Decimal("0.01")) or b > 100_000_000 for b in bounds):
                raise ValueError(f"{self.measure} 的 min/max 为金额（元），最多两位小数")
        elif any(b > 1 or b.as_tuple().exponent < -4 for b in bounds):  # type: ignore[operator]
            raise ValueError("coupon_share 的 min/max 为 0 到 1 之间的比例，如 0.5")
        if self.measure in ("count", "total") and self.max is None and not self.min:
            raise ValueError(f"{self.measure} 只给 min=0 时人人都符合：请给出大于 0 的 min 或 max")
        return self


class Event(_Window):
    """Performed ``event`` (``*``: any event) at least ``min`` and at most ``max`` times
    in the window, counting only events that match ``where``."""

    kind: Literal["event"]
    event: EventName
    min: Count = 1
    max: Count | None = None
    where: list[EventFilter] = Field(default_factory=list)

    @model_validator(mode="after")
    def _bounds(self) -> Event:
        _check_bounds(self.min, self.max, "次数")
        if self.min == 0 and self.max is None:
            raise ValueError("min=0 且不给 max 时人人都符合：请给出 max，或 min ≥ 1")
        return self


class EventNotFollowed(_Window):
    """Performed ``event`` in the window and then, from that moment until
    ``within_hours`` later (or until now), no ``then_not`` event: 加购未付款."""

    kind: Literal["event_not_followed"]
    event: EventName
    then_not: EventName
    within_hours: Annotated[int, Field(ge=1, le=MAX_DAYS * 24)] | None = None
    where: list[EventFilter] = Field(default_factory=list)
    then_where: list[EventFilter] = Field(default_factory=list)

    @model_validator(mode="after")
    def _needs_a_window(self) -> EventNotFollowed:
        if self.window() is None:
            raise ValueError("须给出 days 或 hours：多久之内做过 event")
        return self


class Engagement(_Window):
    """Messages: ``received`` (delivered), ``clicked`` (a short link, by a person —
    not a link preview or scanner), ``replied`` — at least ``min`` and at most ``max``
    times in the window."""

    kind: Literal["engagement"]
    action: Literal["received", "clicked", "replied"]
    min: Count = 1
    max: Count | None = None

    @model_validator(mode="after")
    def _bounds(self) -> Engagement:
        _check_bounds(self.min, self.max, "次数")
        if self.min == 0 and self.max is None:
            raise ValueError("min=0 且不给 max 时人人都符合：请给出 max，或 min ≥ 1")
        return self


class SegmentRef(_Node):
    """Member of another saved segment (by id, or by name when written)."""

    kind: Literal["segment"]
    segment: Annotated[StrictInt, Field(ge=1)] | Annotated[StrictStr, Field(min_length=1)]


def _check_bounds(low: Decimal | int | None, high: Decimal | int | None, what: str) -> None:
    if low is None and high is None:
        raise ValueError(f"{what}须给出 min 和/或 max")
    if low is not None and high is not None and low > high:
        raise ValueError(f"{what}的 min 不能大于 max")


# ---------------------------------------------------------------- the tree

GROUPS = ("and", "or", "not")
KINDS = (
    "attribute",
    "tag",
    "gender",
    "age",
    "new_contact",
    "consent",
    "suppressed",
    "purchases",
    "event",
    "event_not_followed",
    "engagement",
    "segment",
)


def _node_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        for group in GROUPS:
            if group in value:
                return group
        kind = value.get("kind")
        return kind if isinstance(kind, str) else None
    if isinstance(value, AllOf):
        return "and"
    if isinstance(value, AnyOf):
        return "or"
    if isinstance(value, NoneOf):
        return "not"
    kind = getattr(value, "kind", None)
    return kind if isinstance(kind, str) else None


Condition = (
    Attribute
    | Tags
    | Gender
    | Age
    | NewContact
    | Consent
    | Suppressed
    | Purchases
    | Event
    | EventNotFollowed
    | Engagement
    | SegmentRef
)
Node = Annotated[
    Annotated[AllOf, Tag("and")]
    | Annotated[AnyOf, Tag("or")]
    | Annotated[NoneOf, Tag("not")]
    | Annotated[Attribute, Tag("attribute")]
    | Annotated[Tags, Tag("tag")]
    | Annotated[Gender, Tag("gender")]
    | Annotated[Age, Tag("age")]
    | Annotated[NewContact, Tag("new_contact")]
    | Annotated[Consent, Tag("consent")]
    | Annotated[Suppressed, Tag("suppressed")]
    | Annotated[Purchases, Tag("purchases")]
    | Annotated[Event, Tag("event")]
    | Annotated[EventNotFollowed, Tag("event_not_followed")]
    | Annotated[Engagement, Tag("engagement")]
    | Annotated[SegmentRef, Tag("segment")],
    Discriminator(_node_tag),
]
for _group in (AllOf, AnyOf, NoneOf):
    _group.model_rebuild()

_ADAPTER: TypeAdapter[Node] = TypeAdapter(Node)
MAX_NODES = 200


def parse_definition(document: object) -> Node:
    """The validated definition, or ``InvalidDefinition`` naming each wrong node."""
    try:
        node = _ADAPTER.validate_python(document)
    except ValidationError as exc:
        problems = [_describe(error) for error in exc.errors()]
        shown = "；".join(problems[:3])
        more = f"（另有 {len(problems) - 3} 处）" if len(problems) > 3 else ""
        raise InvalidDefinition(f"分群定义有误：{shown}{more}") from exc
    if sum(1 for _ in walk(node)) > MAX_NODES:
        raise InvalidDefinition(f"分群定义有误：条件太多（最多 {MAX_NODES} 个节点）")
    return node


def definition_json(node: Node) -> dict[str, Any]:
    """The stored (and printed) form; ``parse_definition`` reads it back equal."""
    dumped: dict[str, Any] = _ADAPTER.dump_python(
        node, mode="json", by_alias=True, exclude_none=True, exclude_defaults=True
    )
    return _with_kinds(node, dumped)


def _with_kinds(node: Node, dumped: dict[str, Any]) -> dict[str, Any]:
    # exclude_defaults drops nothing that is needed, except the kind literals themselves.
    if isinstance(node, AllOf | AnyOf):
        key = "and" if isinstance(node, AllOf) else "or"
        return {key: [_with_kinds(n, d) for n, d in zip(node.nodes, dumped[key], strict=True)]}
    if isinstance(node, NoneOf):
        return {"not": _with_kinds(node.node, dumped["not"])}
    first = ("kind", "field", "event", "measure", "action", "op")
    ordered = {"kind": node.kind} | {k: dumped[k] for k in first if k in dumped}
    return ordered | dumped


def walk(node: Node) -> Any:
    """Every node of the tree, depth first."""
    yield node
    if isinstance(node, AllOf | AnyOf):
        for child in node.nodes:
            yield from walk(child)
    elif isinstance(node, NoneOf):
        yield from walk(node.node)


def referenced_segments(node: Node) -> list[int | str]:
    return [n.segment for n in walk(node) if isinstance(n, SegmentRef)]


def replace_references(node: Node, ids: dict[int | str, int]) -> Node:
    """``node`` with every segment reference written as the id it resolves to."""
    if isinstance(node, AllOf):
        return AllOf(nodes=[replace_references(n, ids) for n in node.nodes])
    if isinstance(node, AnyOf):
        return AnyOf(nodes=[replace_references(n, ids) for n in node.nodes])
    if isinstance(node, NoneOf):
        return NoneOf(node=replace_references(node.node, ids))
    if isinstance(node, SegmentRef):
        return SegmentRef(kind="segment", segment=ids[node.segment])
    return node


# ---------------------------------------------------------------- error wording


def _describe(error: ErrorDetails) -> str:
    known = "、".join(GROUPS + KINDS)
    what = explain(error, tagged="条件", known_tags=known, tag_field="kind")
    return f"{_place(error['loc'])}：{what}"


def _place(loc: tuple[int | str, ...]) -> str:
    """Where in the tree: ``and › 第 2 项（purchases）› min``; the root is 「定义」."""
    parts: list[str] = []
    items = list(loc)
    i = 0
    expecting_node = True
    while i < len(items):
        item = items[i]
        if expecting_node and isinstance(item, str) and item in GROUPS + KINDS:
            if item in GROUPS:
                # The union tag of a group is followed by its field of the same name.
                if i + 1 < len(items) and items[i + 1] == item:
                    i += 1
                parts.append(item)
                expecting_node = item == "not"
            else:
                if parts and parts[-1].startswith("第"):
                    parts[-1] += f"（{item}）"
                else:
                    parts.append(f"（{item}）")
                expecting_node = False
        elif isinstance(item, int):
            parts.append(f"第 {item + 1} 项")
            expecting_node = len(parts) > 0 and parts[-2:-1] in (["and"], ["or"])
        else:
            parts.append(str(item))
            expecting_node = False
        i += 1
    return "定义" + "".join(p if p.startswith("（") else f" › {p}" for p in parts)


class LiveSegment(BaseModel):
    """A saved segment bound to a moment, with the definitions it refers to: what a
    campaign preview evaluates (a started campaign reads its snapshot instead)."""

    model_config = ConfigDict(frozen=True)

    segment_id: int
    definition: Node
    segments: dict[int, Node]
    now: AwareDatetime
    timezone: str


@dataclass(frozen=True, slots=True)
class SegmentUsers:
    """What names a saved segment, by name: deleting it would break each of them."""

    campaigns: tuple[str, ...]
    journeys: tuple[str, ...]
    segments: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.campaigns or self.journeys or self.segments)
