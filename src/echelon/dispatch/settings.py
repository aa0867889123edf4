"""A workspace's dispatch settings: retries and failover, reply keywords, auto-replies
and which carrier error codes mean 空号. Stored sparse as JSON on the workspace, like the
compliance policy: what a workspace never changed follows the defaults here.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import Connection, select

from echelon.db.tables import workspaces
from echelon.dispatch.rules import DEFAULT_OPT_OUT_KEYWORDS, OptOutKeywords
from echelon.workspaces.sparse import save_sparse

# Receipt/submit error codes that mean the number does not exist (空号) or is not in
# service, as China's carriers and SMPP report them. Data, not code: a workspace adds
# its own provider's codes with ``workspace dispatch --invalid-code``.
DEFAULT_INVALID_CODES = (
    "MK:0001",  # 移动: 空号
    "MK:0012",  # 移动: 号码不存在
    "MI:0054",  # 移动: 用户已销号
    "MN:0001",  # 移动: 空号 (网关)
    "DB:0101",  # 联通: 用户不存在
    "UNKNOWN_SUBSCRIBER",
    "ESME_RINVDSTADR",  # SMPP 0x0B: the SMSC refused the destination
)


class AutoReply(BaseModel):
    """A reply containing ``keyword`` (folded like opt-out keywords) is answered with
    ``reply``, sent as a service message."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    keyword: str = Field(min_length=1, max_length=20)
    reply: str = Field(min_length=1, max_length=500)


class DispatchSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_attempts: int = Field(4, ge=1, le=20)  # submits of one message, all channels
    failover_after: int = Field(2, ge=1, le=20)  # attempts on a channel before the next
    retry_base_seconds: float = Field(2.0, gt=0, le=3600)
    retry_max_seconds: float = Field(300.0, gt=0, le=86_400)
    opt_out_keywords: tuple[str, ...] = DEFAULT_OPT_OUT_KEYWORDS
    opt_out_confirmation: str | None = Field(None, max_length=200)
    auto_replies: tuple[AutoReply, ...] = ()
    auto_reply_cooldown_seconds: int = Field(600, ge=0, le=86_400)  # one answer per number
    invalid_codes: tuple[str, ...] = DEFAULT_INVALID_CODES
    invalid_after: int = Field(2, ge=1, le=100)  # 空号 answers before the number is listed

    @field_validator("opt_out_keywords")
    @classmethod
    def _some_keyword(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not OptOutKeywords.of(value).latin and not OptOutKeywords.of(value).other:
            raise ValueError("至少需要一个退订关键词")
        return value

    def keywords(self) -> OptOutKeywords:
        return OptOutKeywords.of(self.opt_out_keywords)

    def answer_to(self, reply: str) -> str | None:
        """The auto-reply for ``reply``: the first whose keyword it contains."""
        for auto in self.auto_replies:
            if OptOutKeywords.of([auto.keyword]).contained_in(reply):
                return auto.reply
        return None

    def retry_delay(self, attempts: int) -> float:
        """Seconds before the next try after ``attempts`` failed ones (doubling)."""
        delay: float = self.retry_base_seconds * 2.0 ** max(0, attempts - 1)
        return min(self.retry_max_seconds, delay)


def load_dispatch_settings(conn: Connection, workspace_id: int) -> DispatchSettings:
    stored = conn.execute(
        select(workspaces.c.dispatch).where(workspaces.c.id == workspace_id)
    ).scalar_one()
    return DispatchSettings.model_validate(stored or {})


def save_dispatch_settings(
    conn: Connection, workspace_id: int, changes: dict[str, Any]
) -> DispatchSettings:
    """Merge ``changes`` into the stored settings; invalid values change nothing."""
    return save_sparse(
        conn,
        workspace_id=workspace_id,
        column=workspaces.c.dispatch,
        current=load_dispatch_settings(conn, workspace_id),
        changes=changes,
        what="发送设置",
    )
