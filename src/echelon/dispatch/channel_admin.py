"""Channel administration: add, edit, enable, disable, show and list SMPP channels.

A channel's row keeps its ``SmppConfig`` as JSON, password included (the dispatcher
binds with it), plus ``binds``, the number of sessions to open. The password leaves
this module only through ``channel_connection``, for binding: a ``ChannelRecord``
carries the config with the password masked, so whatever shows a record cannot leak it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection, Engine, RowMapping, insert, select, update

from echelon.audience.phone import Carrier
from echelon.channels.smpp import SmppConfig
from echelon.db.outbox import channels
from echelon.errors import EchelonError, InvalidInput, NotFound

ALL_CARRIERS = "all"
MASK = "******"
_BINDS_KEY = "binds"  # kept beside the SmppConfig fields in the config column
_SETTINGS = frozenset({"carriers", "weight", "priority", "binds"})
_FIELD_LABELS = {
    "host": "主机",
    "port": "端口",
    "system_id": "账号 system_id",
    "password": "密码",
    "system_type": "system_type",
    "bind_mode": "绑定方式",
    "window": "窗口",
    "tps": "每秒条数 tps",
}
_LIMIT_MESSAGES = {
    "less_than_equal": "不能大于 {le}",
    "greater_than_equal": "不能小于 {ge}",
    "greater_than": "须大于 {gt}",
    "string_too_long": "最多 {max_length} 个字符",
    "too_long": "最多 {max_length} 个字符",
}


class ChannelNotFound(NotFound):
    code = "channel_not_found"

    def __init__(self, name: str) -> None:
        super().__init__(f"通道「{name}」不存在")


class ChannelExists(EchelonError):
    code = "channel_exists"
    http_status = 409

    def __init__(self, name: str) -> None:
        super().__init__(f"通道「{name}」已存在")


class AccountInUse(EchelonError):
    """Another enabled channel binds to the same SMSC account. The SMSC may send either
    channel's receipts and replies over the other's sessions, where they would match
    nothing: more connections to one account are the ``binds`` setting."""

    code = "channel_account_in_use"
    http_status = 409

    def __init__(self, config: SmppConfig, other: str | None) -> None:
        account = f"{config.system_id}@{config.host}:{config.port}"
        holder = f"通道「{other}」" if other else "另一个工作区的通道"
        super().__init__(
            f"{holder}已使用短信中心账号 {account}：同一账号的回执可能从它的任一连接返回，"
            "不能再建一个通道；要增加连接数，请设置该通道的绑定数（--binds）"
        )


@dataclass(frozen=True, slots=True)
class ChannelRecord:
    """A channel as shown to people and scripts: ``config`` has the password masked."""

    id: int
    name: str
    kind: str
    config: dict[str, Any]
    binds: int
    carriers: tuple[str, ...]
    weight: int
    priority: int
    enabled: bool
    created_at: datetime
    updated_at: datetime

    @property
    def address(self) -> str:
        return f"{self.config['host']}:{self.config['port']}"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "enabled": self.enabled,
            "config": self.config,
            "binds": self.binds,
            "carriers": list(self.carriers),
            "weight": self.weight,
            "priority": self.priority,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


def smpp_config(fields: dict[str, Any]) -> SmppConfig:
    """``SmppConfig`` from user input; a bad value is ``InvalidInput`` naming the field
    (never echoing a password)."""
    try:
        return SmppConfig.model_validate(fields)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else ""
        label = _FIELD_LABELS.get(field, field)
        template = _LIMIT_MESSAGES.get(error["type"])
        reason = template.format(**error.get("ctx", {})) if template else error["msg"]
        shown = "" if field == "password" else f" {error['input']!r} "
        raise InvalidInput(f"{label}{shown}无效：{reason}") from exc


def parse_carriers(carriers: Iterable[str]) -> tuple[str, ...]:
    """``("all",)`` or a subset of the carriers in their canonical order."""
    chosen = {c.strip().lower() for c in carriers if c.strip()}
    if chosen == {ALL_CARRIERS}:
        return (ALL_CARRIERS,)
    if ALL_CARRIERS in chosen:
        raise InvalidInput("运营商 all 不能与具体运营商同时给出")
    known = {c.value for c in Carrier}
    unknown = sorted(chosen - known)
    if unknown or not chosen:
        names = "、".join(c.value for c in Carrier)
        bad = f"「{'、'.join(unknown)}」" if unknown else "为空"
        raise InvalidInput(f"运营商{bad}无效：应为 all，或 {names} 中的一个或多个")
    return tuple(c.value for c in Carrier if c.value in chosen)


def add_channel(
    engine: Engine,
    *,
    workspace_id: int,
    name: str,
    config: SmppConfig,
    carriers: list[str],
    weight: int,
    priority: int,
    binds: int = 1,
    now: datetime,
) -> ChannelRecord:
    """A new, enabled SMPP channel; its name is unique in the workspace."""
    name = name.strip()
    if not name or len(name) > 64:
        raise InvalidInput("通道名称须为 1–64 个字")
    settings = _checked_settings(carriers=carriers, weight=weight, binds=binds)
    with engine.begin() as conn:
        if _find(conn, workspace_id, name) is not None:
            raise ChannelExists(name)
        _refuse_shared_account(conn, config, workspace_id=workspace_id, channel_id=None)
        conn.execute(
            insert(channels).values(
                workspace_id=workspace_id,
                name=name,
                kind="smpp",
                config=_stored_config(config, name, settings["binds"]),
                carriers=list(settings["carriers"]),
                weight=settings["weight"],
                priority=priority,
                enabled=True,
                created_at=now,
                updated_at=now,
            )
        )
        return _record(_get(conn, workspace_id, name))


def edit_channel(
    engine: Engine, *, workspace_id: int, name: str, now: datetime, **changes: Any
) -> ChannelRecord:
    """Change ``SmppConfig`` fields (host, port, password …) and/or carriers, weight,
    priority, binds; what is not given keeps its value."""
    changes = {key: value for key, value in changes.items() if value is not None}
    # The config's name is always the channel's: a channel is not renamed here.
    unknown = set(changes) - _SETTINGS - (set(SmppConfig.model_fields) - {"name"})
    if unknown:
        raise InvalidInput(f"不能修改通道的 {'、'.join(sorted(unknown))}")
    with engine.begin() as conn:
        row = _get(conn, workspace_id, name)
        current = _config_of(row)
        fields = _secret_dump(current) | {k: v for k, v in changes.items() if k not in _SETTINGS}
        config = smpp_config(fields)
        settings = _checked_settings(
            carriers=changes.get("carriers", row["carriers"]),
            weight=changes.get("weight", row["weight"]),
            binds=changes.get("binds", row["config"].get(_BINDS_KEY, 1)),
        )
        if row["enabled"]:
            _refuse_shared_account(conn, config, workspace_id=workspace_id, channel_id=row["id"])
        conn.execute(
            update(channels)
            .where(channels.c.id == row["id"])
            .values(
                config=_stored_config(config, row["name"], settings["binds"]),
                carriers=list(settings["carriers"]),
                weight=settings["weight"],
                priority=changes.get("priority", row["priority"]),
                updated_at=now,
            )
        )
        return _record(_get(conn, workspace_id, name))


def disable_channel(
    engine: Engine, *, workspace_id: int, name: str, now: datetime
) -> ChannelRecord:
    """The channel stays configured but is no longer used for sending."""
    return _set_enabled(engine, workspace_id, name, enabled=False, now=now)


def enable_channel(engine: Engine, *, workspace_id: int, name: str, now: datetime) -> ChannelRecord:
    return _set_enabled(engine, workspace_id, name, enabled=True, now=now)


def get_channel(engine: Engine, *, workspace_id: int, name: str) -> ChannelRecord:
    with engine.connect() as conn:
        return _record(_get(conn, workspace_id, name))


def list_channels(engine: Engine, *, workspace_id: int) -> list[ChannelRecord]:
    """Every channel of the workspace, by priority then name."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(channels)
            .where(channels.c.workspace_id == workspace_id)
            .order_by(channels.c.priority, channels.c.name)
        ).mappings()
        return [_record(row) for row in rows]


def channel_connection(engine: Engine, *, workspace_id: int, name: str) -> SmppConfig:
    """The stored config with its password, for binding; never for display."""
    with engine.connect() as conn:
        return _config_of(_get(conn, workspace_id, name))


def _set_enabled(
    engine: Engine, workspace_id: int, name: str, *, enabled: bool, now: datetime
) -> ChannelRecord:
    with engine.begin() as conn:
        row = _get(conn, workspace_id, name)
        if enabled and not row["enabled"]:
            _refuse_shared_account(
                conn, _config_of(row), workspace_id=workspace_id, channel_id=row["id"]
            )
        conn.execute(
            update(channels)
            .where(channels.c.id == row["id"])
            .values(enabled=enabled, updated_at=now)
        )
        return _record(_get(conn, workspace_id, name))


def _checked_settings(*, carriers: Iterable[str], weight: int, binds: int) -> dict[str, Any]:
    if weight < 1:
        raise InvalidInput(f"权重 {weight} 无效：须至少为 1")
    if binds < 1:
        raise InvalidInput(f"绑定数 {binds} 无效：须至少为 1")
    return {"carriers": parse_carriers(carriers), "weight": weight, "binds": binds}


def _refuse_shared_account(
    conn: Connection, config: SmppConfig, *, workspace_id: int, channel_id: int | None
) -> None:
    """``AccountInUse`` if another enabled channel, in any workspace, binds to the
    account of ``config`` (the same system_id at the same host and port)."""
    account = (config.host.lower(), config.port, config.system_id)
    rows = conn.execute(
        select(channels.c.id, channels.c.workspace_id, channels.c.name, channels.c.config).where(
            channels.c.enabled.is_(True)
        )
    )
    for other_id, other_workspace, other_name, other in rows:
        if other_id == channel_id:
            continue
        if (str(other["host"]).lower(), other["port"], other["system_id"]) == account:
            raise AccountInUse(config, other_name if other_workspace == workspace_id else None)


def _secret_dump(config: SmppConfig) -> dict[str, Any]:
    fields = config.model_dump(mode="json")
    fields["password"] = config.password.get_secret_value()
    return fields


def _stored_config(config: SmppConfig, name: str, binds: int) -> dict[str, Any]:
    # The config's own name labels logs and health; it is always the channel's.
    return _secret_dump(config) | {"name": name, _BINDS_KEY: binds}


def _config_of(row: RowMapping) -> SmppConfig:
    fields = dict(row["config"])
    fields.pop(_BINDS_KEY, None)
    return SmppConfig.model_validate(fields)


def _find(conn: Connection, workspace_id: int, name: str) -> RowMapping | None:
    return (
        conn.execute(
            select(channels).where(channels.c.workspace_id == workspace_id, channels.c.name == name)
        )
        .mappings()
        .first()
    )


def _get(conn: Connection, workspace_id: int, name: str) -> RowMapping:
    row = _find(conn, workspace_id, name.strip())
    if row is None:
        raise ChannelNotFound(name)
    return row


def _record(row: RowMapping) -> ChannelRecord:
    shown = _config_of(row).model_dump(mode="json", exclude={"name"})
    shown["password"] = MASK
    return ChannelRecord(
        id=row["id"],
        name=row["name"],
        kind=row["kind"],
        config=shown,
        binds=row["config"].get(_BINDS_KEY, 1),
        carriers=tuple(row["carriers"]),
        weight=row["weight"],
        priority=row["priority"],
        enabled=row["enabled"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
