"""The send API's one transaction: a service or verification message into the outbox
through the gate, answered once per ``Idempotency-Key`` for a day, and audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from echelon.access import queries
from echelon.access.models import Principal
from echelon.access.rules import check_idempotency_key, fingerprint
from echelon.access.service import audit_in
from echelon.dispatch.send import Enqueued, enqueue_in
from echelon.errors import EchelonError

ACCEPTED = 202


class IdempotencyKeyReused(EchelonError):
    code = "idempotency_key_reused"
    http_status = 409

    def __init__(self) -> None:
        super().__init__("这个 Idempotency-Key 已用于另一个请求；每个不同的发送请使用新的键")


@dataclass(frozen=True, slots=True)
class SendAnswer:
    """What to answer: ``replayed`` when it is the stored answer to an earlier request."""

    status_code: int
    body: dict[str, Any]
    replayed: bool


def send_message(
    engine: Engine,
    *,
    principal: Principal,
    phone: str,
    body: str,
    kind: Literal["service", "verification"],
    idempotency_key: str | None,
    keep: timedelta,
    now: datetime,
) -> SendAnswer:
    """Queue one message now (or record why the gate blocked it). With an idempotency
    key, a repeat of the same request within ``keep`` gets the first answer and sends
    nothing; the same key with a different request is ``IdempotencyKeyReused``."""
    key = None if idempotency_key is None else check_idempotency_key(idempotency_key)
    request = {"phone": phone, "body": body, "kind": kind}
    try:
        return _send(engine, principal, request, key, keep, now)
    except IntegrityError:
        # Another request with the same key committed first: answer as it did.
        if key is None:
            raise
        return _send(engine, principal, request, key, keep, now)


def _send(
    engine: Engine,
    principal: Principal,
    request: dict[str, Any],
    key: str | None,
    keep: timedelta,
    now: datetime,
) -> SendAnswer:
    workspace_id = principal.workspace_id
    with engine.begin() as conn:
        if key is not None:
            stored = queries.idempotent_answer(conn, workspace_id=workspace_id, key=key)
            if stored is not None and stored.expires_at > now:
                if stored.fingerprint != fingerprint(request):
                    raise IdempotencyKeyReused()
                return SendAnswer(stored.status_code, stored.response, replayed=True)
            if stored is not None:
                queries.delete_idempotent_answer(conn, answer_id=stored.id)
        enqueued = enqueue_in(
            conn,
            workspace_id=workspace_id,
            phone=request["phone"],
            body=request["body"],
            kind=request["kind"],
            now=now,
        )
        answer = message_json(enqueued)
        if key is not None:
            queries.insert_idempotent_answer(
                conn,
                {
                    "workspace_id": workspace_id,
                    "key": key,
                    "fingerprint": fingerprint(request),
                    "status_code": ACCEPTED,
                    "response": answer,
                    "created_at": now,
                    "expires_at": now + keep,
                },
            )
        audit_in(
            conn,
            workspace_id=workspace_id,
            actor=principal.actor,
            action="message.send",
            target=f"message:{enqueued.message_id}",
            detail={"phone": enqueued.phone, "kind": request["kind"], "status": enqueued.status},
            now=now,
        )
    return SendAnswer(ACCEPTED, answer, replayed=False)


def message_json(enqueued: Enqueued) -> dict[str, Any]:
    return {
        "id": enqueued.message_id,
        "phone": enqueued.phone,
        "status": enqueued.status,
        "block_reason": enqueued.block_reason,
        "text": enqueued.text,
        "parts": enqueued.parts,
        "cost_yuan": str((Decimal(enqueued.cost_e4) / 10_000).quantize(Decimal("0.0001"))),
        "due_at": enqueued.due_at.isoformat(),
    }


def purge_idempotency_keys(engine: Engine, *, now: datetime) -> int:
    """Forget answers older than their keep time; how many."""
    with engine.begin() as conn:
        return queries.delete_expired_answers(conn, now=now)
