"""Reading files: encodings, delimiters, row numbers, header mapping."""

from __future__ import annotations

from pathlib import Path

import pytest

from echelon.audience.importing import CONTACT_COLUMNS
from echelon.audience.tabular import UnreadableFile, detect_encoding, map_columns, open_sheet
from echelon.errors import InvalidInput


@pytest.mark.parametrize(
    ("encoding", "detected"), [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("gbk", "gb18030")]
)
def test_encodings_are_detected(tmp_path: Path, encoding: str, detected: str) -> None:
    path = tmp_path / "x.csv"
    path.write_text("手机号,姓名\n13800138000,张三\n", encoding=encoding)
    assert detect_encoding(path) == detected
    sheet = open_sheet(path)
    assert sheet.headers == ["手机号", "姓名"]
    assert list(sheet.rows) == [(2, ["13800138000", "张三"])]


def test_gbk_late_in_a_large_file_is_still_detected(tmp_path: Path) -> None:
    path = tmp_path / "late.csv"
    ascii_part = "phone,name\n" + "13800138000,a\n" * 200_000
    path.write_bytes(ascii_part.encode() + "13900139000,李四\n".encode("gbk"))
    assert detect_encoding(path) == "gb18030"


def test_row_numbers_skip_blank_lines_but_count_them(tmp_path: Path) -> None:
    path = tmp_path / "t.tsv"
    path.write_text("phone\tname\n1\ta\n\n2\tb\n", encoding="utf-8")
    assert [n for n, _ in open_sheet(path).rows] == [2, 4]


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFile, match="找不到"):
        open_sheet(tmp_path / "none.csv")
    (tmp_path / "a.pdf").write_bytes(b"%PDF")
    with pytest.raises(UnreadableFile, match="不支持"):
        open_sheet(tmp_path / "a.pdf")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(UnreadableFile, match="空"):
        open_sheet(tmp_path / "empty.csv")
    (tmp_path / "bad.xlsx").write_bytes(b"not a zip")
    with pytest.raises(UnreadableFile, match="Excel"):
        open_sheet(tmp_path / "bad.xlsx")


def test_headers_map_by_alias_and_by_option() -> None:
    fields, others = map_columns(["手机号码", "Name", "积分", "生日"], CONTACT_COLUMNS, {})
    assert fields == {"phone": 0, "name": 1, "birthday": 3}
    assert others == {"积分": 2}
    fields, others = map_columns(["会员号", "积分"], CONTACT_COLUMNS, {"会员号": "phone"})
    assert fields == {"phone": 0} and others == {"积分": 1}
    with pytest.raises(InvalidInput, match="未知字段"):
        map_columns(["a"], CONTACT_COLUMNS, {"a": "nonsense"})
    with pytest.raises(InvalidInput, match="没有列"):
        map_columns(["a"], CONTACT_COLUMNS, {"b": "phone"})
