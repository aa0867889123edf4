"""One typed settings object, read from the environment (prefix ``ECHELON_``).

Settings are passed explicitly to whatever needs them; nothing reads the
environment behind the caller's back.
"""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ECHELON_", extra="ignore")

    database_url: str = "sqlite:///./echelon.db"
    workspace: str = "default"
    # The secret behind the clicks' keyed IP digests. Set it so digests compare across
    # processes and restarts; unset, each process draws its own key.
    ip_hash_key: SecretStr | None = None
