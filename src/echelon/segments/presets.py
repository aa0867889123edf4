"""Built-in segments from practice. A preset is never used in place: creating a segment
from one copies its definition (with the parameters given), and the copy is the
workspace's own to edit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from echelon.errors import InvalidInput
from echelon.segments.models import Node, parse_definition


class UnknownPreset(InvalidInput):
    code = "unknown_preset"


@dataclass(frozen=True)
class Param:
    default: Decimal
    label: str


@dataclass(frozen=True)
class Preset:
    key: str
    name: str
    description: str
    params: Mapping[str, Param]
    build: Callable[[Mapping[str, Decimal]], dict[str, Any]]

    def definition(self, given: Mapping[str, str] | None = None) -> Node:
        """The preset's definition with ``given`` parameters (text, as typed)."""
        values = {name: param.default for name, param in self.params.items()}
        for name, text in (given or {}).items():
            if name not in self.params:
                known = "、".join(self.params) or "（无参数）"
                raise InvalidInput(f"预设「{self.name}」没有参数 {name}，可用：{known}")
            try:
                values[name] = Decimal(text)
            except InvalidOperation as exc:
                raise InvalidInput(f"参数 {name}={text!r} 应为数字") from exc
        return parse_definition(self.build(values))


def _whole(value: Decimal) -> int | Decimal:
    # A fraction is passed on as it is, for validation to name the parameter's field.
    return int(value) if value == value.to_integral_value() else value


PRESETS: dict[str, Preset] = {
    preset.key: preset
    for preset in (
        Preset(
            "dormant",
            "沉睡客户",
            "买过，但最近 days 天没有再购买",
            {"days": Param(Decimal(90), "多少天未购买")},
            lambda p: {"kind": "purchases", "measure": "days_since_last", "min": _whole(p["days"])},
        ),
        Preset(
            "inactive_6m",
            "半年未活跃",
            "最近 days 天没有任何行为事件，且不是这段时间内新加入的联系人",
            {"days": Param(Decimal(180), "多少天无行为")},
            lambda p: {
                "and": [
                    {"not": {"kind": "event", "event": "*", "days": _whole(p["days"])}},
                    {"not": {"kind": "new_contact", "days": _whole(p["days"])}},
                ]
            },
        ),
        Preset(
            "active",
            "活跃会员",
            "最近 days 天购买至少 times 次",
            {"days": Param(Decimal(30), "统计天数"), "times": Param(Decimal(2), "最少购买次数")},
            lambda p: {
                "kind": "purchases",
                "measure": "count",
                "days": _whole(p["days"]),
                "min": _whole(p["times"]),
            },
        ),
        Preset(
            "high_value",
            "高价值客户",
            "最近 days 天累计消费至少 threshold 元",
            {
                "threshold": Param(Decimal(2000), "消费门槛（元）"),
                "days": Param(Decimal(365), "统计天数"),
            },
            lambda p: {
                "kind": "purchases",
                "measure": "total",
                "days": _whole(p["days"]),
                "min": str(p["threshold"]),
            },
        ),
        Preset(
            "cart_abandon",
            "加购未付款",
            "最近 hours 小时内加购，之后没有购买",
            {"hours": Param(Decimal(24), "加购在多少小时内")},
            lambda p: {
                "kind": "event_not_followed",
                "event": "cart_add",
                "hours": _whole(p["hours"]),
                "then_not": "purchase",
            },
        ),
        Preset(
            "price_sensitive",
            "价格敏感",
            "最近 days 天至少买过 2 次，且用券订单占比至少 share",
            {
                "share": Param(Decimal("0.5"), "用券订单占比"),
                "days": Param(Decimal(365), "统计天数"),
            },
            lambda p: {
                "and": [
                    {"kind": "purchases", "measure": "count", "days": _whole(p["days"]), "min": 2},
                    {
                        "kind": "purchases",
                        "measure": "coupon_share",
                        "days": _whole(p["days"]),
                        "min": p["share"],
                    },
                ]
            },
        ),
        Preset(
            "new_signups",
            "新注册用户",
            "最近 days 天内注册（signup 事件），或新加入为联系人",
            {"days": Param(Decimal(7), "多少天内")},
            lambda p: {
                "or": [
                    {"kind": "event", "event": "signup", "days": _whole(p["days"])},
                    {"kind": "new_contact", "days": _whole(p["days"])},
                ]
            },
        ),
    )
}


def get_preset(key: str) -> Preset:
    found = PRESETS.get(key) or next((p for p in PRESETS.values() if p.name == key), None)
    if found is None:
        choices = "，".join(f"{p.key}（{p.name}）" for p in PRESETS.values())
        raise UnknownPreset(f"预设「{key}」不存在，可用：{choices}")
    return found
