"""Pure rules of access: password digests, tokens, CSRF tokens, scopes, the token
bucket of rate limits and the fingerprint of an idempotent request. No I/O; time is
passed in."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from echelon.access.models import KEY_SCOPES, PERMISSIONS
from echelon.errors import InvalidInput

# argon2id with argon2-cffi's defaults, the low-memory profile of RFC 9106
# (t=3, m=64 MiB, p=4). The parameters travel in each digest, so raising them later
# only makes ``needs_rehash`` true for the older digests, which sign-in then replaces.
_ARGON2: Final = PasswordHasher()
# Digests written before argon2: ``scrypt$N$r$p$salt$digest`` (base64). Still checked,
# and replaced by an argon2id digest at the next successful sign-in.
_LEGACY_SCRYPT: Final = "scrypt$"
MIN_PASSWORD: Final = 10
MAX_PASSWORD: Final = 256
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{1,30}$")
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")


class WeakPassword(InvalidInput):
    code = "weak_password"

    def __init__(self) -> None:
        super().__init__(f"密码须为 {MIN_PASSWORD}–{MAX_PASSWORD} 个字符")


class UnknownScope(InvalidInput):
    code = "unknown_scope"

    def __init__(self, scopes: Iterable[str]) -> None:
        super().__init__(
            f"权限范围 {'、'.join(sorted(scopes))} 不可用于 API 密钥，可用："
            + "、".join(sorted(KEY_SCOPES))
        )


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """An argon2id digest in the PHC form (``$argon2id$v=19$m=…,t=…,p=…$salt$hash``),
    what ``verify_password`` checks against; a fresh random salt unless one is given."""
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise WeakPassword()
    return _ARGON2.hash(password, salt=salt)


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` is the one ``stored`` was made from (an argon2id digest, or a
    legacy scrypt one); never raises on a bad stored value or an overlong password (it is
    simply not the password)."""
    if len(password) > MAX_PASSWORD:
        return False
    try:
        if stored.startswith(_LEGACY_SCRYPT):
            return _verify_scrypt(password, stored)
        return _ARGON2.verify(stored, password)
    except (VerificationError, InvalidHashError, ValueError):
        return False


def needs_rehash(stored: str) -> bool:
    """Whether a digest that just verified should be replaced: a legacy scrypt one, or an
    argon2 one made with other parameters than today's."""
    if stored.startswith(_LEGACY_SCRYPT):
        return True
    try:
        return _ARGON2.check_needs_rehash(stored)
    except (InvalidHashError, ValueError):
        return True


def _verify_scrypt(password: str, stored: str) -> bool:
    _scheme, n, r, p, salt, digest = stored.split("$")
    cost, block, lanes = int(n), int(r), int(p)
    # Only the costs this code ever wrote; a forged row must not make sign-in allocate
    # gigabytes.
    if cost > 2**20 or block > 16 or lanes > 4:
        return False
    found = hashlib.scrypt(
        password.encode(),
        salt=base64.b64decode(salt),
        n=cost,
        r=block,
        p=lanes,
        maxmem=256 * block * cost,
        dklen=32,
    )
    return hmac.compare_digest(found, base64.b64decode(digest))


def new_token(kind: str) -> str:
    """A random token, ``kind`` first so a leaked one says what it is (``ek_…``)."""
    return f"{kind}_{secrets.token_urlsafe(32)}"


def token_digest(token: str) -> str:
    """SHA-256 of a token: enough for 256 bits of randomness, fast to look up."""
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token(session_token: str) -> str:
    """The CSRF token of a session: derived from the session's secret, which a page of
    another site can neither read (HttpOnly) nor guess."""
    return hashlib.sha256(b"csrf\0" + session_token.encode()).hexdigest()[:43]


def csrf_matches(session_token: str, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(csrf_token(session_token), presented)


def check_email(email: str) -> str:
    email = email.strip().lower()
    if not _EMAIL.match(email):
        raise InvalidInput(f"邮箱 {email!r} 无效，例如 ops@example.com")
    return email


def check_key_scopes(scopes: Iterable[str], *, holder: frozenset[str] | None) -> tuple[str, ...]:
    """The requested scopes in canonical order, if a key may carry them and the person
    creating it holds each (``holder`` None: the local command line, which may grant any)."""
    wanted = {s.strip() for s in scopes if s.strip()}
    if not wanted:
        raise InvalidInput("请至少指定一个权限范围，例如 messages:send")
    unknown = wanted - KEY_SCOPES
    if unknown:
        raise UnknownScope(unknown)
    if holder is not None and wanted - holder:
        raise InvalidInput("不能授予自己没有的权限：" + "、".join(sorted(wanted - holder)))
    return tuple(p for p in PERMISSIONS if p in wanted)


def check_rate(rate_per_minute: int | None) -> int | None:
    if rate_per_minute is not None and not 1 <= rate_per_minute <= 1_000_000:
        raise InvalidInput("每分钟请求上限须在 1–1000000 之间")
    return rate_per_minute


def check_idempotency_key(key: str) -> str:
    if not _IDEMPOTENCY_KEY.match(key):
        raise InvalidInput("Idempotency-Key 须为 1–200 个可见 ASCII 字符")
    return key


def fingerprint(document: object) -> str:
    """The same digest for the same JSON document, whatever its key order."""
    canonical = json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Bucket:
    """A token bucket: ``tokens`` left at monotonic time ``at``."""

    tokens: float
    at: float


def take(
    bucket: Bucket | None, *, now: float, rate_per_second: float, burst: float
) -> tuple[Bucket, float]:
    """Take one token: the bucket after, and 0 — or, with none left, the bucket
    unchanged but refilled to ``now`` and the seconds until a token is there."""
    if bucket is None:
        tokens = burst
    else:
        tokens = min(burst, bucket.tokens + max(0.0, now - bucket.at) * rate_per_second)
    if tokens >= 1:
        return Bucket(tokens - 1, now), 0.0
    return Bucket(tokens, now), (1 - tokens) / rate_per_second
