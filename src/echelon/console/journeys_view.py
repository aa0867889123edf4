"""Journeys as the console draws and edits them (pure): a stored definition as a flow
of steps, each with where it leads and its counts from the journey's stats; and the
editor's fields — timings, templates, branch targets, split shares — applied to a copy
of the definition, which the journey service then validates as a new version."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from echelon.console.i18n import Problem

SPAN: Final = ("days", "hours", "minutes")
_TARGETS: Final = {"send": ("next",), "wait": ("next",), "wait_for": ("then", "else")}
_TARGETS_BRANCH: Final = ("then", "else")


@dataclass(frozen=True)
class Exit:
    """One way out of a step: ``kind`` (next, then, else, path) to ``target`` (None:
    the journey ends), with a split path's ``percent``."""

    kind: str
    target: str | None
    percent: int | None = None


@dataclass(frozen=True)
class FlowStep:
    id: str
    type: str
    raw: dict[str, Any]
    exits: list[Exit]
    later: list[str]  # the steps it may jump to (only forward)
    counts: dict[str, Any] = field(default_factory=dict)

    @property
    def span(self) -> dict[str, int]:
        return {unit: int(self.raw[unit]) for unit in SPAN if self.raw.get(unit)}

    @property
    def at(self) -> str | None:
        value = self.raw.get("at")
        return None if value is None else str(value)[:5]

    @property
    def blocked(self) -> int:
        return sum(self.counts.get("blocked", {}).values())

    @property
    def exited(self) -> int:
        return sum(self.counts.get("exited", {}).values())


def flow(definition: Mapping[str, Any], stats: list[dict[str, Any]]) -> list[FlowStep]:
    """The definition's steps in order, each with its exits and its counts."""
    steps = list(definition.get("steps", []))
    ids = [str(step["id"]) for step in steps]
    counts = {str(row["step"]): row for row in stats}
    drawn = []
    for index, step in enumerate(steps):
        following = ids[index + 1] if index + 1 < len(ids) else None
        drawn.append(
            FlowStep(
                id=ids[index],
                type=str(step["type"]),
                raw=dict(step),
                exits=_exits(step, following),
                later=ids[index + 1 :],
                counts=counts.get(ids[index], {}),
            )
        )
    return drawn


def _exits(step: Mapping[str, Any], following: str | None) -> list[Exit]:
    kind = step["type"]
    if kind == "exit":
        return []
    if kind == "split":
        return [Exit("path", str(p["next"]), int(p["percent"])) for p in step["paths"]]
    names = _TARGETS.get(kind, _TARGETS_BRANCH)
    return [Exit(name, step.get(name) or following) for name in names]


def edited(definition: Mapping[str, Any], form: Mapping[str, str]) -> dict[str, Any]:
    """A copy of ``definition`` with the editor's fields (``s.{step}.{field}``) applied:
    durations, time of day, the sending-window flag, templates, jump targets and split
    shares. A field not in the form leaves its value as it is."""
    changed = copy.deepcopy(dict(definition))
    for step in changed.get("steps", []):
        prefix = f"s.{step['id']}."
        fields = {k[len(prefix) :]: v.strip() for k, v in form.items() if k.startswith(prefix)}
        if not fields:
            continue
        kind = step["type"]
        if kind == "send" and fields.get("template"):
            step["template"] = fields["template"]
        if kind in ("wait", "wait_for"):
            for unit in SPAN:
                if unit in fields:
                    _set(step, unit, _whole(fields[unit], step["id"], unit))
        if kind == "wait":
            if "at" in fields:
                _set(step, "at", fields["at"][:5] or None)
            step.pop("window", None)
            if fields.get("window"):
                step["window"] = True
        for name in _TARGETS.get(kind, _TARGETS_BRANCH if kind == "branch" else ()):
            if name in fields:
                _set(step, name, fields[name] or None)
        if kind == "split":
            for index, path in enumerate(step["paths"]):
                if f"percent.{index}" in fields:
                    path["percent"] = _whole(fields[f"percent.{index}"], step["id"], "percent")
    return changed


def _set(step: dict[str, Any], key: str, value: object) -> None:
    if value in (None, 0, ""):
        step.pop(key, None)
    else:
        step[key] = value


def _whole(text: str, step: str, name: str) -> int:
    if not text:
        return 0
    try:
        return int(text)
    except ValueError:
        raise Problem("journey.bad_number", step=step, field=name, text=text) from None
