"""Parameters many routes share, bounded so that no value can reach the database
outside what its column holds, and the audit helper routes call after a change."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Final

from fastapi import Path, Query
from pydantic import AfterValidator, Field, StringConstraints

from echelon.access.models import Principal
from echelon.access.service import record_audit
from echelon.api.state import ApiState

MAX_ID: Final = 2**63 - 1

IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
Phone = Annotated[str, StringConstraints(min_length=1, max_length=32)]
PhonePath = Annotated[str, Path(min_length=1, max_length=32, description="手机号，如 13800138000")]
NamePath = Annotated[str, Path(min_length=1, max_length=100)]
Limit = Annotated[int, Query(ge=1, le=1000)]
AfterId = Annotated[int, Query(ge=0, le=MAX_ID)]
BeforeId = Annotated[int | None, Query(ge=1, le=MAX_ID)]
Scalar = Annotated[str, StringConstraints(max_length=1000)] | int | float | bool | None
Key = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Properties = Annotated[dict[Key, Scalar], Field(max_length=50)]


def id_or_name(reference: str, not_found: Callable[[str], Exception]) -> str:
    """A reference a service reads as an id when it is all digits (segments, campaign
    reports): refused as not found when ``int`` would fail on it ("²" is a digit to
    ``isdigit``) or no id column could hold it, instead of failing in the service."""
    text = reference.strip()
    if text.isdigit() and (not text.isascii() or int(text) > MAX_ID):
        raise not_found(reference)
    return reference


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("须带时区，例如 2026-11-11T20:00:00+08:00")
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("时间超出范围") from None


AwareTime = Annotated[datetime, AfterValidator(_aware)]


def audit(
    state: ApiState,
    principal: Principal,
    action: str,
    target: str | None,
    detail: dict[str, Any] | None = None,
) -> None:
    """One audit line for a change just made by ``principal``."""
    record_audit(
        state.engine,
        workspace_id=principal.workspace_id,
        actor=principal.actor,
        action=action,
        target=target,
        detail=detail or {},
        now=datetime.now(UTC),
    )
