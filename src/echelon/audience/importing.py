"""Bulk import of contacts, events and suppression lists from CSV or XLSX.

One transaction per import: either every good row goes in or, on a failure, nothing
does. Bad rows never stop an import; each is written with its row number and reason
to a rejects file beside the input. Re-importing the same file changes nothing.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable, Generator, Mapping
from contextlib import closing
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, Table

from echelon.audience import queries
from echelon.audience.fields import (
    BadValue,
    Cell,
    parse_amount_fen,
    parse_bool,
    parse_date,
    parse_datetime,
    parse_event_type,
    parse_gender,
    parse_tags,
    parse_text,
)
from echelon.audience.lists import ensure_list
from echelon.audience.phone import describe_phone, normalise_phone
from echelon.audience.pipeline import parsed_batches
from echelon.audience.regions import canonical_province
from echelon.audience.suppression import check_kind
from echelon.audience.tabular import Sheet, map_columns, open_sheet
from echelon.db.bulk import (
    GrowingTables,
    clear_staging,
    create_staging,
    drop_staging,
    json_text,
    load_staging,
    sqlite_time,
)
from echelon.db.tables import (
    consents,
    contact_list_members,
    contact_tags,
    contacts,
    events,
    suppressions,
)
from echelon.errors import InvalidInput
from echelon.workspaces.service import Workspace

CONTACT_COLUMNS: dict[str, tuple[str, ...]] = {
    "phone": (
        "手机号",
        "手机",
        "手机号码",
        "电话",
        "电话号码",
        "联系电话",
        "号码",
        "mobile",
        "tel",
    ),
    "name": ("姓名", "名字", "客户姓名", "称呼", "会员姓名"),
    "gender": ("性别", "sex"),
    "birthday": ("生日", "出生日期", "出生年月日", "birthdate", "dob"),
    "birthday_lunar": ("农历生日", "是否农历", "农历", "lunar"),
    "province": ("省份", "省", "所在省份"),
    "city": ("城市", "市", "所在城市"),
    "tags": ("标签", "tag"),
    "consent": ("营销同意", "同意营销", "是否同意营销", "marketingconsent"),
    "consent_at": ("同意时间", "consentedat"),
    "consent_proof": ("同意凭证", "proof"),
    # Derived from the number or kept by echelon: recognised so that an export can be
    # imported again, never read from a file.
    "carrier": ("运营商",),
    "created_at": ("创建时间",),
}
EVENT_COLUMNS: dict[str, tuple[str, ...]] = {
    "phone": CONTACT_COLUMNS["phone"],
    "type": ("事件", "事件类型", "类型", "event", "eventtype"),
    "occurred_at": ("时间", "发生时间", "下单时间", "time", "timestamp"),
    "amount": ("金额", "实付金额", "订单金额", "支付金额"),
    "order_id": ("订单号", "订单编号", "order"),
    "category": ("品类", "类目", "分类"),
    "coupon_code": ("优惠券", "券码", "优惠码", "coupon"),
    "event_id": ("事件id", "eventid"),
}
SUPPRESSION_COLUMNS: dict[str, tuple[str, ...]] = {
    "phone": CONTACT_COLUMNS["phone"],
    "reason": ("原因", "备注", "note"),
}

Progress = Callable[[int, int], None]
_Row = TypeVar("_Row")


@dataclass
class ImportReport:
    """What an import did, in counts; the JSON the CLI prints with ``--json``."""

    rows: int = 0
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejects_file: str | None = None
    extra: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(data.pop("extra"))
        return data


class Rejects:
    """The rejects file, written only if a row is rejected: row number, reason, the row."""

    def __init__(self, path: Path, headers: list[str]) -> None:
        self.path = path
        self.headers = headers
        self.count = 0
        self._handle: Any = None
        self._writer: Any = None

    def add(self, row_number: int, reason: str, cells: list[Cell]) -> None:
        if self._writer is None:
            # utf-8-sig so that Excel on a Chinese Windows opens it without mojibake.
            self._handle = self.path.open("w", encoding="utf-8-sig", newline="")
            self._writer = csv.writer(self._handle)
            self._writer.writerow(["行号", "原因", *self.headers])
        self._writer.writerow([row_number, reason, *["" if c is None else c for c in cells]])
        self.count += 1

    def flush(self) -> None:
        if self._handle is not None:
            self._handle.flush()

    def close(self, *, keep: bool) -> str | None:
        if self._handle is not None:
            self._handle.close()
        if not keep:
            # The parsing process may have written it: remove it whoever did.
            self.path.unlink(missing_ok=True)
        return str(self.path) if self.count and keep else None


def default_rejects_path(path: Path) -> Path:
    return path.with_name(f"{path.stem}.rejects.csv")


def _phone_cell(cell: Cell) -> str:
    # Excel stores 13800138000 as a number, sometimes as 13800138000.0.
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return "" if cell is None else str(cell)


def _cell(cells: list[Cell], index: int | None) -> Cell:
    if index is None or index >= len(cells):
        return None
    return cells[index]


def _attributes(cells: list[Cell], others: Mapping[str, int]) -> dict[str, Cell]:
    found: dict[str, Cell] = {}
    for header, index in others.items():
        value = _cell(cells, index)
        if isinstance(value, str):
            value = value.strip()
        if value is None or value == "":
            continue
        found[header] = value.isoformat() if isinstance(value, datetime) else value
    return found


def _parsed_batches(
    sheet: Sheet,
    parse: Callable[[list[Cell]], Any],
    rejects: Rejects,
    batch_size: int,
    progress: Progress | None,
    dialect: str,
) -> Generator[tuple[list[Any], int]]:
    # Times cross the process boundary already spelled as the database stores them.
    wire_time = datetime.isoformat if dialect == "postgresql" else sqlite_time
    return parsed_batches(sheet, parse, rejects, batch_size, progress, wire_time)


def _run(
    engine: Engine,
    path: Path,
    rejects_path: Path | None,
    body: Callable[[Connection, Sheet, Rejects, ImportReport], None],
) -> ImportReport:
    sheet = open_sheet(path)
    rejects = Rejects(rejects_path or default_rejects_path(path), sheet.headers)
    report = ImportReport()
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Compiling bulk statements costs more than it saves on batches this size.
                conn.exec_driver_sql("SET LOCAL jit = off")
            body(conn, sheet, rejects, report)
    except BaseException:
        rejects.close(keep=False)
        raise
    report.rejected = rejects.count
    report.rejects_file = rejects.close(keep=True)
    return report


@dataclass(frozen=True, slots=True)
class ContactImportOptions:
    columns: Mapping[str, str] = field(default_factory=dict)
    consent_source: str | None = None
    consent_proof: str | None = None
    list_name: str | None = None
    rejects_path: Path | None = None
    batch_size: int = 20_000


def import_contacts(
    engine: Engine,
    *,
    workspace: Workspace,
    path: Path,
    options: ContactImportOptions,
    now: datetime,
    progress: Progress | None = None,
) -> ImportReport:
    """Upsert the contacts of a file; marketing consent only where a source is named."""
    zone = ZoneInfo(workspace.timezone)

    def body(conn: Connection, sheet: Sheet, rejects: Rejects, report: ImportReport) -> None:
        fields, others = map_columns(sheet.headers, CONTACT_COLUMNS, options.columns)
        if "phone" not in fields:
            raise InvalidInput("找不到手机号列：表头应含“手机号”，或用 --map 列名=phone 指定")
        if "consent" in fields and options.consent_source is None:
            raise InvalidInput("文件含有营销同意列：请用 --consent-source 说明同意从何而来")
        parse = _contact_parser(fields, others, zone)
        list_id = ensure_list(conn, workspace.id, options.list_name, now)
        for table in (queries.staged_contacts, queries.staged_tags, queries.staged_ids):
            create_staging(conn, table)
        growing = GrowingTables(conn, [contacts, contact_tags, consents, contact_list_members])
        counts = dict.fromkeys(("tags_added", "consent_granted", "consent_withheld"), 0)
        seen: set[str] = set()
        if list_id is not None:
            counts["list_members_added"] = 0
        with closing(
            _parsed_batches(sheet, parse, rejects, options.batch_size, progress, conn.dialect.name)
        ) as batches:
            for parsed, covered in batches:
                # A number seen before in the file keeps its first row; later ones only count
                # as duplicates. (Last-wins across batches would make a re-import flip
                # contacts back and forth and so change rows.)
                unique = []
                for staged, row_tags in parsed:
                    if staged[0] in seen:
                        report.duplicates += 1
                        continue
                    seen.add(staged[0])
                    unique.append((staged, row_tags))
                report.rows += covered
                load_staging(conn, queries.staged_contacts, [staged for staged, _ in unique])
                load_staging(
                    conn, queries.staged_tags, [(st[0], t) for st, tags in unique for t in tags]
                )
                queries.resolve_existing_contacts(conn, workspace.id)
                updated = queries.update_staged_contacts(conn, workspace.id, now)
                imported = queries.insert_staged_contacts(conn, workspace.id, now)
                report.imported += imported
                report.updated += updated
                report.unchanged += len(unique) - imported - updated
                growing.grew(len(unique))
                counts["tags_added"] += queries.insert_staged_tags(conn, workspace.id)
                if options.consent_source is not None:
                    granted, withheld = queries.grant_staged_consent(
                        conn,
                        workspace.id,
                        source=options.consent_source,
                        proof=options.consent_proof,
                        now=now,
                    )
                    counts["consent_granted"] += granted
                    counts["consent_withheld"] += withheld
                if list_id is not None:
                    counts["list_members_added"] += queries.insert_staged_list_members(
                        conn, workspace.id, list_id
                    )
                for table in (queries.staged_contacts, queries.staged_tags, queries.staged_ids):
                    clear_staging(conn, table)
        for table in (queries.staged_contacts, queries.staged_tags, queries.staged_ids):
            drop_staging(conn, table)
        report.extra = counts

    return _run(engine, path, options.rejects_path, body)


def _contact_parser(
    fields: Mapping[str, int], others: Mapping[str, int], zone: ZoneInfo
) -> Callable[[list[Cell]], tuple[tuple[Any, ...], list[str]]]:
    get = fields.get

    def parse(cells: list[Cell]) -> tuple[tuple[Any, ...], list[str]]:
        phone = normalise_phone(_phone_cell(_cell(cells, get("phone"))))
        info = describe_phone(phone)
        birthday = parse_date(_cell(cells, get("birthday")), field="生日")
        lunar = parse_bool(_cell(cells, get("birthday_lunar")), field="农历生日")
        attributes = _attributes(cells, others)
        staged = (
            phone,
            parse_text(_cell(cells, get("name")), field="姓名", max_length=100),
            parse_gender(_cell(cells, get("gender"))),
            birthday,
            None if birthday is None else bool(lunar),
            _province(_cell(cells, get("province"))),
            parse_text(_cell(cells, get("city")), field="城市", max_length=32),
            info.province,
            info.city,
            None if info.carrier is None else info.carrier.value,
            json_text(attributes) if attributes else None,
            parse_bool(_cell(cells, get("consent")), field="营销同意"),
            parse_datetime(_cell(cells, get("consent_at")), field="同意时间", zone=zone),
            parse_text(_cell(cells, get("consent_proof")), field="同意凭证", max_length=500),
        )
        return staged, parse_tags(_cell(cells, get("tags")))

    return parse


def _province(cell: Cell) -> str | None:
    text = parse_text(cell, field="省份", max_length=32)
    if text is None:
        return None
    province = canonical_province(text)
    if province is None:
        raise BadValue("省份", text, "应为省级行政区名称，如 广东 或 广东省")
    return province


def event_key(event_id: str | None, content: tuple[Any, ...]) -> str:
    """The idempotency key of an event: its own id if it has one, else its content."""
    if event_id:
        return hashlib.sha256(b"id\0" + event_id.encode()).hexdigest()
    return hashlib.sha256(b"content\0" + json_text(content).encode()).hexdigest()


def import_events(
    engine: Engine,
    *,
    workspace: Workspace,
    path: Path,
    columns: Mapping[str, str],
    rejects_path: Path | None,
    now: datetime,
    batch_size: int = 20_000,
    progress: Progress | None = None,
) -> ImportReport:
    """Store the events of a file; a contact first seen here is created without consent."""
    zone = ZoneInfo(workspace.timezone)

    def body(conn: Connection, sheet: Sheet, rejects: Rejects, report: ImportReport) -> None:
        fields, others = map_columns(sheet.headers, EVENT_COLUMNS, columns)
        for required, header in (
            ("phone", "手机号"),
            ("type", "事件类型"),
            ("occurred_at", "时间"),
        ):
            if required not in fields:
                raise InvalidInput(
                    f"找不到{header}列：请在表头写明，或用 --map 列名={required} 指定"
                )
        parse = _event_parser(fields, others, zone)
        create_staging(conn, queries.staged_events)
        growing = GrowingTables(conn, [contacts, events])
        contacts_created = 0
        with closing(
            _parsed_batches(sheet, parse, rejects, batch_size, progress, conn.dialect.name)
        ) as batches:
            for parsed, covered in batches:
                unique = {row[0]: row for row in parsed}
                report.rows += covered
                load_staging(conn, queries.staged_events, list(unique.values()))
                contacts_created += queries.insert_event_contacts(conn, workspace.id, now)
                imported = queries.insert_staged_events(conn, workspace.id, now)
                report.imported += imported
                report.duplicates += len(parsed) - imported
                growing.grew(len(unique))
                clear_staging(conn, queries.staged_events)
        drop_staging(conn, queries.staged_events)
        report.extra = {"contacts_created": contacts_created}

    return _run(engine, path, rejects_path, body)


def _event_parser(
    fields: Mapping[str, int], others: Mapping[str, int], zone: ZoneInfo
) -> Callable[[list[Cell]], tuple[Any, ...]]:
    get = fields.get

    def parse(cells: list[Cell]) -> tuple[Any, ...]:
        phone = normalise_phone(_phone_cell(_cell(cells, get("phone"))))
        occurred_at = parse_datetime(_cell(cells, get("occurred_at")), field="时间", zone=zone)
        if occurred_at is None:
            raise BadValue("时间", None, "不能为空")
        content = (
            parse_event_type(_cell(cells, get("type"))),
            occurred_at,
            parse_amount_fen(_cell(cells, get("amount")), field="金额"),
            parse_text(_cell(cells, get("order_id")), field="订单号", max_length=64),
            parse_text(_cell(cells, get("category")), field="品类", max_length=64),
            parse_text(_cell(cells, get("coupon_code")), field="券码", max_length=64),
        )
        properties = _attributes(cells, others)
        event_id = parse_text(_cell(cells, get("event_id")), field="事件ID", max_length=200)
        key = event_key(
            event_id, (phone, content[0], occurred_at.isoformat(), *content[2:], properties)
        )
        info = describe_phone(phone)
        carrier = None if info.carrier is None else info.carrier.value
        return (
            key,
            phone,
            info.province,
            info.city,
            carrier,
            *content,
            json_text(properties) if properties else None,
        )

    return parse


def import_suppressions(
    engine: Engine,
    *,
    workspace: Workspace,
    path: Path,
    kind: str,
    source: str,
    columns: Mapping[str, str],
    rejects_path: Path | None,
    now: datetime,
    batch_size: int = 20_000,
    progress: Progress | None = None,
) -> ImportReport:
    """Add every number of a file to the suppression list ``kind``."""
    check_kind(kind)

    def body(conn: Connection, sheet: Sheet, rejects: Rejects, report: ImportReport) -> None:
        fields, _ = map_columns(sheet.headers, SUPPRESSION_COLUMNS, columns)
        if "phone" not in fields:
            raise InvalidInput("找不到手机号列：表头应含“手机号”，或用 --map 列名=phone 指定")

        def parse(cells: list[Cell]) -> tuple[Any, ...]:
            phone = normalise_phone(_phone_cell(_cell(cells, fields["phone"])))
            reason = parse_text(_cell(cells, fields.get("reason")), field="原因", max_length=500)
            return phone, reason, None

        _stage_and_apply(
            conn,
            queries.staged_phones,
            sheet,
            parse,
            rejects,
            report,
            batch_size,
            progress,
            lambda: queries.insert_staged_suppressions(
                conn, workspace.id, kind=kind, source=source, now=now
            ),
        )

    return _run(engine, path, rejects_path, body)


def _stage_and_apply(
    conn: Connection,
    table: Table,
    sheet: Sheet,
    parse: Callable[[list[Cell]], tuple[Any, ...]],
    rejects: Rejects,
    report: ImportReport,
    batch_size: int,
    progress: Progress | None,
    apply: Callable[[], int],
) -> None:
    create_staging(conn, table)
    growing = GrowingTables(conn, [suppressions])
    with closing(
        _parsed_batches(sheet, parse, rejects, batch_size, progress, conn.dialect.name)
    ) as batches:
        for parsed, covered in batches:
            unique = {row[0]: row for row in parsed}
            report.rows += covered
            load_staging(conn, table, list(unique.values()))
            imported = apply()
            growing.grew(len(unique))
            report.imported += imported
            report.unchanged += len(unique) - imported
            report.duplicates += len(parsed) - len(unique)
            clear_staging(conn, table)
    drop_staging(conn, table)
