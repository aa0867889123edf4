"""Settings: channels and their health, quiet hours and caps, sending and reply
handling, signature / opt-out text / price plan, users and roles, API keys, webhooks
and the rate thresholds the dashboard judges by.

Workspace-wide settings (channels, compliance, sending, content, thresholds) change
only for a person holding ``channels:admin`` — the owner; everyone signed in may read
them. Users, keys and webhooks follow their own permissions.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import Response

from echelon.access.models import KEY_SCOPES, PERMISSIONS, Role
from echelon.access.service import create_key, create_user, list_keys, list_users, revoke_key
from echelon.analytics.models import RATE_METRICS
from echelon.analytics.reports import channel_health, get_thresholds, set_min_sample, set_threshold
from echelon.analytics.webhooks import (
    EVENTS,
    add_webhook,
    enqueue_test,
    list_deliveries,
    list_webhooks,
    remove_webhook,
)
from echelon.audience.phone import Carrier
from echelon.compliance.policy import load_settings, save_settings
from echelon.console.forms import parse_count
from echelon.console.i18n import Problem
from echelon.console.pages.dashboard import summarise_channels
from echelon.console.web import Console, Page
from echelon.content.compose import OPT_OUT_TEXTS
from echelon.content.plans import parse_peak, parse_price, parse_tiers
from echelon.dispatch.channel_admin import (
    add_channel,
    disable_channel,
    enable_channel,
    list_channels,
    smpp_config,
)
from echelon.dispatch.settings import AutoReply, load_dispatch_settings, save_dispatch_settings
from echelon.errors import EchelonError
from echelon.workspaces.service import get_settings, update_settings

ADMIN: Final = "channels:admin"
TABS: Final = (
    ("channels", ADMIN),
    ("sending", None),
    ("content", None),
    ("thresholds", None),
    ("users", "users:manage"),
    ("keys", "keys:manage"),
    ("webhooks", "webhooks:manage"),
)
_LIST = re.compile(r"[,，、\s]+")
POLICY_FIELDS: Final = (
    "marketing_max",
    "marketing_window_days",
    "marketing_min_gap_hours",
    "per_minute",
    "per_hour",
    "per_day",
    "duplicate_window_seconds",
)
DISPATCH_NUMBERS: Final = (
    "max_attempts",
    "failover_after",
    "retry_base_seconds",
    "retry_max_seconds",
    "auto_reply_cooldown_seconds",
    "invalid_after",
)


def auto_replies_text(replies: tuple[AutoReply, ...]) -> str:
    return "\n".join(f"{r.keyword}={r.reply}" for r in replies)


def parse_auto_replies(text: str) -> list[dict[str, str]]:
    """``keyword=reply`` lines (blank lines ignored)."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        keyword, sep, reply = line.partition("=")
        if not sep or not keyword.strip() or not reply.strip():
            raise Problem("settings.bad_auto_reply", line=number)
        found.append({"keyword": keyword.strip(), "reply": reply.strip()})
    return found


def percent_to_rate(text: str) -> float | None:
    """A threshold typed in percent (98.5) as a rate (0.985); empty → None."""
    text = text.strip().rstrip("%")
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise Problem("settings.bad_percent", text=text) from None
    if not value.is_finite() or not 0 <= value <= 100:
        raise Problem("settings.bad_percent", text=text)
    return float(value / 100)


def register(router: APIRouter, console: Console) -> None:
    @router.get("/settings")
    def settings(request: Request, tab: str = "", done: str = "") -> Response:
        page = console.page(request)
        return _page(console, request, page, tab, done=done)

    def answer(
        request: Request,
        page: Page,
        tab: str,
        change: Any,
        *,
        done: str = "saved",
    ) -> Response:
        """Run ``change``; on success back to the tab — showing the secret it returns,
        if any, this once — and on a refusal the tab again with the message."""
        try:
            result = change()
        except EchelonError as exc:
            return _page(
                console, request, page, tab, message=console.word(request, exc), status_code=422
            )
        if isinstance(result, str):
            return _page(console, request, page, tab, done=done, secret=result)
        return console.redirect(f"/settings?tab={tab}&done={done}")

    @router.post("/settings/channels/add")
    def channel_add(request: Request) -> Response:
        page = console.page(request, ADMIN)
        form = console.form_text(request)
        carriers = console.form(request).getlist("carriers")

        def change() -> None:
            name = form.get("name", "").strip()
            fields: dict[str, Any] = {
                "name": name,
                "host": form.get("host", "").strip(),
                "port": parse_count(form.get("port"), field=page.t("channel.port")),
                "system_id": form.get("system_id", ""),
                "password": form.get("password", ""),
            }
            tps = form.get("tps", "").strip()
            if tps:
                fields["tps"] = tps
            add_channel(
                console.engine,
                workspace_id=page.workspace_id,
                name=name,
                config=smpp_config(fields),
                carriers=[str(c) for c in carriers] or ["all"],
                weight=parse_count(form.get("weight"), field=page.t("channel.weight")) or 1,
                priority=parse_count(form.get("priority"), field=page.t("channel.priority")) or 0,
                binds=parse_count(form.get("binds"), field=page.t("channel.binds")) or 1,
                now=datetime.now(UTC),
            )

        return answer(request, page, "channels", change, done="channel_added")

    @router.post("/settings/channels/toggle")
    def channel_toggle(request: Request) -> Response:
        page = console.page(request, ADMIN)
        form = console.form_text(request)
        switch = enable_channel if form.get("enable") == "1" else disable_channel

        def change() -> None:
            switch(
                console.engine,
                workspace_id=page.workspace_id,
                name=form.get("name", ""),
                now=datetime.now(UTC),
            )

        return answer(request, page, "channels", change)

    @router.post("/settings/sending")
    def sending(request: Request) -> Response:
        page = console.page(request, ADMIN)
        form = console.form_text(request)

        def change() -> None:
            policy: dict[str, Any] = {
                "quiet_start": form.get("quiet_start", ""),
                "quiet_end": form.get("quiet_end", ""),
            }
            policy.update({name: form.get(name, "") for name in POLICY_FIELDS})
            dispatch: dict[str, Any] = {name: form.get(name, "") for name in DISPATCH_NUMBERS}
            dispatch["opt_out_keywords"] = [
                k for k in _LIST.split(form.get("opt_out_keywords", "")) if k
            ]
            dispatch["opt_out_confirmation"] = form.get("opt_out_confirmation", "").strip() or None
            dispatch["auto_replies"] = parse_auto_replies(form.get("auto_replies", ""))
            with console.engine.begin() as conn:
                save_settings(conn, page.workspace_id, policy)
                save_dispatch_settings(conn, page.workspace_id, dispatch)

        return answer(request, page, "sending", change)

    @router.post("/settings/content")
    def content(request: Request) -> Response:
        page = console.page(request, ADMIN)
        form = console.form_text(request)

        def change() -> None:
            plan = get_settings(console.engine, workspace_id=page.workspace_id).price_plan
            tiers_text = [s for s in _LIST.split(form.get("tiers", "")) if s]
            tiers, beyond = parse_tiers(tiers_text) if tiers_text else ((), None)
            plan = replace(plan, tiers=tiers, price_per_part=parse_price(form.get("price", "")))
            if beyond is not None:
                plan = replace(plan, price_per_part=beyond)
            peak = form.get("peak", "").strip()
            plan = replace(plan, peak=parse_peak(peak) if peak else None)
            update_settings(
                console.engine,
                workspace_id=page.workspace_id,
                signature=form.get("signature", "").strip() or None,
                opt_out_text=form.get("opt_out_text") or None,
                price_plan=plan,
            )

        return answer(request, page, "content", change)

    @router.post("/settings/thresholds")
    def thresholds(request: Request) -> Response:
        page = console.page(request, ADMIN)
        form = console.form_text(request)

        def change() -> None:
            now = datetime.now(UTC)
            for metric in RATE_METRICS:
                set_threshold(
                    console.engine,
                    workspace_id=page.workspace_id,
                    metric=metric,
                    passing=percent_to_rate(form.get(f"{metric}.passing", "")),
                    excellent=percent_to_rate(form.get(f"{metric}.excellent", "")),
                    alert=percent_to_rate(form.get(f"{metric}.alert", "")),
                    now=now,
                )
            sample = parse_count(form.get("min_sample"), field=page.t("thresholds.min_sample"))
            if sample is not None:
                set_min_sample(
                    console.engine, workspace_id=page.workspace_id, messages=sample, now=now
                )

        return answer(request, page, "thresholds", change)

    @router.post("/settings/users/add")
    def user_add(request: Request) -> Response:
        page = console.page(request, "users:manage")
        form = console.form_text(request)

        def change() -> None:
            created = create_user(
                console.engine,
                workspace_id=page.workspace_id,
                email=form.get("email", ""),
                name=form.get("name", ""),
                role=form.get("role", ""),
                password=form.get("password", ""),
                now=datetime.now(UTC),
            )
            console.audit(
                page, "user.create", f"user:{created.email}", {"role": created.role.value}
            )

        return answer(request, page, "users", change, done="user_added")

    @router.post("/settings/keys/add")
    def key_add(request: Request) -> Response:
        page = console.page(request, "keys:manage")
        form = console.form_text(request)
        scopes = [str(s) for s in console.form(request).getlist("scopes")]

        def change() -> str:
            created = create_key(
                console.engine,
                workspace_id=page.workspace_id,
                name=form.get("name", ""),
                scopes=scopes,
                rate_per_minute=parse_count(form.get("rate"), field=page.t("key.rate")),
                created_by=page.principal.actor,
                holder=page.principal.permissions,
                now=datetime.now(UTC),
            )
            return created.secret

        return answer(request, page, "keys", change, done="key_added")

    @router.post("/settings/keys/revoke")
    def key_revoke(request: Request) -> Response:
        page = console.page(request, "keys:manage")
        key_id = parse_count(console.form_text(request).get("id"), field="id") or 0

        def change() -> None:
            revoke_key(
                console.engine,
                workspace_id=page.workspace_id,
                key_id=key_id,
                actor=page.principal.actor,
                now=datetime.now(UTC),
            )

        return answer(request, page, "keys", change, done="key_revoked")

    @router.post("/settings/webhooks/add")
    def webhook_add(request: Request) -> Response:
        page = console.page(request, "webhooks:manage")
        form = console.form_text(request)
        events = [str(e) for e in console.form(request).getlist("events")]

        def change() -> str:
            webhook, secret = add_webhook(
                console.engine,
                workspace_id=page.workspace_id,
                url=form.get("url", ""),
                events=events,
                now=datetime.now(UTC),
            )
            console.audit(page, "webhook.create", f"webhook:{webhook.id}", {"url": webhook.url})
            return secret

        return answer(request, page, "webhooks", change, done="webhook_added")

    @router.post("/settings/webhooks/remove")
    def webhook_remove(request: Request) -> Response:
        page = console.page(request, "webhooks:manage")
        webhook_id = parse_count(console.form_text(request).get("id"), field="id") or 0

        def change() -> None:
            remove_webhook(console.engine, workspace_id=page.workspace_id, webhook_id=webhook_id)
            console.audit(page, "webhook.remove", f"webhook:{webhook_id}", {})

        return answer(request, page, "webhooks", change, done="webhook_removed")

    @router.post("/settings/webhooks/test")
    def webhook_test(request: Request) -> Response:
        page = console.page(request, "webhooks:manage")
        webhook_id = parse_count(console.form_text(request).get("id"), field="id") or 0

        def change() -> None:
            enqueue_test(
                console.engine,
                workspace_id=page.workspace_id,
                webhook_id=webhook_id,
                now=datetime.now(UTC),
            )

        return answer(request, page, "webhooks", change, done="webhook_tested")


def _page(
    console: Console,
    request: Request,
    page: Page,
    tab: str,
    *,
    done: str = "",
    message: str | None = None,
    secret: str | None = None,
    status_code: int = 200,
) -> Response:
    tabs = [name for name, permission in TABS if permission is None or page.may(permission)]
    chosen = tab if tab in tabs else tabs[0]
    context: dict[str, Any] = {
        "tabs": tabs,
        "tab": chosen,
        "done": done,
        "admin": page.may(ADMIN),
        "message": message,
        "secret": secret,
    }
    context.update(_tab(console, page, chosen))
    return console.render(request, "settings.html", context, page=page, status_code=status_code)


def _tab(console: Console, page: Page, tab: str) -> dict[str, Any]:
    engine, workspace_id = console.engine, page.workspace_id
    if tab == "channels":
        records = list_channels(engine, workspace_id=workspace_id)
        health = summarise_channels(
            channel_health(engine, workspace_id=workspace_id, now=page.now, hours=24),
            {c.name: c.enabled for c in records},
        )
        return {
            "channels": records,
            "health": {h.name: h for h in health},
            "carriers": ["all", *(c.value for c in Carrier)],
        }
    if tab == "sending":
        with engine.connect() as conn:
            policy, timezone = load_settings(conn, workspace_id)
            dispatch = load_dispatch_settings(conn, workspace_id)
        return {
            "policy": policy,
            "timezone": timezone,
            "dispatch": dispatch,
            "policy_fields": POLICY_FIELDS,
            "dispatch_numbers": DISPATCH_NUMBERS,
            "auto_replies": auto_replies_text(dispatch.auto_replies),
            "clock": _clock,
        }
    if tab == "content":
        current = get_settings(engine, workspace_id=workspace_id)
        plan = current.price_plan
        return {
            "content": current,
            "opt_out_texts": OPT_OUT_TEXTS,
            "tiers": ", ".join(f"{t.up_to_parts}={t.price}" for t in plan.tiers),
            "peak": ""
            if plan.peak is None
            else f"{_clock(plan.peak.start)}-{_clock(plan.peak.end)}={plan.peak.percent}",
        }
    if tab == "thresholds":
        return {
            "thresholds": get_thresholds(engine, workspace_id=workspace_id),
            "rate_metrics": RATE_METRICS,
        }
    if tab == "users":
        return {"users": list_users(engine, workspace_id=workspace_id), "roles": list(Role)}
    if tab == "keys":
        return {
            "keys": list_keys(engine, workspace_id=workspace_id),
            "scopes": [p for p in PERMISSIONS if p in KEY_SCOPES and page.may(p)],
        }
    if tab == "webhooks":
        return {
            "webhooks": list_webhooks(engine, workspace_id=workspace_id),
            "deliveries": list_deliveries(engine, workspace_id=workspace_id, limit=20),
            "events": EVENTS,
        }
    return {}


def _clock(moment: time) -> str:
    return moment.strftime("%H:%M")
