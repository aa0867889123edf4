"""Options shared by several commands, declared once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from echelon.errors import InvalidInput

JsonFlag = Annotated[bool, typer.Option("--json", help="输出一个 JSON 文档（供脚本使用）")]
MapOption = Annotated[
    list[str] | None,
    typer.Option("--map", help="列映射：列名=字段，例如 --map 会员手机=phone；可重复"),
]
RejectsOption = Annotated[
    Path | None, typer.Option(help="被拒行写入的文件（默认：输入文件旁的 *.rejects.csv）")
]
BatchOption = Annotated[int, typer.Option(help="每批写入的行数", min=100)]


def parse_mapping(pairs: list[str] | None) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for pair in pairs or []:
        header, sep, field = pair.partition("=")
        if not sep or not header.strip() or not field.strip():
            raise InvalidInput(f"--map {pair!r} 应写作 列名=字段")
        mapping[header.strip()] = field.strip()
    return mapping
