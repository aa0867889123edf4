"""Complaint lists the channels send back (phone, time, channel, note), each tied to the
last message the workspace sent that number before the complaint — so complaint rates
land on the campaign, channel and hour that earned them.

Reading the file reuses the contact import's spreadsheet reader and field parsers, so
a complaint list takes the same CSV (UTF-8 or GBK) and XLSX files; a bad row is
reported and the good rows go in (DESIGN, invariant 6). Importing a list twice adds
nothing the second time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from echelon.analytics import queries
from echelon.audience.fields import parse_datetime, parse_text
from echelon.audience.phone import normalise_phone
from echelon.audience.tabular import map_columns, open_sheet
from echelon.db.outbox import messages
from echelon.db.tables import contacts
from echelon.db.tracking import complaints
from echelon.errors import EchelonError, InvalidInput

ALIASES: Final = {
    "phone": ("手机号", "手机", "号码", "手机号码", "被叫号码", "mobile"),
    "time": ("投诉时间", "时间", "日期", "complained_at", "date"),
    "channel": ("通道", "通道名称", "渠道"),
    "note": ("备注", "投诉内容", "内容", "原因", "remark"),
}
LOOKBACK: Final = timedelta(days=30)
"""A complaint is tied to a message sent at most this long before it."""


@dataclass
class ComplaintImport:
    rows: int = 0
    imported: int = 0
    duplicates: int = 0
    unmatched: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "imported": self.imported,
            "duplicates": self.duplicates,
            "unmatched": self.unmatched,
            "rejected": [{"row": row, "reason": reason} for row, reason in self.rejected],
        }


def import_complaints(
    engine: Engine, *, workspace_id: int, path: Path, now: datetime
) -> ComplaintImport:
    """Store the complaints of a CSV or XLSX file; a summary with every rejected row."""
    sheet = open_sheet(path)
    columns, _ = map_columns(sheet.headers, ALIASES, {})
    if "phone" not in columns or "time" not in columns:
        raise InvalidInput("投诉名单须有“手机号”和“投诉时间”两列")
    report = ComplaintImport()
    with engine.begin() as conn:
        zone = ZoneInfo(queries.workspace_timezone(conn, workspace_id))
        for number, cells in sheet.rows:
            report.rows += 1

            def cell(name: str, cells: list[Any] = cells) -> Any:
                index = columns.get(name)
                return cells[index] if index is not None and index < len(cells) else None

            try:
                phone = normalise_phone(str(cell("phone") or ""))
                complained_at = parse_datetime(cell("time"), field="投诉时间", zone=zone)
                if complained_at is None:
                    raise InvalidInput("缺少投诉时间")
                channel = parse_text(cell("channel"), field="通道", max_length=64)
                note = parse_text(cell("note"), field="备注", max_length=500)
            except EchelonError as exc:
                report.rejected.append((number, exc.message))
                continue
            message = _prompting_message(conn, workspace_id, phone, complained_at)
            if message is None:
                report.unmatched += 1
            stored = _insert(
                conn,
                {
                    "workspace_id": workspace_id,
                    "phone": phone,
                    "complained_at": complained_at,
                    "channel": channel,
                    "note": note,
                    "message_id": None if message is None else message[0],
                    "campaign_id": None if message is None else message[1],
                    "created_at": now,
                },
            )
            if stored:
                report.imported += 1
            else:
                report.duplicates += 1
    return report


def _prompting_message(
    conn: Connection, workspace_id: int, phone: str, at: datetime
) -> tuple[int, int | None] | None:
    m = messages.c
    # Through the contact, so the lookup walks the contact's messages by index.
    row = conn.execute(
        select(m.id, m.campaign_id)
        .join_from(messages, contacts, contacts.c.id == m.contact_id)
        .where(
            contacts.c.workspace_id == workspace_id,
            contacts.c.phone == phone,
            m.workspace_id == workspace_id,
            m.submitted_at <= at,
            m.submitted_at >= at - LOOKBACK,
        )
        .order_by(m.submitted_at.desc(), m.id.desc())
        .limit(1)
    ).one_or_none()
    return None if row is None else (row.id, row.campaign_id)


def _insert(conn: Connection, values: dict[str, Any]) -> bool:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(complaints).values(**values)
    done = conn.execute(
        statement.on_conflict_do_nothing(index_elements=["workspace_id", "phone", "complained_at"])
    )
    return bool(done.rowcount)
