"""The built-in journeys, ready to copy and edit: each a definition and the zh-CN
templates it sends (created for review when a journey is copied from it).

Links point at ``shop.example.com``: edit the templates to your shop's addresses
before approving them. ``{{ coupon }}`` is a per-message coupon code and
``{{ link('…') }}`` a per-recipient short link (clicks feed the ``clicked`` branch
and the stats).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from echelon.content.compose import MessageKind
from echelon.errors import NotFound


@dataclass(frozen=True, slots=True)
class BuiltinTemplate:
    name: str
    kind: MessageKind
    body: str


@dataclass(frozen=True, slots=True)
class Builtin:
    key: str
    name: str
    description: str
    definition: dict[str, Any]
    templates: tuple[BuiltinTemplate, ...]


class BuiltinNotFound(NotFound):
    code = "builtin_journey_not_found"

    def __init__(self, key: str) -> None:
        super().__init__(f"内置旅程「{key}」不存在，可用：{'、'.join(BUILTINS)}")


def _marketing(name: str, body: str) -> BuiltinTemplate:
    return BuiltinTemplate(name, "marketing", body)


_WELCOME = Builtin(
    key="welcome",
    name="欢迎新会员",
    description="注册后立即发送欢迎语和新人券；第 3 天上午 10 点，尚未下单的会员收到购物指南。",
    definition={
        "trigger": {"type": "event", "event": "signup"},
        "reentry": {"policy": "once"},
        "steps": [
            {"id": "welcome", "type": "send", "template": "欢迎-新人礼"},
            {"id": "day3", "type": "wait", "days": 3, "at": "10:00"},
            {
                "id": "bought",
                "type": "branch",
                "if": {"kind": "converted", "event": "purchase"},
                "then": "done",
                "else": "tips",
            },
            {"id": "tips", "type": "send", "template": "欢迎-第3天指南"},
            {"id": "done", "type": "exit"},
        ],
    },
    templates=(
        _marketing(
            "欢迎-新人礼",
            "{{ name | default('亲') }}，欢迎加入会员！新人专享券{{ coupon }}已放入您的账户，"
            "满99元减20元，7天内有效。看看新品：{{ link('https://shop.example.com/new') }}",
        ),
        _marketing(
            "欢迎-第3天指南",
            "{{ name | default('亲') }}，入会第3天，送上购物小贴士：积分可抵现，生日当月双倍积分。"
            "新人券仍在有效期内，别忘了使用：{{ link('https://shop.example.com/guide') }}",
        ),
    ),
)

_CART = Builtin(
    key="cart_abandonment",
    name="购物车挽回",
    description="加购 24 小时后仍未下单：提醒；再过 48 小时仍未下单：送专属券。下单即退出。",
    definition={
        "trigger": {"type": "event", "event": "cart_add"},
        "reentry": {"policy": "once_per", "days": 7},
        "goal": {"event": "purchase"},
        "steps": [
            {"id": "wait24h", "type": "wait", "hours": 24, "window": True},
            {"id": "reminder", "type": "send", "template": "挽回-提醒"},
            {"id": "wait48h", "type": "wait", "hours": 48, "window": True},
            {"id": "offer", "type": "send", "template": "挽回-专属券"},
        ],
    },
    templates=(
        _marketing(
            "挽回-提醒",
            "{{ name | default('亲') }}，您购物车里的{{ category | default('心仪好物') }}还在等您，"
            "库存有限，点击完成购买：{{ link('https://shop.example.com/cart') }}",
        ),
        _marketing(
            "挽回-专属券",
            "{{ name | default('亲') }}，为您保留的{{ category | default('商品') }}送上专属券"
            "{{ coupon }}，满100元减15元，48小时内有效："
            "{{ link('https://shop.example.com/cart') }}",
        ),
    ),
)

_NUDGE = Builtin(
    key="purchase_nudge",
    name="复购提醒",
    description="购买 30 天后上午 10 点提醒回购；期间再次购买即退出（并重新开始计时）。",
    definition={
        "trigger": {"type": "event", "event": "purchase"},
        "reentry": {"policy": "every_time"},
        "goal": {"event": "purchase"},
        "steps": [
            {"id": "wait30d", "type": "wait", "days": 30, "at": "10:00"},
            {"id": "nudge", "type": "send", "template": "复购-提醒"},
        ],
    },
    templates=(
        _marketing(
            "复购-提醒",
            "{{ name | default('亲') }}，感谢您上次的购买！您常买的{{ category | default('商品') }}"
            "可能快用完了，现在回购享会员价：{{ link('https://shop.example.com/reorder') }}",
        ),
    ),
)

_RETENTION = Builtin(
    key="retention",
    name="会员关怀",
    description=(
        "收到积分即将到期事件（points_expiring，属性 points、expires_on）时提醒；"
        "3 天内未兑换（points_redeemed）再发会员权益提醒。"
    ),
    definition={
        "trigger": {"type": "event", "event": "points_expiring"},
        "reentry": {"policy": "once_per", "days": 30},
        "steps": [
            {"id": "points", "type": "send", "template": "关怀-积分到期"},
            {
                "id": "redeemed",
                "type": "wait_for",
                "event": "points_redeemed",
                "days": 3,
                "then": "done",
                "else": "benefits",
            },
            {"id": "benefits", "type": "send", "template": "关怀-会员权益"},
            {"id": "done", "type": "exit"},
        ],
    },
    templates=(
        _marketing(
            "关怀-积分到期",
            "{{ name | default('亲') }}，您有{{ points | default('部分') }}积分将于"
            "{{ expires_on | default('月底') }}到期，可抵现或兑换礼品："
            "{{ link('https://shop.example.com/points') }}",
        ),
        _marketing(
            "关怀-会员权益",
            "{{ name | default('亲') }}，本月会员权益提醒：全场包邮、生日当月双倍积分、专属客服。"
            "积分兑换入口：{{ link('https://shop.example.com/member') }}",
        ),
    ),
)

_WIN_BACK = Builtin(
    key="win_back",
    name="沉睡唤醒",
    description=(
        "90 天未购买：发送「我们想念您」回归券；3 或 5 天后（随机各半，测试哪个间隔更好）"
        "对仍未下单的会员再送一张不同的券。下单即退出。"
    ),
    definition={
        "trigger": {"type": "inactivity", "days": 90, "events": ["purchase"], "at": "10:00"},
        "reentry": {"policy": "once_per", "days": 180},
        "goal": {"event": "purchase"},
        "steps": [
            {"id": "miss_you", "type": "send", "template": "唤醒-我们想念您"},
            {
                "id": "delay",
                "type": "split",
                "paths": [{"percent": 50, "next": "wait3d"}, {"percent": 50, "next": "wait5d"}],
            },
            {"id": "wait3d", "type": "wait", "days": 3, "at": "10:00", "next": "second"},
            {"id": "wait5d", "type": "wait", "days": 5, "at": "10:00"},
            {"id": "second", "type": "send", "template": "唤醒-再次邀请"},
        ],
    },
    templates=(
        _marketing(
            "唤醒-我们想念您",
            "{{ name | default('亲') }}，好久不见，我们想念您！送您回归礼券{{ coupon }}，"
            "满150元减30元，7天内有效：{{ link('https://shop.example.com/back') }}",
        ),
        _marketing(
            "唤醒-再次邀请",
            "{{ name | default('亲') }}，回归礼升级：全场8折券{{ coupon }}已到账，3天内有效，"
            "期待您回来看看：{{ link('https://shop.example.com/back') }}",
        ),
    ),
)

_BIRTHDAY = Builtin(
    key="birthday",
    name="生日关怀",
    description="会员生日当天上午 9:30 送上祝福和生日礼券（农历生日按农历日期）。",
    definition={
        "trigger": {"type": "date", "field": "birthday", "at": "09:30"},
        "reentry": {"policy": "every_time"},
        "steps": [{"id": "greeting", "type": "send", "template": "生日-祝福"}],
    },
    templates=(
        _marketing(
            "生日-祝福",
            "{{ name | default('亲') }}，生日快乐！送您生日礼券{{ coupon }}，"
            "生日当月全场满99元减30元，祝您天天开心！",
        ),
    ),
)

_SHIPPED = Builtin(
    key="service_notice",
    name="发货通知",
    description="订单发货（shipment 事件，属性 express、tracking_no）后立即发送通知短信。",
    definition={
        "trigger": {"type": "event", "event": "shipment"},
        "reentry": {"policy": "every_time"},
        "steps": [{"id": "shipped", "type": "send", "template": "通知-已发货"}],
    },
    templates=(
        BuiltinTemplate(
            "通知-已发货",
            "service",
            "您的订单{{ order_id }}已发货，{{ express | default('快递') }}运单号"
            "{{ tracking_no | default('可在订单详情查看') }}，请留意查收。",
        ),
    ),
)

BUILTINS: dict[str, Builtin] = {
    b.key: b for b in (_WELCOME, _CART, _NUDGE, _RETENTION, _WIN_BACK, _BIRTHDAY, _SHIPPED)
}


def get_builtin(key: str) -> Builtin:
    found = BUILTINS.get(key.strip())
    if found is None:
        by_name = {b.name: b for b in BUILTINS.values()}
        found = by_name.get(key.strip())
    if found is None:
        raise BuiltinNotFound(key)
    return found
