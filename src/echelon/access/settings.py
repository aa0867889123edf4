"""Settings of the HTTP boundary, read from the environment (prefix ``ECHELON_API_``)
and passed explicitly like ``echelon.config.Settings``."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class AccessSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ECHELON_API_", extra="ignore")

    # A key's default limit (a key may have its own): a token bucket per key and per
    # process, refilled at rate/60 a second and holding up to ``burst`` requests.
    rate_per_minute: int = Field(600, ge=1)
    burst: int = Field(60, ge=1)
    # Failed sign-ins per address and minute before 429.
    sign_in_attempts_per_minute: int = Field(10, ge=1)
    session_hours: float = Field(12.0, gt=0)
    # Secure cookies are sent over HTTPS only; turn off only for plain-HTTP local use.
    cookie_secure: bool = True
    idempotency_hours: float = Field(24.0, gt=0)
