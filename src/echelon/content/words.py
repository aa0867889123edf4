"""Word checks: banned and risky words in message text.

Text and words are compared after *folding*: NFKC (full-width to half-width, ①
to 1), case folding, and removal of every character that is neither a letter nor
a digit (but "%") — so ``最 高``, ``最*高`` and ``ＳＴＯＰ`` match ``最高`` and ``stop``.
Hits are reported with offsets into the original text. Matching is one
Aho-Corasick pass over the folded text with an automaton built once per word set,
so cost is linear in the text whatever the size of the list.
"""

from __future__ import annotations

import json
import re
import unicodedata
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib import resources
from itertools import accumulate

import ahocorasick

from echelon.errors import InvalidInput

# A separator is anything that is not a letter or digit, plus "_" (which ``\w``
# counts as a letter). "%" is kept: "100%" is a listed term and folding it to
# "100" would flag every price.
_SEPARATORS = re.compile(r"[^\w%]|_")


class Category(StrEnum):
    ABSOLUTE = "absolute"
    MEDICAL = "medical"
    INDUCING = "inducing"
    FINANCE = "finance"
    GAMBLING = "gambling"
    ADULT = "adult"
    POLITICAL = "political"
    FRAUD = "fraud"
    CUSTOM = "custom"

    @property
    def label(self) -> str:
        return _CATEGORY_LABELS[self]


_CATEGORY_LABELS = {
    Category.ABSOLUTE: "广告法极限用语",
    Category.MEDICAL: "医疗用语",
    Category.INDUCING: "诱导用语",
    Category.FINANCE: "金融用语（限持牌机构）",
    Category.GAMBLING: "博彩",
    Category.ADULT: "色情低俗",
    Category.POLITICAL: "政治敏感",
    Category.FRAUD: "诈骗违法",
    Category.CUSTOM: "自定义",
}


class Severity(StrEnum):
    BLOCK = "block"
    WARN = "warn"


class InvalidWordEntry(InvalidInput):
    code = "invalid_word_entry"

    def __init__(self, word: str, problem: str) -> None:
        super().__init__(f"敏感词 {word!r} 无效：{problem}")
        self.word = word


@dataclass(frozen=True, slots=True)
class WordEntry:
    """One listed word; its folded form must not be empty."""

    word: str
    category: Category
    severity: Severity
    suggestion: str | None = None

    def __post_init__(self) -> None:
        if not fold(self.word):
            raise InvalidWordEntry(self.word, "去掉空格和标点后为空")


@dataclass(frozen=True, slots=True)
class Hit:
    """A listed word found in a text; ``text[start:end]`` is the matched span."""

    word: str
    category: Category
    severity: Severity
    suggestion: str | None
    start: int
    end: int


def _fold_char(char: str) -> str:
    return _SEPARATORS.sub("", unicodedata.normalize("NFKC", char).casefold())


class _FoldTable(dict[int, str]):
    """Code point -> folded string for any code point, filled on first sight."""

    def __missing__(self, code: int) -> str:
        folded = self[code] = _fold_char(chr(code))
        return folded


_FOLD_TABLE = _FoldTable()
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


@cache
def _bmp_fold_table() -> list[str]:
    # Built once (~40 ms): str.translate indexes a list faster than it looks up a
    # dict, and fold runs on every message. Astral text takes the dict table.
    return [_fold_char(chr(code)) for code in range(0x10000)]


def _fold_table(text: str) -> list[str] | _FoldTable:
    return _bmp_fold_table() if _ASTRAL.search(text) is None else _FOLD_TABLE


def fold(text: str) -> str:
    """The text as words are matched: each character folded on its own, then joined.

    Folding per character keeps a folded index traceable to an original one.
    """
    return text.translate(_fold_table(text))


def _match_form(text: str) -> str:
    """The fold as UTF-8 bytes spelled in Latin-1 characters — what the automaton sees.

    pyahocorasick scans a node's children linearly: on characters the root has
    one child per distinct first character (~150 for the shipped list, scanned for
    nearly every character of a text), on UTF-8 bytes only a few lead bytes.
    UTF-8 is self-synchronising, so a match starts and ends on a character boundary.
    """
    # Folding drops surrogates (they are not letters), so the encoding cannot fail.
    return fold(text).encode("utf-8").decode("latin-1")


@cache
def _bmp_match_lengths() -> list[str]:
    """Code point -> the byte length of its fold, as a one-character string."""
    return [chr(len(folded.encode("utf-8"))) for folded in _bmp_fold_table()]


def _match_ends(text: str) -> list[int]:
    """For each character of ``text``, where its fold ends in ``_match_form(text)``."""
    # Runs for every message when a template itself contains a warned word, so
    # it stays in C: translate to lengths, read them back as bytes, accumulate.
    if _ASTRAL.search(text) is None:
        return list(accumulate(text.translate(_bmp_match_lengths()).encode("latin-1")))
    folds = map(_FOLD_TABLE.__getitem__, map(ord, text))
    return list(accumulate(map(len, map(str.encode, folds))))


class WordChecker:
    """An immutable word set and its automaton; build with ``from_entries``."""

    __slots__ = ("_automaton", "_entries")

    def __init__(self, by_folded_word: Mapping[str, WordEntry]) -> None:
        self._entries = tuple(by_folded_word.values())
        self._automaton: ahocorasick.Automaton | None = None
        if self._entries:
            automaton = ahocorasick.Automaton()
            for entry in self._entries:
                key = _match_form(entry.word)
                automaton.add_word(key, (len(key), entry))
            automaton.make_automaton()
            self._automaton = automaton

    @classmethod
    def from_entries(cls, entries: Iterable[WordEntry]) -> WordChecker:
        """One entry per folded word: a later entry replaces an earlier one (so a
        workspace can re-categorise a word or add a suggestion), except that its
        severity never drops from block to warn.
        """
        merged: dict[str, WordEntry] = {}
        for entry in entries:
            key = fold(entry.word)
            previous = merged.get(key)
            if previous is not None and previous.severity is Severity.BLOCK:
                entry = WordEntry(entry.word, entry.category, Severity.BLOCK, entry.suggestion)
            merged[key] = entry
        return cls(merged)

    @property
    def entries(self) -> tuple[WordEntry, ...]:
        return self._entries

    def with_extra(self, entries: Iterable[WordEntry]) -> WordChecker:
        """This word set plus ``entries`` (a workspace's own words), merged as in
        ``from_entries``."""
        return WordChecker.from_entries([*self._entries, *entries])

    def lint(self, text: str) -> list[Hit]:
        """Hits in ``text`` ordered by start: the longest word at each start, once."""
        if self._automaton is None:
            return []
        found = list(self._automaton.iter(_match_form(text)))
        if not found:
            return []
        ends = _match_ends(text)
        longest: dict[int, tuple[int, WordEntry]] = {}
        for last, (length, entry) in found:
            # The character holding a byte is the first whose fold ends after it.
            start = bisect_right(ends, last - length + 1)
            end = bisect_right(ends, last) + 1
            current = longest.get(start)
            if current is None or end > current[0]:
                longest[start] = (end, entry)
        return [
            Hit(entry.word, entry.category, entry.severity, entry.suggestion, start, end)
            for start, (end, entry) in sorted(longest.items())
        ]


def has_block(hits: Iterable[Hit]) -> bool:
    """True when any hit must stop the message from being sent."""
    return any(hit.severity is Severity.BLOCK for hit in hits)


@cache
def default_checker() -> WordChecker:
    """The shipped word list (``wordlist.json``), built once per process."""
    raw = resources.files("echelon.content").joinpath("wordlist.json").read_text("utf-8")
    return WordChecker.from_entries(_parse_entries(json.loads(raw)["entries"]))


def _parse_entries(rows: Iterable[dict[str, str]]) -> list[WordEntry]:
    entries = []
    for row in rows:
        word = row["word"]
        try:
            category, severity = Category(row["category"]), Severity(row["severity"])
        except ValueError:
            raise InvalidWordEntry(word, "分类或级别无效") from None
        entries.append(WordEntry(word, category, severity, row.get("suggestion")))
    return entries
