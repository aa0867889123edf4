"""Contacts (upsert one or up to 10,000, get, search, erase), consent, suppression and
events (one, or a batch: the path a shop posts purchases and cart adds to)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from echelon.access.models import Principal
from echelon.api.auth import State, require
from echelon.api.encoding import plain, plain_object
from echelon.api.params import AfterId, Limit, Phone, PhonePath, Properties, audit
from echelon.audience.consent import grant_consent, revoke_consent
from echelon.audience.contacts import count_contacts, get_contact
from echelon.audience.records import (
    MAX_RECORDS,
    BatchReport,
    erase_contact,
    record_events,
    search_contacts,
    upsert_contacts,
)
from echelon.audience.suppression import add_suppression, list_suppressions, remove_suppression
from echelon.errors import InvalidInput

router = APIRouter(tags=["联系人"])

Reader = Annotated[Principal, Depends(require("contacts:read"))]
Writer = Annotated[Principal, Depends(require("contacts:write"))]
Text = Annotated[str, StringConstraints(max_length=100)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Purpose = Literal["marketing", "service"]
Source = Annotated[str, StringConstraints(min_length=1, max_length=64)]
SuppressionKind = Literal["opt_out", "blacklist", "dnc", "invalid"]


class ContactFields(BaseModel):
    """A contact's fields; one not given keeps its stored value."""

    model_config = ConfigDict(extra="forbid")

    name: Text | None = None
    gender: Annotated[str, StringConstraints(max_length=8)] | None = Field(
        None, description="男/女（或 male/female）"
    )
    birthday: Annotated[str, StringConstraints(max_length=20)] | None = Field(
        None, description="如 1990-05-17"
    )
    birthday_lunar: bool | None = None
    province: Annotated[str, StringConstraints(max_length=32)] | None = None
    city: Annotated[str, StringConstraints(max_length=32)] | None = None
    tags: Annotated[list[Tag], Field(max_length=50)] | None = None
    attributes: Properties | None = None
    consent: bool | None = Field(
        None, description="true：授予营销同意（须同时给出 consent_source）"
    )
    consent_at: Annotated[str, StringConstraints(max_length=40)] | None = None
    consent_proof: Annotated[str, StringConstraints(max_length=500)] | None = None


class ContactRecord(ContactFields):
    phone: Phone


class ContactUpsert(ContactFields):
    consent_source: Source | None = None
    list_name: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = Field(
        None, description="同时加入这个名单（没有则新建）"
    )


class ContactBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    records: Annotated[list[ContactRecord], Field(min_length=1, max_length=MAX_RECORDS)]
    consent_source: Source | None = None
    list_name: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = Field(
        None, description="同时加入这个名单（没有则新建）"
    )


class ConsentGrant(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: Source
    proof: Annotated[str, StringConstraints(max_length=500)] | None = None


class NewSuppression(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone: Phone
    kind: SuppressionKind
    reason: Annotated[str, StringConstraints(max_length=500)] | None = None
    source: Source = "api"


class EventRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone: Phone
    type: Annotated[str, StringConstraints(min_length=1, max_length=32)] = Field(
        description="signup/purchase/cart_add/checkout/shipment 或小写英文自定义名"
    )
    occurred_at: Annotated[str, StringConstraints(min_length=1, max_length=40)] = Field(
        description="如 2026-11-11T20:00:00+08:00；不带时区按工作区时区"
    )
    amount: Annotated[Decimal, Field(ge=0, le=100_000_000, decimal_places=2)] | None = Field(
        None, description="金额（元）"
    )
    order_id: Annotated[str, StringConstraints(max_length=64)] | None = None
    category: Annotated[str, StringConstraints(max_length=64)] | None = None
    coupon_code: Annotated[str, StringConstraints(max_length=64)] | None = None
    event_id: Annotated[str, StringConstraints(max_length=200)] | None = Field(
        None, description="你的事件 ID：同一 ID 只记一次"
    )
    properties: Properties | None = None


class EventBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    records: Annotated[list[EventRecord], Field(min_length=1, max_length=MAX_RECORDS)]


def _report(report: BatchReport) -> dict[str, Any]:
    data = plain_object(report)
    data.update(data.pop("extra"))
    return data


def _only(report: BatchReport) -> dict[str, Any]:
    """One record's outcome: its refusal as the request's error."""
    if report.rejected:
        raise InvalidInput(report.rejected[0].reason)
    return _report(report)


@router.get("/contacts", summary="搜索联系人（按手机号或姓名片段、标签；按 ID 翻页）")
def search(
    principal: Reader,
    state: State,
    q: Annotated[str | None, Query(max_length=100)] = None,
    tag: Annotated[str | None, Query(max_length=64)] = None,
    after_id: AfterId = 0,
    limit: Limit = 50,
) -> Any:
    found = search_contacts(
        state.engine,
        workspace_id=principal.workspace_id,
        text=q,
        tag=tag,
        after_id=after_id,
        limit=limit,
    )
    return {
        "contacts": plain(found),
        "next_after_id": found[-1].id if len(found) == limit else None,
    }


@router.get("/contacts/summary", summary="联系人统计：总数、营销同意、屏蔽、可触达、运营商")
def summary(principal: Reader, state: State) -> Any:
    return count_contacts(state.engine, workspace_id=principal.workspace_id)


@router.post("/contacts/batch", summary="批量新建或更新联系人（每次最多 10000 条）")
def upsert_batch(body: ContactBatch, principal: Writer, state: State) -> Any:
    report = upsert_contacts(
        state.engine,
        workspace_id=principal.workspace_id,
        records=[r.model_dump(exclude_none=True) for r in body.records],
        consent_source=body.consent_source,
        list_name=body.list_name,
        now=datetime.now(UTC),
    )
    result = _report(report)
    if report.extra.get("consent_granted"):
        counts = {k: v for k, v in result.items() if k != "rejected"}
        audit(state, principal, "consent.grant", "contacts:batch", counts)
    return result


@router.put("/contacts/{phone}", summary="新建或更新一个联系人")
def upsert_one(phone: PhonePath, body: ContactUpsert, principal: Writer, state: State) -> Any:
    record = body.model_dump(exclude_none=True, exclude={"consent_source", "list_name"})
    report = upsert_contacts(
        state.engine,
        workspace_id=principal.workspace_id,
        records=[record | {"phone": phone}],
        consent_source=body.consent_source,
        list_name=body.list_name,
        now=datetime.now(UTC),
    )
    result = _only(report)
    if report.extra.get("consent_granted"):
        audit(
            state, principal, "consent.grant", f"contact:{phone}", {"source": body.consent_source}
        )
    return result


@router.get("/contacts/{phone}", summary="联系人详情：资料、标签、同意记录、屏蔽、最近事件")
def show(phone: PhonePath, principal: Reader, state: State) -> Any:
    return plain(get_contact(state.engine, workspace_id=principal.workspace_id, phone=phone))


@router.delete("/contacts/{phone}", summary="删除联系人并抹除其个人数据（屏蔽记录保留）")
def erase(phone: PhonePath, principal: Writer, state: State) -> Any:
    erased = erase_contact(state.engine, workspace_id=principal.workspace_id, phone=phone)
    audit(state, principal, "contact.erase", f"contact:{phone}", erased)
    return {"erased": erased}


@router.put("/contacts/{phone}/consent/{purpose}", summary="授予同意（营销或通知）")
def grant(
    phone: PhonePath, purpose: Purpose, body: ConsentGrant, principal: Writer, state: State
) -> Any:
    granted = grant_consent(
        state.engine,
        workspace_id=principal.workspace_id,
        phone=phone,
        purpose=purpose,
        source=body.source,
        proof=body.proof,
        now=datetime.now(UTC),
    )
    if granted:
        audit(
            state,
            principal,
            "consent.grant",
            f"contact:{phone}",
            {"purpose": purpose, "source": body.source},
        )
    return {"granted": granted}


@router.delete("/contacts/{phone}/consent/{purpose}", summary="撤回同意（立即生效）")
def revoke(
    phone: PhonePath,
    purpose: Purpose,
    principal: Writer,
    state: State,
    source: Annotated[str, Query(min_length=1, max_length=64)] = "api",
) -> Any:
    revoked = revoke_consent(
        state.engine,
        workspace_id=principal.workspace_id,
        phone=phone,
        purpose=purpose,
        source=source,
        now=datetime.now(UTC),
    )
    if revoked:
        audit(
            state,
            principal,
            "consent.revoke",
            f"contact:{phone}",
            {"purpose": purpose, "source": source},
        )
    return {"revoked": revoked}


@router.get("/suppressions", summary="屏蔽名单（最新在前）")
def suppressions(
    principal: Reader,
    state: State,
    kind: SuppressionKind | None = None,
    limit: Limit = 100,
) -> Any:
    return plain(
        list_suppressions(state.engine, workspace_id=principal.workspace_id, kind=kind, limit=limit)
    )


@router.post("/suppressions", summary="加入屏蔽名单")
def suppress(body: NewSuppression, principal: Writer, state: State) -> Any:
    added = add_suppression(
        state.engine,
        workspace_id=principal.workspace_id,
        phone=body.phone,
        kind=body.kind,
        source=body.source,
        reason=body.reason,
        now=datetime.now(UTC),
    )
    if added:
        audit(state, principal, "suppression.add", f"phone:{body.phone}", {"kind": body.kind})
    return {"added": added}


@router.delete("/suppressions/{kind}/{phone}", summary="移出屏蔽名单")
def unsuppress(kind: SuppressionKind, phone: PhonePath, principal: Writer, state: State) -> Any:
    remove_suppression(state.engine, workspace_id=principal.workspace_id, phone=phone, kind=kind)
    audit(state, principal, "suppression.remove", f"phone:{phone}", {"kind": kind})
    return {"removed": True}


@router.post("/events", summary="记录一个事件（购买、加购、注册……）")
def event(body: EventRecord, principal: Writer, state: State) -> Any:
    return _only(
        record_events(
            state.engine,
            workspace_id=principal.workspace_id,
            records=[body.model_dump(exclude_none=True)],
            now=datetime.now(UTC),
        )
    )


@router.post("/events/batch", summary="批量记录事件（每次最多 10000 条）")
def events(body: EventBatch, principal: Writer, state: State) -> Any:
    return _report(
        record_events(
            state.engine,
            workspace_id=principal.workspace_id,
            records=[r.model_dump(exclude_none=True) for r in body.records],
            now=datetime.now(UTC),
        )
    )
