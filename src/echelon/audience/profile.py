"""Editing one contact by hand (the console's profile page): its fields and custom
attributes set to exactly what was typed, and its tags added or removed.

Values are read by the import's parsers, so a form, a spreadsheet and the API never
disagree on what a birthday or a province may be; a refused value names its field
and changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Connection, Engine, delete, insert, select, update

from echelon.audience.fields import Cell, parse_tags
from echelon.audience.importing import _attributes, _contact_parser
from echelon.audience.phone import normalise_phone
from echelon.audience.records import _zone
from echelon.db.tables import contact_tags, contacts
from echelon.errors import InvalidInput, NotFound

# What the API takes as ``attributes`` (api/params.py ``Properties``), held here too.
MAX_ATTRIBUTES: Final = 50
MAX_ATTRIBUTE_NAME: Final = 64
MAX_ATTRIBUTE_VALUE: Final = 1000
EDITABLE: Final = ("name", "gender", "birthday", "birthday_lunar", "province", "city")
# The columns of the import's contact parser that a hand edit fills in.
_COLUMNS: Final = {"phone": 0, **{name: i for i, name in enumerate(EDITABLE, start=1)}}
# Where the parser puts them in the row it returns (a staged contact: phone first).
_PARSED: Final = {name: i for i, name in enumerate(EDITABLE, start=1)}


def edit_contact(
    engine: Engine,
    *,
    workspace_id: int,
    phone: str,
    fields: Mapping[str, str | None],
    attributes: Mapping[str, str],
    now: datetime,
) -> list[str]:
    """Set the contact's fields (``EDITABLE``; one missing or blank is cleared) and its
    custom attributes to exactly these; the names of what changed. An attribute typed
    as its stored value reads keeps the stored type (a number stays a number)."""
    number = normalise_phone(phone)
    unknown = sorted(set(fields) - set(EDITABLE))
    if unknown:
        raise InvalidInput(f"不能修改的字段：{'、'.join(unknown)}")
    _check_attributes(attributes)
    cells: list[Cell] = [number, *(fields.get(name) for name in EDITABLE)]
    others = {name: len(cells) + i for i, name in enumerate(attributes)}
    cells.extend(attributes.values())
    parse = _contact_parser(_COLUMNS, others, _zone(engine, workspace_id))
    staged, _tags = parse(cells)
    with engine.begin() as conn:
        row = _contact(conn, workspace_id, number)
        wanted: dict[str, Any] = {name: staged[i] for name, i in _PARSED.items()}
        wanted["birthday_lunar"] = bool(wanted["birthday"] and wanted["birthday_lunar"])
        typed = _attributes(cells, others)
        stored = dict(row.attributes or {})
        wanted["attributes"] = {
            name: stored[name] if name in stored and str(stored[name]) == value else value
            for name, value in typed.items()
        }
        current = row._mapping
        changed = [name for name, value in wanted.items() if current[name] != value]
        if changed:
            conn.execute(
                update(contacts)
                .where(contacts.c.workspace_id == workspace_id, contacts.c.id == row.id)
                .values(**{name: wanted[name] for name in changed}, updated_at=now)
            )
    return changed


def retag_contact(
    engine: Engine,
    *,
    workspace_id: int,
    phone: str,
    add: Sequence[str] = (),
    remove: Sequence[str] = (),
) -> tuple[list[str], list[str]]:
    """Add tags (each text read as an import's tag cell: 会员，老客 is two tags) and
    remove tags of one contact; (added, removed), only what changed."""
    number = normalise_phone(phone)
    adding: list[str] = []
    for text in add:
        adding.extend(tag for tag in parse_tags(text) if tag not in adding)
    dropping = [tag.strip() for tag in remove if tag.strip()]
    if set(adding) & set(dropping):
        raise InvalidInput("同一个标签不能同时添加和删除")
    with engine.begin() as conn:
        contact_id = _contact(conn, workspace_id, number).id
        held = set(
            conn.execute(
                select(contact_tags.c.tag).where(
                    contact_tags.c.workspace_id == workspace_id,
                    contact_tags.c.contact_id == contact_id,
                )
            ).scalars()
        )
        added = [tag for tag in adding if tag not in held]
        removed = [tag for tag in dropping if tag in held]
        if added:
            conn.execute(
                insert(contact_tags),
                [{"contact_id": contact_id, "tag": t, "workspace_id": workspace_id} for t in added],
            )
        if removed:
            conn.execute(
                delete(contact_tags).where(
                    contact_tags.c.workspace_id == workspace_id,
                    contact_tags.c.contact_id == contact_id,
                    contact_tags.c.tag.in_(removed),
                )
            )
    return added, removed


def _check_attributes(attributes: Mapping[str, str]) -> None:
    if len(attributes) > MAX_ATTRIBUTES:
        raise InvalidInput(f"自定义属性最多 {MAX_ATTRIBUTES} 个")
    for name, value in attributes.items():
        if not name.strip() or len(name) > MAX_ATTRIBUTE_NAME:
            raise InvalidInput(f"自定义属性名「{name}」须为 1–{MAX_ATTRIBUTE_NAME} 个字符")
        if len(value) > MAX_ATTRIBUTE_VALUE:
            raise InvalidInput(f"自定义属性「{name}」的值最多 {MAX_ATTRIBUTE_VALUE} 个字符")


def _contact(conn: Connection, workspace_id: int, number: str) -> Any:
    row = conn.execute(
        select(contacts).where(contacts.c.workspace_id == workspace_id, contacts.c.phone == number)
    ).one_or_none()
    if row is None:
        raise NotFound(f"联系人 {number} 不存在")
    return row
