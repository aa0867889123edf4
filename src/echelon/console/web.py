"""What every console page shares: who is signed in (the access service's session
cookie), the CSRF check on every form post, the language, and rendering.

Each request passes ``ConsoleRoute``, which identifies the session before the handler
runs and turns a refusal into a page a person reads: no session → the sign-in page; a
missing permission, a bad CSRF token or a domain error → the error page, or, for an
htmx request, the message in the page's flash area.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from echelon.access.models import Principal
from echelon.access.ratelimit import RateLimiter
from echelon.access.rules import csrf_matches, csrf_token
from echelon.access.service import record_audit, session_principal
from echelon.access.settings import AccessSettings
from echelon.config import Settings
from echelon.console import format as fmt
from echelon.console.i18n import LANGUAGES, Problem, Translator, choose_language
from echelon.console.imports import ImportJobs
from echelon.console.queries import WorkspaceInfo, workspace_info
from echelon.errors import EchelonError

log = logging.getLogger(__name__)

# The API's cookie: one sign-in serves the console and the API's own docs page.
SESSION_COOKIE: Final = "echelon_session"
LANGUAGE_COOKIE: Final = "echelon_lang"
CSRF_FIELD: Final = "csrf_token"
CSRF_HEADER: Final = "X-CSRF-Token"
_SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
_PUBLIC_POSTS: Final = frozenset({"/login"})
_FORMS: Final = ("application/x-www-form-urlencoded", "multipart/form-data")
TEMPLATES: Final = Path(__file__).with_name("templates")


class SignInRequired(Exception):
    """No live session: the person is sent to the sign-in page."""


class Refused(EchelonError):
    """The signed-in person may not do this (role), or the form's CSRF token is wrong."""

    code = "forbidden"
    http_status = 403


@dataclass(frozen=True)
class NavItem:
    path: str
    label: str
    permission: str | None


@dataclass(frozen=True)
class Page:
    """One request of a signed-in person: who, in which workspace, in which language."""

    principal: Principal
    workspace: WorkspaceInfo
    t: Translator
    csrf: str
    htmx: bool
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def workspace_id(self) -> int:
        return self.principal.workspace_id

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.workspace.timezone)

    def may(self, permission: str) -> bool:
        return self.principal.may(permission)

    def require(self, permission: str) -> None:
        if not self.principal.may(permission):
            raise Refused(self.t("error.permission", permission=self.t(f"perm.{permission}")))


NAVIGATION: Final = (
    ("/", "nav.dashboard", "reports:read"),
    ("/contacts", "nav.contacts", "contacts:read"),
    ("/segments", "nav.segments", "segments:read"),
    ("/templates", "nav.templates", "templates:read"),
    ("/review", "nav.review", "templates:approve"),
    ("/campaigns", "nav.campaigns", "campaigns:read"),
    ("/journeys", "nav.journeys", "campaigns:read"),
    ("/messages", "nav.messages", "messages:read"),
    ("/inbox", "nav.inbox", "messages:read"),
    ("/settings", "nav.settings", None),
)


class Console:
    """The console's state: the database, settings, templates and in-memory helpers
    (sign-in rate limits, running imports)."""

    def __init__(self, engine: Engine, settings: Settings, access: AccessSettings) -> None:
        self.engine = engine
        self.settings = settings
        self.access = access
        self.sign_in_limiter = RateLimiter()
        self.imports = ImportJobs()
        self.env = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=select_autoescape(["html"], default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(
            percent=fmt.percent,
            yuan=fmt.yuan,
            number=fmt.number,
            seconds=fmt.seconds,
        )

    # -- who is asking ---------------------------------------------------------------

    async def identify(self, request: Request) -> None:
        """Language and session of ``request`` onto ``request.state``; the CSRF token
        checked on anything but a read."""
        request.state.lang = choose_language(
            request.query_params.get("lang"), request.cookies.get(LANGUAGE_COOKIE)
        )
        request.state.principal = None
        request.state.form = FormData()
        if request.method not in _SAFE_METHODS and request.headers.get(
            "content-type", ""
        ).startswith(_FORMS):
            request.state.form = await request.form()
        token = request.cookies.get(SESSION_COOKIE)
        request.state.session = token
        if token:
            request.state.principal = await run_in_threadpool(
                session_principal, self.engine, token=token, now=datetime.now(UTC)
            )
        if (
            request.method not in _SAFE_METHODS
            and request.url.path not in _PUBLIC_POSTS
            and request.state.principal is not None
        ):
            presented = request.headers.get(CSRF_HEADER)
            if presented is None:
                value = request.state.form.get(CSRF_FIELD)
                presented = value if isinstance(value, str) else None
            assert token is not None
            if not csrf_matches(token, presented):
                raise Refused(Translator(request.state.lang)("error.csrf"))

    def page(self, request: Request, permission: str | None = None) -> Page:
        """The signed-in person's page context; ``SignInRequired`` without a session,
        ``Refused`` without ``permission``."""
        principal: Principal | None = request.state.principal
        if principal is None or principal.kind != "user":
            raise SignInRequired()
        page = Page(
            principal=principal,
            workspace=workspace_info(self.engine, workspace_id=principal.workspace_id),
            t=Translator(request.state.lang),
            csrf=csrf_token(request.state.session),
            htmx=request.headers.get("HX-Request") == "true",
        )
        if permission is not None:
            page.require(permission)
        return page

    def form(self, request: Request) -> FormData:
        """The posted form (parsed once, before the handler)."""
        form: FormData = request.state.form
        return form

    def form_text(self, request: Request) -> dict[str, str]:
        """The posted form's text fields (the last value of a repeated one)."""
        return {k: v for k, v in self.form(request).items() if isinstance(v, str)}

    def translator(self, request: Request) -> Translator:
        return Translator(request.state.lang)

    # -- rendering -------------------------------------------------------------------

    def render(
        self,
        request: Request,
        template: str,
        context: Mapping[str, Any],
        *,
        page: Page | None = None,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> HTMLResponse:
        t = page.t if page is not None else self.translator(request)
        values: dict[str, Any] = {
            "t": t,
            "page": page,
            "lang": t.lang,
            "languages": LANGUAGES,
            "request_path": request.url.path,
            "nav": self._navigation(page) if page is not None else [],
            "local": (lambda moment: fmt.local_time(moment, page.zone)) if page else fmt.utc_time,
            "lang_url": lambda code: _with_language(request, code),
        }
        values.update(context)
        body = self.env.get_template(template).render(values)
        return HTMLResponse(body, status_code=status_code, headers=headers)

    def _navigation(self, page: Page) -> list[NavItem]:
        return [
            NavItem(path, page.t(label), permission)
            for path, label, permission in NAVIGATION
            if permission is None or page.may(permission)
        ]

    def audit(self, page: Page, action: str, target: str, detail: dict[str, Any]) -> None:
        """One audit line for a change ``page``'s person just made (as the API does)."""
        record_audit(
            self.engine,
            workspace_id=page.workspace_id,
            actor=page.principal.actor,
            action=action,
            target=target,
            detail=detail,
            now=datetime.now(UTC),
        )

    def word(self, request: Request, exc: EchelonError) -> str:
        """An error's message in the reader's language where the console words it
        (services word theirs in zh)."""
        if isinstance(exc, Problem):
            return exc.worded(self.translator(request))
        return exc.message

    def redirect(self, path: str) -> Response:
        return RedirectResponse(path, status_code=303)

    def error(self, request: Request, message: str, status_code: int) -> Response:
        principal: Principal | None = getattr(request.state, "principal", None)
        if request.headers.get("HX-Request") == "true":
            # htmx swaps only 2xx answers: the message goes to the flash area instead.
            body = self.env.get_template("_flash.html").render(
                kind="error", message=message, t=self.translator(request)
            )
            return HTMLResponse(body, headers={"HX-Retarget": "#flash", "HX-Reswap": "innerHTML"})
        page = None
        if principal is not None and principal.kind == "user":
            page = self.page(request)
        return self.render(
            request, "error.html", {"message": message}, page=page, status_code=status_code
        )


Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def route_class(console: Console) -> type[APIRoute]:
    """The route class of every console route (see the module's docstring)."""

    class ConsoleRoute(APIRoute):
        def get_route_handler(self) -> Handler:
            original = super().get_route_handler()

            async def handler(request: Request) -> Response:
                try:
                    await console.identify(request)
                    response = await original(request)
                except SignInRequired:
                    return _to_sign_in(request)
                except RequestValidationError as exc:
                    return console.error(request, _validation_message(console, request, exc), 422)
                except EchelonError as exc:
                    return console.error(request, console.word(request, exc), exc.http_status)
                except Exception:
                    log.exception("console page %s failed", request.url.path)
                    return console.error(
                        request, console.translator(request)("error.internal"), 500
                    )
                wanted = request.query_params.get("lang")
                if wanted in LANGUAGES:
                    response.set_cookie(
                        LANGUAGE_COOKIE, wanted, max_age=365 * 86400, path="/", samesite="lax"
                    )
                return response

            return handler

    return ConsoleRoute


def _with_language(request: Request, code: str) -> str:
    """This page's address in language ``code`` (its other parameters kept)."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    return request.url.path + "?" + urlencode([*params, ("lang", code)])


def _to_sign_in(request: Request) -> Response:
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    location = "/login?next=" + quote(target, safe="")
    if request.headers.get("HX-Request") == "true":
        return Response(status_code=204, headers={"HX-Redirect": location})
    return RedirectResponse(location, status_code=303)


def _validation_message(console: Console, request: Request, exc: RequestValidationError) -> str:
    t = console.translator(request)
    errors = exc.errors()
    first = errors[0] if errors else {}
    place = [str(part) for part in first.get("loc", ())][1:]
    return t("error.form", field=".".join(place) or "-")
