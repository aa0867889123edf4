"""Reading spreadsheets people export: CSV (UTF-8, UTF-8 with BOM or GBK) and XLSX.

Yields each data row with its row number as a spreadsheet shows it (the header is
row 1), so a rejected row can be found again in the original file.
"""

from __future__ import annotations

import codecs
import csv
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from echelon.audience.fields import Cell
from echelon.errors import InvalidInput

_PROBE_CHUNK = 1 << 20


class UnreadableFile(InvalidInput):
    code = "unreadable_file"


@dataclass(frozen=True, slots=True)
class Sheet:
    """A file's header and an iterator over its data rows as (row number, cells)."""

    headers: list[str]
    rows: Iterator[tuple[int, list[Cell]]]
    encoding: str | None
    estimated_rows: int


def open_sheet(path: Path) -> Sheet:
    if not path.is_file():
        raise UnreadableFile(f"找不到文件 {path}")
    suffix = path.suffix.lower()
    if suffix in {".xlsx", ".xlsm"}:
        return _open_xlsx(path)
    if suffix in {".csv", ".txt", ".tsv"}:
        return _open_csv(path)
    raise UnreadableFile(f"不支持的文件类型 {suffix or '(无扩展名)'}：请用 CSV 或 XLSX")


def detect_encoding(path: Path) -> str:
    """utf-8-sig for a BOM, utf-8 if the whole file decodes as UTF-8, else GB18030 (GBK)."""
    with path.open("rb") as handle:
        head = handle.read(3)
        if head == codecs.BOM_UTF8:
            return "utf-8-sig"
        handle.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            while chunk := handle.read(_PROBE_CHUNK):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "gb18030"
    return "utf-8"


def _count_lines(path: Path) -> int:
    lines = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_PROBE_CHUNK):
            lines += chunk.count(b"\n")
    return lines


def _open_csv(path: Path) -> Sheet:
    encoding = detect_encoding(path)
    handle = path.open(encoding=encoding, newline="")
    try:
        sample = handle.read(64 * 1024)
        handle.seek(0)
        delimiter = "\t" if sample.count("\t") > sample.count(",") else ","
        reader = csv.reader(handle, delimiter=delimiter)
        headers = next(reader, None)
    except UnicodeDecodeError as exc:
        handle.close()
        raise UnreadableFile(f"{path.name} 的编码无法识别（支持 UTF-8 和 GBK）") from exc
    if not headers:
        handle.close()
        raise UnreadableFile(f"{path.name} 是空文件，第一行应为表头")

    def rows() -> Iterator[tuple[int, list[Cell]]]:
        with handle:
            for values in reader:
                if any(value.strip() for value in values):
                    yield reader.line_num, list(values)

    return Sheet(
        [_clean_header(h) for h in headers], rows(), encoding, max(_count_lines(path) - 1, 0)
    )


def _open_xlsx(path: Path) -> Sheet:
    import openpyxl  # imported here: loading it costs time every CSV import would pay

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged file
        raise UnreadableFile(f"{path.name} 不是有效的 Excel 文件：{exc}") from exc
    sheet: Any = book.worksheets[0]
    values = sheet.iter_rows(values_only=True)
    first = next(values, None)
    if first is None:
        book.close()
        raise UnreadableFile(f"{path.name} 是空表，第一行应为表头")
    headers = [_clean_header("" if v is None else str(v)) for v in first]

    def rows() -> Iterator[tuple[int, list[Cell]]]:
        try:
            for number, row in enumerate(values, start=2):
                if any(v is not None and str(v).strip() for v in row):
                    yield number, list(row)
        finally:
            book.close()

    return Sheet(headers, rows(), None, max((sheet.max_row or 1) - 1, 0))


def _clean_header(header: str) -> str:
    return unicodedata.normalize("NFKC", header).strip().lstrip("\ufeff")


def map_columns(
    headers: list[str], aliases: Mapping[str, tuple[str, ...]], overrides: Mapping[str, str]
) -> tuple[dict[str, int], dict[str, int]]:
    """(field → column index, other header → column index) for a file's header row.

    ``overrides`` maps a header to a field name and wins over the aliases; headers that
    name no field are returned separately (they become custom attributes).
    """
    known: dict[str, str] = {}
    for name_of_field, names in aliases.items():
        for name in (name_of_field, *names):
            known[_fold(name)] = name_of_field
    for header, wanted in overrides.items():
        if wanted not in aliases:
            raise InvalidInput(f"--map {header}={wanted}：未知字段，可用 {', '.join(aliases)}")
        if header not in headers:
            raise InvalidInput(f"--map {header}={wanted}：文件中没有列 {header!r}")
    fields: dict[str, int] = {}
    others: dict[str, int] = {}
    for index, header in enumerate(headers):
        field: str | None = overrides.get(header) or known.get(_fold(header))
        if field is not None and field not in fields:
            fields[field] = index
        elif header:
            others[header] = index
    return fields, others


def _fold(name: str) -> str:
    return name.lower().replace(" ", "").replace("_", "").replace("-", "")
