"""Pure rules of access: password digests, tokens, scopes, the token bucket, request
fingerprints, and the JSON encoding of service results."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from argon2 import PasswordHasher
from hypothesis import given, settings
from hypothesis import strategies as st

from echelon.access.models import KEY_SCOPES, ROLE_PERMISSIONS, Role
from echelon.access.ratelimit import RateLimiter
from echelon.access.rules import (
    Bucket,
    WeakPassword,
    check_email,
    check_key_scopes,
    csrf_matches,
    csrf_token,
    fingerprint,
    hash_password,
    needs_rehash,
    new_token,
    take,
    token_digest,
    verify_password,
)
from echelon.api.encoding import plain
from echelon.errors import InvalidInput

passwords = st.text(min_size=10, max_size=40)


@settings(max_examples=5, deadline=None)
@given(password=passwords, other=passwords)
def test_a_password_verifies_and_no_other_does(password: str, other: str) -> None:
    stored = hash_password(password)
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$") and password not in stored
    assert verify_password(password, stored)
    assert verify_password(other, stored) == (other == password)
    assert not needs_rehash(stored)


def legacy_scrypt(password: str, salt: bytes = b"s" * 16) -> str:
    """A digest as the code wrote before argon2 (scrypt N=2^14, r=8, p=1)."""
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    parts = [base64.b64encode(salt).decode(), base64.b64encode(digest).decode()]
    return "$".join(["scrypt", "16384", "8", "1", *parts])


def test_a_legacy_scrypt_digest_still_verifies_and_asks_to_be_replaced() -> None:
    stored = legacy_scrypt("correct horse battery")
    assert verify_password("correct horse battery", stored)
    assert not verify_password("correct horse batterY", stored)
    assert needs_rehash(stored)
    # A forged row asking for an enormous cost is refused, not computed.
    assert not verify_password("correct horse battery", stored.replace("16384", str(2**24)))


def test_an_argon2_digest_of_weaker_parameters_asks_to_be_replaced() -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(
        "correct horse battery"
    )
    assert verify_password("correct horse battery", weak)
    assert needs_rehash(weak)
    assert not verify_password("wrong horse battery", weak)


def test_the_same_password_is_salted_differently() -> None:
    assert hash_password("correct horse battery") != hash_password("correct horse battery")


@given(stored=st.text(max_size=80))
def test_a_malformed_stored_digest_is_never_a_match_nor_an_error(stored: str) -> None:
    assert not verify_password("correct horse battery", stored)


@pytest.mark.parametrize("password", ["", "short", "x" * 257])
def test_weak_passwords_are_refused(password: str) -> None:
    with pytest.raises(WeakPassword):
        hash_password(password)


def test_tokens_say_what_they_are_and_are_stored_as_digests() -> None:
    token = new_token("ek")
    assert token.startswith("ek_") and len(token) > 40
    assert token_digest(token) == token_digest(token) and len(token_digest(token)) == 64
    assert new_token("ek") != token


def test_the_csrf_token_belongs_to_its_session() -> None:
    assert csrf_matches("session-a", csrf_token("session-a"))
    assert not csrf_matches("session-b", csrf_token("session-a"))
    assert not csrf_matches("session-a", None)


def test_a_key_carries_no_scope_its_maker_lacks_and_never_an_approval() -> None:
    developer = ROLE_PERMISSIONS[Role.DEVELOPER]
    assert check_key_scopes(["messages:send", "contacts:read"], holder=developer) == (
        "contacts:read",
        "messages:send",
    )
    with pytest.raises(InvalidInput):
        check_key_scopes(["campaigns:write"], holder=developer)
    with pytest.raises(InvalidInput):
        check_key_scopes(["templates:approve"], holder=None)
    with pytest.raises(InvalidInput):
        check_key_scopes([], holder=None)
    assert "templates:approve" not in KEY_SCOPES and "keys:manage" not in KEY_SCOPES


def test_roles_hold_what_their_work_needs() -> None:
    assert ROLE_PERMISSIONS[Role.REVIEWER] >= {"templates:approve"}
    assert "templates:approve" not in ROLE_PERMISSIONS[Role.MARKETER]
    assert "messages:send" not in ROLE_PERMISSIONS[Role.ANALYST]
    assert "channels:admin" in ROLE_PERMISSIONS[Role.OWNER]
    assert all("channels:admin" not in p for r, p in ROLE_PERMISSIONS.items() if r != Role.OWNER)


@pytest.mark.parametrize("email", ["a@b", "no-at.example.com", "two@@example.com", "a b@c.com"])
def test_bad_emails_are_refused(email: str) -> None:
    with pytest.raises(InvalidInput):
        check_email(email)


@given(
    rate=st.floats(min_value=0.1, max_value=100),
    burst=st.integers(min_value=1, max_value=50),
    gaps=st.lists(st.floats(min_value=0, max_value=2), min_size=1, max_size=200),
)
def test_a_bucket_never_lets_more_through_than_burst_plus_refill(
    rate: float, burst: int, gaps: list[float]
) -> None:
    bucket: Bucket | None = None
    now, allowed = 0.0, 0
    for gap in gaps:
        now += gap
        bucket, wait = take(bucket, now=now, rate_per_second=rate, burst=burst)
        if wait == 0:
            allowed += 1
        else:
            # Waiting as told is enough for the next token.
            _, again = take(bucket, now=now + wait + 1e-9, rate_per_second=rate, burst=burst)
            assert again == 0
    assert allowed <= burst + rate * now + 1e-6


def test_the_limiter_keeps_a_bucket_per_caller() -> None:
    clock = [0.0]
    limiter = RateLimiter(clock=lambda: clock[0])
    assert [limiter.allow("a", per_minute=60, burst=2) for _ in range(2)] == [0.0, 0.0]
    assert limiter.allow("a", per_minute=60, burst=2) == pytest.approx(1.0)
    assert limiter.allow("b", per_minute=60, burst=2) == 0.0
    clock[0] = 1.0
    assert limiter.allow("a", per_minute=60, burst=2) == 0.0


@given(
    document=st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=6)
)
def test_a_fingerprint_ignores_key_order(document: dict[str, object]) -> None:
    assert fingerprint(document) == fingerprint(dict(reversed(list(document.items()))))


def test_service_results_become_plain_json() -> None:
    @dataclass
    class Inner:
        cost: Decimal
        at: datetime

    value = {"items": (Inner(Decimal("0.0550"), datetime(2026, 1, 1, tzinfo=UTC)),), 1: {"x"}}
    assert plain(value) == {
        "items": [{"cost": "0.0550", "at": "2026-01-01T00:00:00+00:00"}],
        "1": ["x"],
    }
