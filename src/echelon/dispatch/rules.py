"""Pure rules of reply handling: is a reply an opt-out?

Subscribers reply in every form: ``TD``, ``td``, ``ＴＤ``, `` T ``, ``退订``,
``我要退订！``, ``STOP``. A Chinese keyword counts anywhere in the reply; a Latin one
only when it is the whole reply (letters alone), so "Thanks" never opts anybody out.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

DEFAULT_OPT_OUT_KEYWORDS = ("T", "TD", "R", "N", "退订", "取消", "拒收", "STOP", "UNSUBSCRIBE")


@dataclass(frozen=True, slots=True)
class OptOutKeywords:
    """A workspace's opt-out keywords, folded once."""

    latin: frozenset[str]
    other: tuple[str, ...]

    @classmethod
    def of(cls, keywords: Iterable[str] = DEFAULT_OPT_OUT_KEYWORDS) -> OptOutKeywords:
        folded = [_fold(k) for k in keywords if _fold(k)]
        latin = frozenset(k for k in folded if k.isascii())
        return cls(latin, tuple(k for k in folded if not k.isascii()))

    def match(self, reply: str) -> str | None:
        """The keyword ``reply`` opts out with, or None."""
        text = _fold(reply)
        if text in self.latin:
            return text
        for keyword in self.other:
            if keyword in text:
                return keyword
        return None

    def contained_in(self, text: str) -> bool:
        """Whether any keyword occurs anywhere in ``text`` (auto-reply matching)."""
        folded = _fold(text)
        return any(k in folded for k in (*self.latin, *self.other))


def _fold(text: str) -> str:
    """Width and case folded, everything but letters and digits dropped."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in folded if ch.isalnum())
