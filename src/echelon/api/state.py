"""What every route needs from the app: the engine, the settings and the in-process
rate limiters, kept on ``app.state.api``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from fastapi import Request
from sqlalchemy import Engine

from echelon.access.ratelimit import RateLimiter
from echelon.access.settings import AccessSettings
from echelon.config import Settings


@dataclass
class ApiState:
    engine: Engine
    settings: Settings
    access: AccessSettings
    limiter: RateLimiter = field(default_factory=RateLimiter)
    sign_in_limiter: RateLimiter = field(default_factory=RateLimiter)

    @property
    def session_lifetime(self) -> timedelta:
        return timedelta(hours=self.access.session_hours)

    @property
    def idempotency_keep(self) -> timedelta:
        return timedelta(hours=self.access.idempotency_hours)


def api_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state
