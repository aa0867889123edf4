"""The OpenAPI contract, fuzzed with our own Hypothesis strategies, beside the
Schemathesis run of ``test_api_schemathesis.py``: every operation of
``/api/v1/openapi.json`` gets generated parameters and bodies, sent by the workspace
owner. The strategies know the domain (valid phone numbers, real names, the edge values
that once found defects), so more cases get past validation than Schemathesis's do.
Whatever the input, no answer is a 5xx, and every refusal is the one error shape
``{"error": {"code", "message", "field"?}}``."""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from api_support import NOW, api_client, shop, sign_in, user
from hypothesis import HealthCheck, given, settings
from openapi_strategies import Operation, Request, operations, requests
from sqlalchemy import Engine

from echelon.segments.service import create_segment

# Per operation and database: ~600 requests each, well under a minute. A deeper run:
# ECHELON_FUZZ_EXAMPLES=200 .venv/bin/pytest -s tests/integration/api/test_api_contract.py
EXAMPLES = int(os.environ.get("ECHELON_FUZZ_EXAMPLES", "10"))
SKIPPED = {("delete", "/api/v1/session")}  # signing out would end the run's session


def _check(operation: Operation, request: Request, answer: Any) -> None:
    where = f"{operation.label} {request}"
    assert answer.status_code < 500, f"{where} -> {answer.status_code} {answer.text[:500]}"
    if answer.status_code >= 400:
        error = answer.json()["error"]
        assert isinstance(error["code"], str) and error["code"], where
        assert isinstance(error["message"], str) and error["message"], where
        assert set(error) <= {"code", "message", "field"}, where


def _send(client: Any, csrf: dict[str, str], request: Request, statuses: Counter[int]) -> Any:
    kwargs: dict[str, Any] = {"params": request.params, "headers": csrf | request.headers}
    if request.has_body:
        kwargs["json"] = request.body
    answer = client.request(request.method, request.url, **kwargs)
    statuses[answer.status_code] += 1
    return answer


def _fuzz(operation: Operation, document: dict[str, Any], send: Callable[[Request], Any]) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(request=requests(operation, document))
    def exercise(request: Request) -> None:
        _check(operation, request, send(request))

    exercise()


def test_no_input_makes_any_endpoint_fail_with_a_5xx(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    store = shop(engine, "store")
    create_segment(
        engine, workspace_id=store.id, name="贵宾", definition={"kind": "tag", "tags": ["VIP"]},
        now=NOW,
    )  # fmt: skip
    user(engine, store.id, "boss@example.com", "owner")
    statuses: Counter[int] = Counter()
    started = time.monotonic()
    with api_client(engine) as client:
        csrf = sign_in(client, "store", "boss@example.com")
        document = client.get("/api/v1/openapi.json").json()
        tested = [op for op in operations(document) if (op.method, op.path) not in SKIPPED]
        assert len(tested) >= 50

        for operation in tested:
            _fuzz(operation, document, lambda request: _send(client, csrf, request, statuses))
    seconds = time.monotonic() - started
    print(
        f"\ncontract fuzz ({engine.dialect.name}): {len(tested)} operations, "
        f"{sum(statuses.values())} requests in {seconds:.1f} s, "
        f"statuses {dict(sorted(statuses.items()))}"
    )
    assert not any(code >= 500 for code in statuses)
    # The database's own refusals are a safety net, not validation: none may be needed.
    assert not [r.getMessage() for r in caplog.records if r.name == "echelon.api.errors"]
    assert statuses[200] + statuses[201] + statuses[202] > 0, "nothing got past validation"


def test_text_no_database_can_store_is_refused_alike_on_both(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    store = shop(engine, "store")
    user(engine, store.id, "boss@example.com", "owner")
    with api_client(engine) as client:
        csrf = sign_in(client, "store", "boss@example.com") | {"content-type": "application/json"}
        for body in (b'{"name": "a\\u0000b"}', b'{"name": "\\ud800"}', b'{"\\u0000": 1}'):
            answer = client.put("/api/v1/contacts/13900139000", content=body, headers=csrf)
            assert answer.status_code == 422, answer.text
            assert answer.json()["error"]["field"] == "body"
        for path in ("/api/v1/templates/a%00b", "/api/v1/contacts?q=%00"):
            answer = client.get(path)
            assert answer.status_code == 422, answer.text
    assert not [r for r in caplog.records if r.name == "echelon.api.errors"]
