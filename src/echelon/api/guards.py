"""Text no database can store: NUL characters (PostgreSQL refuses them in text) and
lone surrogates (not encodable as UTF-8) are refused at the door, wherever they are —
path, query or any string of a JSON body — so SQLite and PostgreSQL answer alike."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from echelon.errors import InvalidInput


class UnstorableText(InvalidInput):
    code = "invalid_input"

    def __init__(self, field: str) -> None:
        super().__init__(f"{field} 含有不能保存的字符（空字符或不完整的 Unicode 编码）")
        self.field = field


def _storable(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


async def refuse_unstorable_text(request: Request) -> None:
    for name, value in request.path_params.items():
        if isinstance(value, str) and not _storable(value):
            raise UnstorableText(name)
    for name, value in request.query_params.multi_items():
        if not _storable(value):
            raise UnstorableText(name)
    if not request.headers.get("content-type", "").startswith("application/json"):
        return
    try:
        document = await request.json()
    except (ValueError, UnicodeDecodeError):
        return  # not JSON: validation answers that
    if not _all_storable(document):
        raise UnstorableText("body")


def _all_storable(document: Any) -> bool:
    pending = [document]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            if not _storable(value):
                return False
        elif isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return True
