"""Per-recipient short links and coupon codes, issued in bulk while a campaign is planned.

The planner renders each recipient's text with the variables of ``CampaignTracking``:
``link`` (``{{ link('https://shop.example/sale') }}`` becomes that recipient's own
short link) and ``coupon`` (``{{ coupon }}`` becomes their own code). Rendering never
touches the database: codes are drawn at random a few thousand at a time. The page's
links and coupons are written right after the page's messages, each tied to its
message in the same statement, and checked for collision there: a code already taken
(one in trillions) is replaced by a fresh one, in the stored text too — same length,
same parts.

Every link of a workspace has the same length (``ShortLinkFormat.length``), so the
parts counted on the rendered text are the parts billed.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import Connection

from echelon.errors import InvalidInput
from echelon.tracking import queries
from echelon.tracking.models import COUPON_CODE_LENGTH, ShortLinkFormat, TrackingSettings
from echelon.tracking.rules import RandomBytes, check_target, coupon_codes, link_codes
from echelon.tracking.settings import settings_in

POOL_CHUNK: Final = 5_000
COUPON_PLACEHOLDER: Final = "#" * COUPON_CODE_LENGTH
"""A coupon code's stand-in in previews and cached renders: as long as every real one."""
# Symbols of the placeholder codes: one GSM-7 septet each, as a code's symbols are, and
# none of them in a code, so a placeholder is never mistaken for a real link.
_PLACEHOLDER_SYMBOLS: Final = "-_.!*'()"
_MAX_DRAWS: Final = 5


class LinkTargetMissing(InvalidInput):
    code = "link_target_missing"

    def __init__(self) -> None:
        super().__init__("短链须写明目标网址：{{ link('https://…') }}")


class CodesExhausted(RuntimeError):
    """Fresh random codes kept colliding: the code space is nearly full (never in practice)."""


def allocate_link_codes(
    conn: Connection, count: int, length: int, *, check: bool = True
) -> list[str]:
    """``count`` distinct random link codes that no link has yet (``check``)."""
    return _fresh(
        count,
        lambda n: link_codes(n, length, secrets.token_bytes),
        (lambda codes: queries.taken_link_codes(conn, codes)) if check else None,
    )


def allocate_coupon_codes(
    conn: Connection,
    workspace_id: int,
    count: int,
    *,
    length: int = COUPON_CODE_LENGTH,
    check: bool = True,
) -> list[str]:
    """``count`` distinct random coupon codes that no coupon of the workspace has yet."""
    return _fresh(
        count,
        lambda n: coupon_codes(n, length, secrets.token_bytes),
        (lambda codes: queries.taken_coupon_codes(conn, workspace_id, codes)) if check else None,
    )


def _fresh(
    count: int,
    draw: Callable[[int], list[str]],
    taken: Callable[[set[str]], set[str]] | None,
) -> list[str]:
    chosen: list[str] = []
    seen: set[str] = set()
    for _ in range(_MAX_DRAWS):
        candidates = {code for code in draw(count - len(chosen)) if code not in seen}
        if taken is not None and candidates:
            candidates -= taken(candidates)
        seen |= candidates
        chosen.extend(candidates)
        if len(chosen) >= count:
            return chosen[:count]
    raise CodesExhausted(f"no {count} free codes after {_MAX_DRAWS} draws")


class _Pool:
    def __init__(self, refill: Callable[[int], list[str]]) -> None:
        self._refill = refill
        self._codes: list[str] = []

    def take(self) -> str:
        if not self._codes:
            self._codes = self._refill(POOL_CHUNK)
        return self._codes.pop()


class RecipientLinks:
    """``link`` for one recipient: ``link(url)`` is their short link to ``url`` (the
    same one each time the template names the same target)."""

    __slots__ = ("_contact_id", "_issued", "_tracking")

    def __init__(self, tracking: CampaignTracking, contact_id: int) -> None:
        self._tracking = tracking
        self._contact_id = contact_id
        self._issued: dict[str, str] = {}

    def __call__(self, url: object) -> str:
        target = check_target(url)
        short = self._issued.get(target)
        if short is None:
            short = self._tracking.issue_link(self._contact_id, target)
            self._issued[target] = short
        return short

    def __str__(self) -> str:
        raise LinkTargetMissing()


class PreviewLinks:
    """``link`` for a preview or a live part count before anything is issued: every
    ``link(url)`` renders the workspace's placeholder — exactly as long as its real
    short links — and records the target. Pass it (and ``COUPON_PLACEHOLDER`` as
    ``coupon``) where the content package's ``LinkPlaceholder`` goes today."""

    __slots__ = ("_placeholder", "targets")

    def __init__(self, link_format: ShortLinkFormat) -> None:
        self._placeholder = link_format.placeholder
        self.targets: list[str] = []

    def __call__(self, url: object) -> str:
        self.targets.append(check_target(url))
        return self._placeholder

    def __str__(self) -> str:
        raise LinkTargetMissing()


def preview_variables(conn: Connection, *, workspace_id: int) -> dict[str, object]:
    """``link`` and ``coupon`` as a preview of the workspace should render them."""
    link_format = settings_in(conn, workspace_id=workspace_id).link_format
    return {"link": PreviewLinks(link_format), "coupon": COUPON_PLACEHOLDER}


class _TargetPlaceholders:
    """``link`` for a render shared by many recipients: ``link(url)`` is the placeholder
    that ``CampaignTracking.personalise`` replaces with each recipient's own link."""

    __slots__ = ("_target", "_tracking")

    def __init__(self, tracking: CampaignTracking, target: str | None = None) -> None:
        self._tracking = tracking
        self._target = target

    def __call__(self, url: object) -> str:
        target = check_target(url)
        return self._tracking.placeholder_for(self._target or target)

    def __str__(self) -> str:
        raise LinkTargetMissing()


@dataclass(frozen=True, slots=True)
class Issued:
    """Links (code, contact id, target) and coupons (code, contact id) of a page."""

    links: list[tuple[str, int, str]]
    coupons: list[tuple[str, int]]


class CampaignTracking:
    """Links and coupons of one campaign plan (or of its preview, which stores none).

    Two ways to use it, per page of recipients, then — after the page's messages are
    written, in the same transaction — ``write(conn)``:

    - render each recipient with ``variables(contact_id)`` merged into their template
      variables; or
    - render once per distinct text with ``placeholders()`` (placeholders exactly as
      long as real links and codes: the same parts, the same encoding), then
      ``personalise(text, contact_id)`` swaps in the recipient's own link and coupon.

    Only what the template uses is issued: links if it names ``link``, a coupon per
    recipient if it names ``coupon``.
    """

    def __init__(
        self,
        *,
        workspace_id: int,
        campaign_id: int | None,
        settings: TrackingSettings,
        uses: Collection[str],
        write: bool,
        now: datetime,
        random_bytes: RandomBytes = secrets.token_bytes,
    ) -> None:
        self.workspace_id = workspace_id
        self.campaign_id = campaign_id
        self.link_format: ShortLinkFormat = settings.link_format
        self._uses_link = "link" in uses
        self._uses_coupon = "coupon" in uses
        self._write = write
        self._now = now
        self._links = _Pool(lambda n: link_codes(n, settings.code_length, random_bytes))
        self._coupons = _Pool(lambda n: coupon_codes(n, COUPON_CODE_LENGTH, random_bytes))
        self._pending_links: list[tuple[str, int, str]] = []
        self._pending_coupons: list[tuple[str, int]] = []
        self._placeholders: dict[str, str] = {}

    @classmethod
    def open(
        cls,
        conn: Connection,
        *,
        workspace_id: int,
        campaign_id: int | None,
        uses: Collection[str],
        write: bool,
        now: datetime,
    ) -> CampaignTracking:
        """Tracking for a plan (``write``) or a preview, with the workspace's settings;
        ``uses`` is the set of names the template reads (``compiled.variables``)."""
        settings = settings_in(conn, workspace_id=workspace_id)
        return cls(
            workspace_id=workspace_id,
            campaign_id=campaign_id,
            settings=settings,
            uses=uses,
            write=write,
            now=now,
        )

    def variables(self, contact_id: int) -> dict[str, object]:
        """The recipient's ``link`` and ``coupon``, as the template uses them."""
        found: dict[str, object] = {}
        if self._uses_link:
            found["link"] = RecipientLinks(self, contact_id)
        if self._uses_coupon:
            code = self._coupons.take()
            if self._write:
                self._pending_coupons.append((code, contact_id))
            found["coupon"] = code
        return found

    def placeholders(self, *, link_target: str | None = None) -> dict[str, object]:
        """``link`` and ``coupon`` for a render shared by many recipients;
        ``link_target``: every ``link(url)`` goes there instead (an A/B variant that
        tests a landing page)."""
        found: dict[str, object] = {}
        if self._uses_link:
            found["link"] = _TargetPlaceholders(self, link_target)
        if self._uses_coupon:
            found["coupon"] = COUPON_PLACEHOLDER
        return found

    def placeholder_for(self, target: str) -> str:
        """The placeholder link standing for ``target`` (one per target)."""
        found = self._placeholders.get(target)
        if found is None:
            number, code = len(self._placeholders), ""
            while number or not code:
                number, digit = divmod(number, len(_PLACEHOLDER_SYMBOLS))
                code = _PLACEHOLDER_SYMBOLS[digit] + code
            found = self.link_format.url(code.rjust(self.link_format.code_length, "-"))
            self._placeholders[target] = found
        return found

    def known_placeholders(self) -> dict[str, str]:
        """Target → placeholder, as issued so far (a planning child reports them)."""
        return dict(self._placeholders)

    def adopt_placeholders(self, known: dict[str, str]) -> None:
        """Take the placeholders another copy of this plan issued (the planning child
        renders; this process personalises)."""
        self._placeholders.update(known)

    def personalise(self, text: str, contact_id: int) -> str:
        """``text`` rendered with ``placeholders()``, made the recipient's: each
        placeholder link replaced by their own link to its target, the coupon
        placeholder by their own coupon. The length does not change."""
        for target, placeholder in self._placeholders.items():
            if placeholder in text:
                text = text.replace(placeholder, self.issue_link(contact_id, target))
        if self._uses_coupon and COUPON_PLACEHOLDER in text:
            code = self._coupons.take()
            if self._write:
                self._pending_coupons.append((code, contact_id))
            text = text.replace(COUPON_PLACEHOLDER, code)
        return text

    def issue_link(self, contact_id: int, target: str) -> str:
        """A new short link of the recipient to ``target`` (``link(url)`` calls it)."""
        code = self._links.take()
        if self._write:
            self._pending_links.append((code, contact_id, target))
        return self.link_format.url(code)

    def take_issued(self) -> Issued:
        """What was issued since the last call, to ``store`` with its page — so that
        pages can be written by another thread while the next is personalised."""
        issued = Issued(list(self._pending_links), list(self._pending_coupons))
        self._pending_links.clear()
        self._pending_coupons.clear()
        return issued

    def store(self, conn: Connection, issued: Issued) -> None:
        """Store ``issued``, tied to the campaign's messages — call it after its page's
        messages are written, in the same transaction (on any connection)."""
        if not self._write or not (issued.links or issued.coupons):
            return
        queries.start_staging(conn)
        if issued.links:
            links = self._free_link_codes(conn, issued.links)
            queries.insert_links(
                conn,
                workspace_id=self.workspace_id,
                campaign_id=self.campaign_id,
                rows=links,
                now=self._now,
            )
        if issued.coupons:
            coupons = self._free_coupon_codes(conn, issued.coupons)
            queries.insert_coupons(
                conn,
                workspace_id=self.workspace_id,
                campaign_id=self.campaign_id,
                rows=coupons,
                now=self._now,
            )

    def write(self, conn: Connection, *, skip: Collection[int] = ()) -> None:
        """``store`` what was issued since the last call, but for the contacts in
        ``skip`` (whose message was not written)."""
        issued = self.take_issued()
        self.store(
            conn,
            Issued(
                [row for row in issued.links if row[1] not in skip],
                [row for row in issued.coupons if row[1] not in skip],
            ),
        )

    def _free_link_codes(
        self, conn: Connection, rows: list[tuple[str, int, str]]
    ) -> list[tuple[str, int, str]]:
        taken = queries.taken_link_codes(conn, [code for code, _, _ in rows])
        fixed = []
        seen: set[str] = set()
        for code, contact_id, target in rows:
            if code in taken or code in seen:
                (new,) = allocate_link_codes(conn, 1, self.link_format.code_length)
                url = self.link_format.url
                self._rewrite(conn, contact_id, url(code), url(new))
                code = new
            seen.add(code)
            fixed.append((code, contact_id, target))
        return fixed

    def _free_coupon_codes(
        self, conn: Connection, rows: list[tuple[str, int]]
    ) -> list[tuple[str, int]]:
        taken = queries.taken_coupon_codes(conn, self.workspace_id, [code for code, _ in rows])
        fixed = []
        seen: set[str] = set()
        for code, contact_id in rows:
            if code in taken or code in seen:
                (new,) = allocate_coupon_codes(conn, self.workspace_id, 1)
                self._rewrite(conn, contact_id, code, new)
                code = new
            seen.add(code)
            fixed.append((code, contact_id))
        return fixed

    def _rewrite(self, conn: Connection, contact_id: int, old: str, new: str) -> None:
        queries.replace_in_text(
            conn,
            workspace_id=self.workspace_id,
            campaign_id=self.campaign_id,
            contact_id=contact_id,
            old=old,
            new=new,
            now=self._now,
        )
