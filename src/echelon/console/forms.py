"""Pure translations between HTML forms and service arguments: the segment builder's
condition rows and the definition JSON, local date-times, amounts.

The builder edits a flat list of conditions joined by "all" (and) or "any" (or), each
optionally negated; a definition nested deeper is edited as JSON instead. Values are
passed on as typed, numbers as numbers, so the definition's own validation names
whatever is wrong in a marketer's words.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

from echelon.console.i18n import Problem

Combinator = Literal["and", "or"]
Row = dict[str, str]

KIND_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "attribute": ("field", "op", "value", "min", "max"),
    "tag": ("tags", "match"),
    "gender": ("value",),
    "age": ("min", "max"),
    "new_contact": ("days",),
    "consent": ("purpose", "state"),
    "suppressed": ("kinds",),
    "purchases": ("measure", "min", "max", "days", "hours"),
    "event": ("event", "min", "max", "days", "hours"),
    "event_not_followed": ("event", "then_not", "days", "hours", "within_hours"),
    "engagement": ("action", "min", "max", "days", "hours"),
    "segment": ("segment",),
}
_INTEGER_FIELDS: Final = frozenset({"days", "hours", "within_hours"})
_INTEGER_BOUNDS: Final = frozenset({"age", "event", "engagement"})
_LISTS: Final = {"tags", "kinds"}
_ROW_KEY = re.compile(r"^c(\d{1,3})\.(\w+)$")
_SEPARATORS = re.compile(r"[,，、;；\n]+")


def rows_from_form(form: Mapping[str, str]) -> list[Row]:
    """Condition rows from fields named ``c{index}.{name}``, in index order."""
    rows: dict[int, Row] = {}
    for key, value in form.items():
        match = _ROW_KEY.match(key)
        if match:
            rows.setdefault(int(match.group(1)), {})[match.group(2)] = value.strip()
    return [rows[i] for i in sorted(rows) if rows[i].get("kind")]


def definition_from_rows(combinator: str, rows: list[Row]) -> dict[str, Any]:
    """The definition of the rows: one condition as itself, several joined by
    ``combinator``."""
    if combinator not in ("and", "or"):
        raise Problem("form.combinator")
    if not rows:
        raise Problem("form.no_conditions")
    nodes = [_node(row) for row in rows]
    if len(nodes) == 1:
        return nodes[0]
    return {combinator: nodes}


def _node(row: Row) -> dict[str, Any]:
    kind = row.get("kind", "")
    if kind not in KIND_FIELDS:
        raise Problem("form.unknown_kind", kind=kind)
    node: dict[str, Any] = {"kind": kind}
    for name in KIND_FIELDS[kind]:
        text = row.get(name, "").strip()
        if not text:
            continue
        node[name] = _value(kind, name, text, node)
    if kind == "attribute":
        _attribute_operands(node)
    if row.get("not"):
        return {"not": node}
    return node


def _value(kind: str, name: str, text: str, node: Mapping[str, Any]) -> Any:
    if name in _LISTS:
        return [part.strip() for part in _SEPARATORS.split(text) if part.strip()]
    if name in _INTEGER_FIELDS or (name in ("min", "max") and kind in _INTEGER_BOUNDS):
        return _integer(text)
    if name in ("min", "max") and kind in ("purchases", "attribute"):
        if kind == "attribute" and node.get("field") == "birthday":
            return text
        return _number(text)
    if name == "segment":
        return _integer(text)
    return text


def _attribute_operands(node: dict[str, Any]) -> None:
    """Keep only the operands the comparison uses (the form shows them all)."""
    op = node.get("op", "equals")
    node["op"] = op
    if op == "in" and "value" in node:
        node["values"] = [v.strip() for v in _SEPARATORS.split(node.pop("value")) if v.strip()]
    if op in ("exists", "range"):
        node.pop("value", None)
    if op != "range":
        node.pop("min", None)
        node.pop("max", None)


def _integer(text: str) -> int | str:
    """An integer as typed, else the text itself for validation to name."""
    try:
        return int(text)
    except ValueError:
        return text


def _number(text: str) -> int | Decimal | str:
    try:
        value = Decimal(text.replace(",", ""))
    except InvalidOperation:
        return text
    if not value.is_finite():
        return text
    return int(value) if value == value.to_integral_value() else value


def rows_from_definition(definition: Mapping[str, Any]) -> tuple[Combinator, list[Row]] | None:
    """The builder rows of a stored definition; None when it nests deeper than a flat
    list of (negated) conditions, which is then edited as JSON."""
    combinator: Combinator = "and"
    children: list[Any] = [definition]
    for group in ("and", "or"):
        if group in definition:
            combinator = "and" if group == "and" else "or"
            children = list(definition[group])
    rows = []
    for child in children:
        row = _row(child)
        if row is None:
            return None
        rows.append(row)
    return combinator, rows


def _row(node: Any) -> Row | None:
    if not isinstance(node, Mapping):
        return None
    negated = False
    if "not" in node and len(node) == 1:
        negated, node = True, node["not"]
        if not isinstance(node, Mapping):
            return None
    kind = node.get("kind")
    if kind not in KIND_FIELDS:
        return None
    allowed = set(KIND_FIELDS[kind]) | {"kind"}
    if kind == "attribute":
        allowed.add("values")
    if set(node) - allowed:
        return None  # event filters (where) and the like: JSON only
    row: Row = {"kind": kind}
    for name, value in node.items():
        if name == "kind":
            continue
        key = "value" if name == "values" else name
        row[key] = "、".join(str(v) for v in value) if isinstance(value, list) else str(value)
    if negated:
        row["not"] = "on"
    return row


def definition_text(definition: Mapping[str, Any]) -> str:
    """The definition as indented JSON for the advanced editor."""
    return json.dumps(definition, ensure_ascii=False, indent=2, default=_json_default)


def _json_default(value: object) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def parse_definition_text(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise Problem("form.bad_json", line=exc.lineno, reason=exc.msg) from None


def parse_local(text: str | None, zone: ZoneInfo) -> datetime | None:
    """A ``datetime-local`` field (2026-11-11T20:00) in the workspace's zone, as an aware
    time; empty → None."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise Problem("form.bad_time", text=text) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment


def parse_amount(text: str | None) -> Decimal | None:
    """A yuan amount as typed (1,000.50); empty → None."""
    text = (text or "").strip().replace(",", "").lstrip("¥￥")
    if not text:
        return None
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise Problem("form.bad_amount", text=text) from None
    if not amount.is_finite() or amount != amount.quantize(Decimal("0.01")):
        raise Problem("form.bad_amount", text=text)
    return amount


def parse_count(text: str | None, *, field: str) -> int | None:
    """A whole number as typed; empty → None."""
    text = (text or "").strip().replace(",", "")
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise Problem("form.bad_integer", field=field, text=text) from None
