"""The console's languages: every visible string is a key of the message catalogue
(``catalogue.py``), zh-CN by default, English on request (``?lang=en``, then a cookie)."""

from __future__ import annotations

from typing import Final

from echelon.console.catalogue import EN, ZH
from echelon.errors import InvalidInput

DEFAULT_LANGUAGE: Final = "zh"
CATALOGUES: Final[dict[str, dict[str, str]]] = {"zh": ZH, "en": EN}
LANGUAGES: Final = {"zh": "中文", "en": "English"}
HTML_LANG: Final = {"zh": "zh-CN", "en": "en"}


def choose_language(asked: str | None, remembered: str | None) -> str:
    """The language asked for in the address, else the one remembered, else zh."""
    for choice in (asked, remembered):
        if choice in CATALOGUES:
            return choice
    return DEFAULT_LANGUAGE


class Translator:
    """``t("key", n=3)``: the message of ``key`` in ``lang`` with ``{n}`` filled in.
    A key missing from the language falls back to zh, then to the key itself, so a
    gap shows as a visible key rather than an error page."""

    __slots__ = ("lang", "messages")

    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in CATALOGUES else DEFAULT_LANGUAGE
        self.messages = CATALOGUES[self.lang]

    @property
    def html_lang(self) -> str:
        return HTML_LANG[self.lang]

    def __call__(self, key: str, **values: object) -> str:
        message = self.messages.get(key) or ZH.get(key) or key
        return message.format(**values) if values else message

    def has(self, key: str) -> bool:
        return key in self.messages

    def label(self, prefix: str, value: object, default: str | None = None) -> str:
        """The label of a coded value (``status.delivered``); the value itself, or
        ``default``, when the catalogue has none."""
        key = f"{prefix}.{value}"
        if key in self.messages:
            return self.messages[key]
        return default if default is not None else str(value)


class Problem(InvalidInput):
    """A refusal of the console's own (a form field, an upload), worded from the
    catalogue in the reader's language; ``message`` is the zh wording."""

    def __init__(self, key: str, **values: object) -> None:
        super().__init__(Translator(DEFAULT_LANGUAGE)(key, **values))
        self.key = key
        self.values = values

    def worded(self, t: Translator) -> str:
        return t(self.key, **self.values)
