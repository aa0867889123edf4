"""Preview: a template rendered for one real contact, exactly as it would be sent.

Variables come from the contact (``contact_variables``), then the send context
(``coupon``, anything else the caller passes), then ``link``. Until the tracking
feature supplies real short links, ``link`` is a ``LinkPlaceholder``: both
``{{ link }}`` and ``{{ link('https://…') }}`` render ``PREVIEW_LINK``, an ASCII
address of exactly ``TRACKED_LINK_LENGTH`` characters on a reserved domain, so
encoding, parts and cost are those of the real message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import Connection, Engine

from echelon.audience.phone import Carrier, normalise_phone
from echelon.content import queries
from echelon.content.compose import DEFAULT_OPT_OUT, MessageKind, compose
from echelon.content.length import TRACKED_LINK_LENGTH, PartCount, count_parts
from echelon.content.pricing import estimate
from echelon.content.render import compile_template
from echelon.content.templates import SignatureNotSet, load
from echelon.content.words import Hit, WordChecker, default_checker
from echelon.content.workspace_words import workspace_checker
from echelon.errors import InvalidInput, NotFound
from echelon.tracking.models import COUPON_CODE_LENGTH
from echelon.tracking.settings import settings_in as tracking_settings_in
from echelon.workspaces.service import settings_in

# ".example" is reserved (RFC 2606): a preview sent by mistake links nowhere real.
PREVIEW_LINK: Final = "https://e.example/".ljust(TRACKED_LINK_LENGTH, "x")

_GENDER_TITLES: Final = {"male": "先生", "female": "女士"}


class InvalidLink(InvalidInput):
    code = "invalid_link"

    def __init__(self, url: object) -> None:
        super().__init__(f"链接 {url!r} 无效：应以 https:// 或 http:// 开头")
        self.url = url


class LinkPlaceholder:
    """``link`` in a preview: renders ``placeholder`` — the workspace's short link
    format with a code never issued, exactly as long as a real one (``PREVIEW_LINK``
    where no workspace is at hand) — and records the targets."""

    __slots__ = ("placeholder", "targets")

    def __init__(self, placeholder: str = PREVIEW_LINK) -> None:
        self.placeholder = placeholder
        self.targets: list[str] = []

    def __call__(self, url: object) -> str:
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise InvalidLink(url)
        self.targets.append(url)
        return self.placeholder

    def __str__(self) -> str:
        return self.placeholder


def tracked_placeholders(conn: Connection, *, workspace_id: int) -> dict[str, object]:
    """``link`` and ``coupon`` for a preview of the workspace: placeholders exactly as
    long as its real short links and coupon codes, so parts and cost are what a send
    costs."""
    link_format = tracking_settings_in(conn, workspace_id=workspace_id).link_format
    return {"link": LinkPlaceholder(link_format.placeholder), "coupon": "#" * COUPON_CODE_LENGTH}


@dataclass(frozen=True, slots=True)
class Preview:
    """The composed ``text`` for ``phone``, what it costs as one message sent now
    (first unused tier of the month is assumed), its word hits and link targets."""

    template: str
    review_status: str
    phone: str
    text: str
    count: PartCount
    cost: Decimal
    hits: list[Hit]
    links: list[str]


@dataclass(frozen=True, slots=True)
class TextCheck:
    """A text as sent (``compose``d), what it costs in parts, and its word hits."""

    text: str
    count: PartCount
    hits: list[Hit]


def check_text(
    body: str,
    *,
    kind: MessageKind,
    signature: str,
    opt_out_text: str = DEFAULT_OPT_OUT,
    checker: WordChecker | None = None,
) -> TextCheck:
    """Compose ``body`` as written (no variables) and count and lint the result —
    the quick check while writing; ``checker`` defaults to the shipped list."""
    text = compose(body, kind=kind, signature=signature, opt_out_text=opt_out_text)
    return TextCheck(text, count_parts(text), (checker or default_checker()).lint(text))


def check_workspace_text(
    engine: Engine,
    *,
    workspace_id: int,
    body: str,
    kind: MessageKind,
    signature: str | None = None,
) -> TextCheck:
    """``check_text`` with the workspace's signature (unless given), opt-out line and words."""
    with engine.connect() as conn:
        settings = settings_in(conn, workspace_id=workspace_id)
        checker = workspace_checker(conn, workspace_id=workspace_id)
    signature = signature or settings.signature
    if signature is None:
        raise SignatureNotSet()
    return check_text(
        body, kind=kind, signature=signature, opt_out_text=settings.opt_out_text, checker=checker
    )


def contact_variables(row: Mapping[str, Any]) -> dict[str, object]:
    """Template variables of one contact, from its ``contacts`` columns and an
    optional ``tags`` list: every custom attribute under its own key (and all of
    them as ``attributes``), then ``phone``, ``name``, ``gender`` (先生/女士),
    ``birthday`` (5月17日, 农历 first if lunar), ``province``, ``city``, ``carrier``
    (中国移动 …) and ``tags``. An empty field or blank attribute is None — reported
    as a missing variable unless the template defaults it — and a profile field
    yields to an attribute of the same name that has a value. Pure, so the planner
    can call it per row in bulk.
    """
    attributes: dict[str, object] = dict(row.get("attributes") or {})
    carrier = row.get("carrier")
    profile: dict[str, object] = {
        "phone": _national(row["phone"]),
        "name": row.get("name"),
        "gender": _GENDER_TITLES.get(row.get("gender") or ""),
        "birthday": _birthday(row.get("birthday"), lunar=bool(row.get("birthday_lunar"))),
        "province": row.get("province"),
        "city": row.get("city"),
        "carrier": Carrier(carrier).label if carrier else None,
        "tags": list(row.get("tags") or ()),
        "attributes": attributes,
    }
    # A blank value would leave a gap in the SMS; as None it is reported as missing.
    variables = {key: None if _blank(value) else value for key, value in attributes.items()}
    for key, value in profile.items():
        if value is not None or variables.get(key) is None:
            variables[key] = value
    return variables


def _blank(value: object) -> bool:
    return isinstance(value, str) and not value.strip()


_Row = Sequence[Any]
_Attributes = Mapping[str, Any]
_Reader = Callable[[_Row, _Attributes, Sequence[str]], object]
# Profile variables and the contact columns each is made from; when one is None the
# attribute of the same name stands in (phone, tags and attributes never are).
_PROFILE_COLUMNS: Final[Mapping[str, tuple[str, ...]]] = {
    "name": ("name",),
    "gender": ("gender",),
    "birthday": ("birthday", "birthday_lunar"),
    "province": ("province",),
    "city": ("city",),
    "carrier": ("carrier",),
}


class ContactValues:
    """The values of the variables ``names`` for one contact, each exactly as
    ``contact_variables`` gives it (None where that gives None or nothing), from only
    what they need — the planner's per-row path, where building every variable of
    every contact would cost more than rendering the template.

    ``read`` takes a row of ``columns`` (``id``, ``phone``, ``carrier``, ``province``
    first), the contact's
    attributes — those named in ``attribute_keys`` are enough, all of them when that
    is None — and, when ``needs_tags``, its tags.
    """

    __slots__ = ("_readers", "attribute_keys", "columns", "names", "needs_tags")

    def __init__(self, names: Iterable[str]) -> None:
        self.names = tuple(sorted(set(names)))
        # Carrier and province go on every message (routing, grouped reports).
        columns = ["id", "phone", "carrier", "province"]
        keys: list[str] = []
        for name in self.names:
            if name in ("phone", "tags", "attributes"):
                continue  # phone is always read; tags and attributes come apart
            # A profile field that is None gives way to the attribute of its name.
            keys.append(name)
            for column in _PROFILE_COLUMNS.get(name, ()):
                if column not in columns:
                    columns.append(column)
        self.columns = tuple(columns)
        self.attribute_keys = None if "attributes" in self.names else tuple(keys)
        self.needs_tags = "tags" in self.names
        self._readers = [self._reader(name) for name in self.names]

    def read(
        self, row: _Row, attributes: _Attributes, tags: Sequence[str] = ()
    ) -> tuple[object, ...]:
        return tuple([read(row, attributes, tags) for read in self._readers])

    def _reader(self, name: str) -> _Reader:
        at = self.columns.index
        if name == "phone":
            phone = at("phone")
            return lambda row, _attributes, _tags: _national(row[phone])
        if name == "tags":
            return lambda _row, _attributes, tags: list(tags)
        if name == "attributes":
            return lambda _row, attributes, _tags: dict(attributes)
        if name == "birthday":
            day, lunar = at("birthday"), at("birthday_lunar")

            def birthday(row: _Row, attributes: _Attributes, _tags: object) -> object:
                value = _birthday(row[day], lunar=bool(row[lunar]))
                return _attribute(attributes, name) if value is None else value

            return birthday
        if name not in _PROFILE_COLUMNS:
            return lambda _row, attributes, _tags: _attribute(attributes, name)
        column = at(name)
        convert = _PROFILE_VALUES.get(name)

        def profile(row: _Row, attributes: _Attributes, _tags: object) -> object:
            value = row[column] if convert is None else convert(row[column])
            return _attribute(attributes, name) if value is None else value

        return profile


def _attribute(attributes: _Attributes, name: str) -> object:
    value = attributes.get(name)
    return None if _blank(value) else value


def _carrier_label(code: str | None) -> str | None:
    return Carrier(code).label if code else None


def _gender_title(gender: str | None) -> str | None:
    return _GENDER_TITLES.get(gender or "")


_PROFILE_VALUES: Final[Mapping[str, Callable[[Any], object]]] = {
    "gender": _gender_title,
    "carrier": _carrier_label,
}


def preview_template(
    engine: Engine,
    *,
    workspace_id: int,
    name: str,
    phone: str,
    context: Mapping[str, object] | None = None,
    now: datetime,
) -> Preview:
    """Render ``name`` for the contact ``phone`` of the workspace, whatever the
    template's review status; a missing variable is an error naming it and the
    contact. ``context`` values override the contact's; ``link`` is always the
    placeholder."""
    number = normalise_phone(phone)
    with engine.connect() as conn:
        return preview_in(
            conn, workspace_id=workspace_id, name=name, phone=number, context=context, now=now
        )


def preview_in(
    conn: Connection,
    *,
    workspace_id: int,
    name: str,
    phone: str | None,
    context: Mapping[str, object] | None = None,
    now: datetime,
) -> Preview:
    """``preview_template`` inside the caller's transaction; without a contact
    (``phone`` None) the variables are ``context`` alone — sample values."""
    template = load(conn, workspace_id=workspace_id, name=name)
    settings = settings_in(conn, workspace_id=workspace_id)
    variables: dict[str, object] = {}
    who = "示例值"
    if phone is not None:
        row = queries.contact_with_tags(conn, workspace_id=workspace_id, phone=phone)
        if row is None:
            raise NotFound(f"联系人 {phone} 不存在")
        variables = contact_variables(row)
        who = f"{phone} {row['name']}" if row["name"] else phone
    checker = workspace_checker(conn, workspace_id=workspace_id)
    tracked = tracked_placeholders(conn, workspace_id=workspace_id)
    signature = template.signature or settings.signature
    if signature is None:
        raise SignatureNotSet()
    link = tracked["link"]
    assert isinstance(link, LinkPlaceholder)
    variables = variables | tracked | dict(context or {})
    body = compile_template(template.body).render(variables, contact=who)
    text = compose(
        body, kind=template.kind, signature=signature, opt_out_text=settings.opt_out_text
    )
    count = count_parts(text)
    cost = estimate(settings.price_plan, [(count.parts, now)], now=now).cost
    return Preview(
        template=template.name,
        review_status=template.review_status,
        phone=phone or "",
        text=text,
        count=count,
        cost=cost,
        hits=checker.lint(text),
        links=link.targets,
    )


def _national(e164: str) -> str:
    """13800138000 for a Chinese mobile, as people write it; E.164 otherwise."""
    return e164[3:] if e164.startswith("+86") else e164


def _birthday(day: date | None, *, lunar: bool) -> str | None:
    if day is None:
        return None
    return f"{'农历' if lunar else ''}{day.month}月{day.day}日"
