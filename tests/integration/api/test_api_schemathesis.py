"""The OpenAPI contract checked by Schemathesis: every operation of
``/api/v1/openapi.json`` gets Schemathesis-generated cases, valid and invalid, sent with
an API key of a workspace that holds data (the owner's session for the few operations
no key may reach). Whatever the input, no answer is a 5xx, and
every 4xx is the one error shape ``{"error": {"code", "message", "field"?}}``.

Path parameters are drawn half from Schemathesis and half from the workspace's real
names, so cases get past 404 into the handlers. The provider callbacks carry their
channel's real token, so receipt and reply bodies reach the code that records them.

A deeper run: ECHELON_SCHEMATHESIS_EXAMPLES=200 .venv/bin/pytest -s -p no:cacheprovider \
tests/integration/api/test_api_schemathesis.py
"""

from __future__ import annotations

import os
import re
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from api_support import NOW, api_client, bearer, key, shop, sign_in, user
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.generation.case import Case
from schemathesis.schemas import APIOperation
from sqlalchemy import Engine

from echelon.access.service import issue_callback_token
from echelon.segments.service import create_segment

# Cases per operation and database, drawn from Schemathesis's valid and invalid
# ("negative") generation alike: 73 operations x 12 runs near 35 s per database on the
# 2-core test machine.
EXAMPLES = int(os.environ.get("ECHELON_SCHEMATHESIS_EXAMPLES", "12"))
PHONE = "13800138000"
_CHINESE = re.compile(r"[\u4e00-\u9fff]")


def _real_names(path: str, channel_id: int) -> dict[str, Any]:
    """The workspace's own values for the path parameters of ``path``."""
    section = path.removeprefix("/api/v1/").split("/")[0]
    names: dict[str, Any] = {
        "phone": PHONE,
        "purpose": "marketing",
        "kind": "opt_out",
        "segment": "贵宾",
        "channel_id": channel_id,
        "name": {"channels": "ch", "templates": "t"}.get(section, "c"),
    }
    return {p: names[p] for p in names if "{" + p + "}" in path}


def _owner_only(path: str) -> bool:
    section = path.removeprefix("/api/v1/").split("/")[0]
    return section in {"channels", "keys", "users"} or path.endswith(("/approve", "/reject"))


def _owner_session(engine: Engine, workspace_id: int, client: TestClient) -> dict[str, str]:
    """The headers of the owner's signed-in session; the client's cookie jar is left
    empty, so the key's requests carry no session."""
    user(engine, workspace_id, "boss@example.com", "owner")
    csrf = sign_in(client, "store", "boss@example.com")
    token = client.cookies["echelon_session"]
    client.cookies.clear()
    return csrf | {"Cookie": f"echelon_session={token}"}


def _cases(operation: APIOperation, channel_id: int) -> st.SearchStrategy[Case]:
    fixed = _real_names(operation.path, channel_id)
    choices = []
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        choices.append(operation.as_strategy(generation_mode=mode))
        if fixed:
            choices.append(operation.as_strategy(generation_mode=mode, path_parameters=fixed))
    return st.one_of(choices)


def _check(case: Case, answer: Any) -> None:
    where = f"{case.operation.label}: {case.as_curl_command()}"
    case.validate_response(answer, checks=[not_a_server_error])
    assert answer.status_code < 500, f"{where} -> {answer.status_code} {answer.text[:500]}"
    if answer.status_code >= 400:
        error = answer.json()["error"]
        assert isinstance(error["code"], str) and error["code"], where
        assert isinstance(error["message"], str) and error["message"], where
        # Told in Chinese, whoever refused it (our code, FastAPI or Starlette).
        assert _CHINESE.search(error["message"]), f"{where} -> {error}"
        assert set(error) <= {"code", "message", "field"}, where


def _send(client: TestClient, case: Case, headers: dict[str, str]) -> Any:
    sent = case.as_transport_kwargs(base_url=str(client.base_url), headers=headers)
    if "Authorization" not in headers:
        # A generated bearer would win over the session or token the case is meant to use.
        sent["headers"] = {
            name: value
            for name, value in (sent.get("headers") or {}).items()
            if name.lower() != "authorization"
        }
    cookies = sent.get("cookies")
    if cookies:
        # As a header: per-request cookies= is deprecated in the test client.
        sent["headers"] = dict(sent.get("headers") or {}) | {
            "cookie": "; ".join(f"{name}={value}" for name, value in cookies.items())
        }
    return client.request(
        sent["method"],
        sent["url"],
        headers=sent.get("headers"),
        params=sent.get("params"),
        content=sent.get("data"),
        json=sent.get("json"),
        files=sent.get("files"),
    )


def _fuzz(cases: st.SearchStrategy[Case], send: Callable[[Case], None]) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases)
    def exercise(case: Case) -> None:
        send(case)

    exercise()


def test_schemathesis_finds_no_5xx_and_only_the_error_shape(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    store = shop(engine, "store", phone=PHONE)
    create_segment(
        engine, workspace_id=store.id, name="贵宾", definition={"kind": "tag", "tags": ["VIP"]},
        now=NOW,
    )  # fmt: skip
    callback = issue_callback_token(
        engine, workspace_id=store.id, channel="ch", actor="test", now=NOW
    )
    secret = key(engine, store.id)
    statuses: Counter[int] = Counter()
    per_operation: Counter[str] = Counter()
    started = time.monotonic()
    with api_client(engine) as client:
        schema = schemathesis.openapi.from_dict(client.get("/api/v1/openapi.json").json())
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 70
        # Scopes no key can carry (channels, keys, users, approvals) are tried as the
        # owner's session, last, and revoking keys at the very end.
        owner = _owner_session(engine, store.id, client)
        operations.sort(key=lambda op: (_owner_only(op.path), op.method == "delete"))
        for operation in operations:
            headers = owner if _owner_only(operation.path) else bearer(secret)
            if operation.path.startswith("/api/v1/callbacks/"):
                headers = {"X-Callback-Token": callback.token}

            def send(case: Case, headers: dict[str, str] = headers) -> None:
                answer = _send(client, case, headers)
                statuses[answer.status_code] += 1
                per_operation[case.operation.label] += 1
                _check(case, answer)

            _fuzz(_cases(operation, callback.channel_id), send)
    seconds = time.monotonic() - started
    print(
        f"\nschemathesis ({engine.dialect.name}): {len(operations)} operations, "
        f"{sum(statuses.values())} requests in {seconds:.1f} s, "
        f"statuses {dict(sorted(statuses.items()))}"
    )
    assert set(per_operation) == {op.label for op in operations}
    assert not any(code >= 500 for code in statuses)
    # The database's own refusals are a safety net, not validation: none may be needed.
    assert not [r.getMessage() for r in caplog.records if r.name == "echelon.api.errors"]
    assert statuses[200] + statuses[201] + statuses[202] > 0, "nothing got past validation"
