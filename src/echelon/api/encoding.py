"""Service results as JSON: dataclasses as objects, money as decimal strings (never a
float), times in ISO 8601, enums by value."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any


def plain(value: Any) -> Any:
    """``value`` made of JSON types only."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Enum):
        return plain(value.value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(plain(k)): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value) if isinstance(value, set | frozenset) else value
        return [plain(item) for item in items]
    if hasattr(value, "model_dump"):
        return plain(value.model_dump(mode="json"))
    return str(value)


def plain_object(value: Any) -> dict[str, Any]:
    """``plain`` of a dataclass or mapping: a JSON object."""
    found = plain(value)
    assert isinstance(found, dict)
    return found


def yuan_e4(cost_e4: int) -> str:
    """Ten-thousandths of a yuan as a yuan amount: 550 -> "0.0550"."""
    return str((Decimal(cost_e4) / 10_000).quantize(Decimal("0.0001")))
