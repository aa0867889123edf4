"""Contact import on both databases: good rows in, bad rows reported, re-import a no-op."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import Engine, func, select

from echelon.audience.consent import grant_consent, revoke_consent
from echelon.audience.contacts import count_contacts, export_contacts, get_contact
from echelon.audience.importing import ContactImportOptions, import_contacts
from echelon.db.tables import consents, contact_list_members, contacts
from echelon.errors import InvalidInput
from echelon.workspaces.service import Workspace, create_workspace

NOW = datetime(2026, 11, 11, 12, 0, tzinfo=UTC)


def write_csv(path: Path, rows: list[list[str]], encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


SHOP = [
    ["手机号", "姓名", "性别", "生日", "标签", "会员等级"],
    ["13800138000", "张三", "男", "1990-05-17", "VIP|母婴", "金卡"],
    ["+86 139-0013-9000", "李四", "女", "1985/3/2", "", "银卡"],
    ["12345", "坏号码", "", "", "", ""],
    ["１３７００１３７０００", "王五", "", "", "新客", ""],
    ["13600136000", "赵六", "X", "", "", ""],
    ["13800138000", "张三丰", "男", "1990-05-17", "老客", "金卡"],
]


def run(engine: Engine, ws: Workspace, path: Path, **options: object) -> dict[str, object]:
    report = import_contacts(
        engine,
        workspace=ws,
        path=path,
        options=ContactImportOptions(**options),
        now=NOW,  # type: ignore[arg-type]
    )
    return report.to_json()


def test_good_rows_go_in_and_bad_rows_are_reported(
    engine: Engine, workspace: Workspace, tmp_path: Path
) -> None:
    report = run(engine, workspace, write_csv(tmp_path / "shop.csv", SHOP))
    assert report["rows"] == 6
    assert (report["imported"], report["rejected"], report["duplicates"]) == (3, 2, 1)
    with Path(str(report["rejects_file"])).open(encoding="utf-8-sig") as handle:
        rejects = list(csv.reader(handle))
    assert rejects[0][:2] == ["行号", "原因"]
    assert [r[0] for r in rejects[1:]] == ["4", "6"]
    assert "位数太少" in rejects[1][1] and "性别" in rejects[2][1]
    zhang = get_contact(engine, workspace_id=workspace.id, phone="13800138000")
    assert zhang.name == "张三"  # the first row of a number wins; later ones are duplicates
    assert zhang.tags == ["VIP", "母婴"]
    assert zhang.attributes == {"会员等级": "金卡"}
    assert (zhang.carrier, zhang.province, zhang.city) == ("china_mobile", "北京市", "北京市")
    assert zhang.consents == []


def test_reimporting_the_same_file_changes_nothing(
    engine: Engine, workspace: Workspace, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "shop.csv", SHOP)
    run(engine, workspace, path, consent_source="checkout_checkbox")
    with engine.connect() as conn:
        before = conn.execute(select(contacts).order_by(contacts.c.id)).all()
    again = run(engine, workspace, path, consent_source="checkout_checkbox")
    assert (again["imported"], again["updated"], again["unchanged"]) == (0, 0, 3)
    assert (again["consent_granted"], again["tags_added"]) == (0, 0)
    with engine.connect() as conn:
        assert conn.execute(select(contacts).order_by(contacts.c.id)).all() == before
        assert conn.execute(select(func.count()).select_from(consents)).scalar_one() == 3


def test_a_changed_row_updates_only_what_it_says(
    engine: Engine, workspace: Workspace, tmp_path: Path
) -> None:
    run(engine, workspace, write_csv(tmp_path / "a.csv", SHOP))
    changed = [["手机号", "会员等级", "城市"], ["13800138000", "钻石卡", "深圳"]]
    report = run(engine, workspace, write_csv(tmp_path / "b.csv", changed))
    assert (report["imported"], report["updated"]) == (0, 1)
    zhang = get_contact(engine, workspace_id=workspace.id, phone="13800138000")
    assert zhang.name == "张三"
    assert zhang.birthday is not None
    assert zhang.attributes == {"会员等级": "钻石卡"}
    assert zhang.city == "深圳"


def test_marketing_consent_needs_a_named_source(
    engine: Engine, workspace: Workspace, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "c.csv",
        [
            ["手机号", "营销同意", "同意时间"],
            ["13800138000", "是", "2026-01-02 10:00"],
            ["13900139000", "否", ""],
        ],
    )
    with pytest.raises(InvalidInput, match="consent-source"):
        run(engine, workspace, path)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(contacts)).scalar_one() == 0
    report = run(engine, workspace, path, consent_source="web_form", consent_proof="form-7")
    assert report["consent_granted"] == 1
    [record] = get_contact(engine, workspace_id=workspace.id, phone="13800138000").consents
    assert (record.source, record.proof) == ("web_form", "form-7")
    # Written in the workspace's zone (Asia/Shanghai), stored in UTC.
    assert record.granted_at == datetime(2026, 1, 2, 2, 0, tzinfo=UTC)
    assert get_contact(engine, workspace_id=workspace.id, phone="13900139000").consents == []


def test_a_revoked_consent_is_not_revived_by_an_old_list(
    engine: Engine, workspace: Workspace, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "d.csv", [["手机号"], ["13800138000"], ["13900139000"]])
    run(engine, workspace, path, consent_source="store")
    assert revoke_consent(
        engine,
        workspace_id=workspace.id,
        phone="13800138000",
        purpose="marketing",
        source="customer_request",
        now=NOW + timedelta(days=1),
    )
    report = run(engine, workspace, path, consent_source="store")
    assert (report["consent_granted"], report["consent_withheld"]) == (0, 1)
    assert count_contacts(engine, workspace_id=workspace.id)["marketing_consent"] == 1
    assert grant_consent(
        engine,
        workspace_id=workspace.id,
        phone="13800138000",
        purpose="marketing",
        source="web_form",
        proof=None,
        now=NOW + timedelta(days=2),
    )
    assert count_contacts(engine, workspace_id=workspace.id)["marketing_consent"] == 2


def test_gbk_and_bom_files_and_chinese_headers(
    engine: Engine, workspace: Workspace, tmp_path: Path
) -> None:
    rows = [["联系电话", "客户姓名", "省份"], ["13800138000", "张三", "广东"]]
    run(engine, workspace, write_csv(tmp_path / "gbk.csv", rows, encoding="gbk"))
    rows[1][1] = "张叁"
    run(engine, workspace, write_csv(tmp_path / "bom.csv", rows, encoding="utf-8-sig"))
    zhang = get_contact(engine, workspace_id=workspace.id, phone="13800138000")
    assert (zhang.name, zhang.province) == ("张叁", "广东省")


def test_xlsx_with_numbers_and_dates(engine: Engine, workspace: Workspace, tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["手机", "姓名", "生日", "积分"])
    sheet.append([13800138000, "张三", datetime(1990, 5, 17), 1200])
    sheet.append([13900139000.0, "李四", None, None])
    sheet.append(["abc", "坏", None, None])
    path = tmp_path / "members.xlsx"
    book.save(path)
    report = run(engine, workspace, path)
    assert (report["imported"], report["rejected"]) == (2, 1)
    zhang = get_contact(engine, workspace_id=workspace.id, phone="+8613800138000")
    assert str(zhang.birthday) == "1990-05-17" and zhang.attributes == {"积分": 1200}


def test_column_mapping_by_option_and_a_list(
    engine: Engine, workspace: Workspace, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "e.csv", [["会员号码", "x"], ["13800138000", "1"]])
    with pytest.raises(InvalidInput, match="手机号"):
        run(engine, workspace, path)
    report = run(engine, workspace, path, columns={"会员号码": "phone"}, list_name="双11名单")
    assert report["imported"] == 1 and report["list_members_added"] == 1
    with engine.connect() as conn:
        assert (
            conn.execute(select(func.count()).select_from(contact_list_members)).scalar_one() == 1
        )


def test_a_failure_leaves_nothing_half_written(
    engine: Engine, workspace: Workspace, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "f.csv", SHOP)
    with pytest.raises(ZeroDivisionError):
        import_contacts(
            engine,
            workspace=workspace,
            path=path,
            options=ContactImportOptions(batch_size=2),
            now=NOW,
            progress=lambda done, total: 1 // 0 if done else None,
        )
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(contacts)).scalar_one() == 0
    assert not (tmp_path / "f.rejects.csv").exists()


def test_workspaces_do_not_see_each_other(
    engine: Engine, workspace: Workspace, tmp_path: Path
) -> None:
    other, _ = create_workspace(engine, slug="other", name="另一家")
    run(engine, workspace, write_csv(tmp_path / "g.csv", SHOP))
    assert count_contacts(engine, workspace_id=other.id)["total"] == 0
    run(engine, other, write_csv(tmp_path / "h.csv", SHOP[:2]))
    assert count_contacts(engine, workspace_id=other.id)["total"] == 1
    assert count_contacts(engine, workspace_id=workspace.id)["total"] == 3


def test_export_reads_back(engine: Engine, workspace: Workspace, tmp_path: Path) -> None:
    run(engine, workspace, write_csv(tmp_path / "i.csv", SHOP), consent_source="store")
    out = tmp_path / "out.csv"
    assert export_contacts(engine, workspace_id=workspace.id, path=out) == 3
    other, _ = create_workspace(engine, slug="copy", name="副本")
    report = run(engine, other, out, consent_source="export")
    assert (report["imported"], report["rejected"], report["consent_granted"]) == (3, 0, 3)
    copy = get_contact(engine, workspace_id=other.id, phone="13800138000")
    assert copy.tags == ["VIP", "母婴"] and copy.carrier == "china_mobile"


def test_duplicates_across_batches_keep_the_first_row_and_reimport_is_a_no_op(
    engine: Engine, workspace: Workspace, tmp_path: Path
) -> None:
    rows = [
        ["手机号", "姓名"],
        ["13800138000", "甲"],
        ["13900139000", "乙"],
        ["13700137000", "丙"],
        ["13800138000", "丁"],
        ["13900139000", "戊"],
    ]
    path = write_csv(tmp_path / "dupes.csv", rows)
    first = run(engine, workspace, path, batch_size=2)
    assert (first["imported"], first["duplicates"]) == (3, 2)
    again = run(engine, workspace, path, batch_size=2)
    assert (again["imported"], again["updated"], again["unchanged"]) == (0, 0, 3)
    assert get_contact(engine, workspace_id=workspace.id, phone="13800138000").name == "甲"
