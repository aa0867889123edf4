"""Reading profile and event values as people write them in spreadsheets (pure rules).

Each parser takes what a cell holds (text, or a number/date from Excel) and returns
the typed value, ``None`` for an empty cell, or raises ``BadValue`` naming the field.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, date, datetime, time, tzinfo
from decimal import Decimal, InvalidOperation

from echelon.errors import InvalidInput

Cell = str | int | float | date | datetime | None

_TAG_SPLIT = re.compile(r"[,，;；|、\s]+")
_EVENT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y%m%d", "%Y年%m月%d日")
_DATETIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y-%m-%d",
    "%Y/%m/%d",
)
_TRUE = {"1", "y", "yes", "true", "t", "是", "同意", "已同意", "有", "√", "✓", "农历", "阴历"}
_FALSE = {"0", "n", "no", "false", "f", "否", "不同意", "未同意", "无", "×", "✗", "公历", "阳历"}
_GENDERS = {
    "男": "male",
    "m": "male",
    "male": "male",
    "先生": "male",
    "女": "female",
    "f": "female",
    "female": "female",
    "女士": "female",
}
_UNKNOWN_GENDER = {"未知", "保密", "unknown", "u", "-"}

BUILTIN_EVENT_TYPES = ("signup", "purchase", "cart_add", "checkout", "shipment")
_EVENT_ALIASES = {
    "注册": "signup",
    "购买": "purchase",
    "下单": "purchase",
    "支付": "purchase",
    "加购": "cart_add",
    "加入购物车": "cart_add",
    "结算": "checkout",
    "发货": "shipment",
}
MAX_TAG_LENGTH = 64
MAX_AMOUNT_YUAN = Decimal(100_000_000)


class BadValue(InvalidInput):
    code = "bad_value"

    def __init__(self, field: str, value: object, expected: str) -> None:
        super().__init__(f"{field} 的值 {value!r} 无法识别：{expected}")
        self.field = field


def _text(cell: Cell) -> str | None:
    if cell is None:
        return None
    text = str(cell)
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    return text.strip() or None


def parse_text(cell: Cell, *, field: str, max_length: int) -> str | None:
    text = _text(cell)
    if text is not None and len(text) > max_length:
        raise BadValue(field, text, f"最多 {max_length} 个字符")
    return text


def parse_gender(cell: Cell) -> str | None:
    text = _text(cell)
    if text is None or text.lower() in _UNKNOWN_GENDER:
        return None
    gender = _GENDERS.get(text.lower())
    if gender is None:
        raise BadValue("性别", text, "应为 男/女")
    return gender


def parse_bool(cell: Cell, *, field: str) -> bool | None:
    if isinstance(cell, bool):
        return cell
    text = _text(cell)
    if text is None:
        return None
    folded = text.lower()
    if folded in _TRUE:
        return True
    if folded in _FALSE:
        return False
    raise BadValue(field, text, "应为 是/否")


def parse_date(cell: Cell, *, field: str) -> date | None:
    if isinstance(cell, datetime):
        return cell.date()
    if isinstance(cell, date):
        return cell
    text = _text(cell)
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()  # noqa: DTZ007 - a date has no zone
        except ValueError:
            continue
    raise BadValue(field, text, "日期应写作 1990-05-17")


def parse_datetime(cell: Cell, *, field: str, zone: tzinfo) -> datetime | None:
    """An aware UTC datetime; a time written without a zone is read in ``zone``."""
    if isinstance(cell, datetime):
        moment = cell
    elif isinstance(cell, date):
        moment = datetime.combine(cell, time())
    else:
        text = _text(cell)
        if text is None:
            return None
        moment = _parse_datetime_text(text, field)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


def _parse_datetime_text(text: str, field: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    for fmt in _DATETIME_FORMATS:
        try:
            return datetime.strptime(text, fmt)  # noqa: DTZ007 - zone applied by the caller
        except ValueError:
            continue
    raise BadValue(field, text, "时间应写作 2026-11-11 20:00:00")


def parse_amount_fen(cell: Cell, *, field: str) -> int | None:
    """Money in integer fen from 199, 199.5, ¥1,299.00 or ￥88; never through float."""
    if cell is None:
        return None
    text = _text(repr(cell) if isinstance(cell, float) else cell)
    if text is None:
        return None
    cleaned = text.replace(",", "").replace("¥", "").replace("￥", "").replace("元", "").strip()
    try:
        yuan = Decimal(cleaned)
    except InvalidOperation as exc:
        raise BadValue(field, text, "金额应为数字，例如 199.00") from exc
    if not yuan.is_finite() or yuan < 0:
        raise BadValue(field, text, "金额不能为负数")
    if yuan > MAX_AMOUNT_YUAN:
        raise BadValue(field, text, f"金额不能超过 {MAX_AMOUNT_YUAN} 元")
    fen = yuan * 100
    if fen != fen.to_integral_value():
        raise BadValue(field, text, "金额最多两位小数")
    return int(fen)


def parse_tags(cell: Cell) -> list[str]:
    text = _text(cell)
    if text is None:
        return []
    tags = [tag for tag in _TAG_SPLIT.split(text) if tag]
    for tag in tags:
        if len(tag) > MAX_TAG_LENGTH:
            raise BadValue("标签", tag, f"每个标签最多 {MAX_TAG_LENGTH} 个字符")
    return list(dict.fromkeys(tags))


def parse_event_type(cell: Cell) -> str:
    text = _text(cell)
    if text is None:
        raise BadValue("事件类型", cell, "不能为空")
    folded = _EVENT_ALIASES.get(text, text.lower())
    if not _EVENT_NAME.match(folded):
        raise BadValue(
            "事件类型",
            text,
            f"应为 {'/'.join(BUILTIN_EVENT_TYPES)} 或小写英文自定义名（如 app_open）",
        )
    return folded
