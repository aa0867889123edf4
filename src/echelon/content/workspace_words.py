"""A workspace's own words, checked on top of the shipped list.

Words are matched folded (see ``words.fold``), so a workspace holds at most one
entry per folded form: adding ``最 高`` when ``最高`` is listed updates that entry.
A workspace may add words, re-categorise a shipped one or give it a suggestion,
but never lower a shipped ``block`` word to ``warn``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, Literal

from sqlalchemy import Connection, Engine, delete, insert, update

from echelon.content.queries import word_rows
from echelon.content.words import (
    Category,
    Severity,
    WordChecker,
    WordEntry,
    default_checker,
    fold,
)
from echelon.db.tables import workspace_words
from echelon.errors import InvalidInput, NotFound

MAX_WORD_LENGTH = 50
MAX_SUGGESTION_LENGTH = 100

SEVERITY_LABELS = {Severity.BLOCK: "禁止", Severity.WARN: "提醒"}

WordAction = Literal["added", "updated", "unchanged"]


class WordNotListed(NotFound):
    code = "word_not_listed"

    def __init__(self, word: str, shipped: bool) -> None:
        hint = "（它在系统词库中，系统词不能删除）" if shipped else ""
        super().__init__(f"工作区词库中没有「{word}」{hint}")
        self.word = word


class SeverityDowngrade(InvalidInput):
    code = "severity_downgrade"

    def __init__(self, word: str) -> None:
        super().__init__(f"「{word}」在系统词库中是禁止级别，工作区不能把它降为提醒")
        self.word = word


@dataclass(frozen=True, slots=True)
class WorkspaceWord:
    word: str
    category: Category
    severity: Severity
    suggestion: str | None
    created_at: datetime

    @property
    def entry(self) -> WordEntry:
        return WordEntry(self.word, self.category, self.severity, self.suggestion)


def parse_category(value: str) -> Category:
    """The category named ``value``, or an error listing the categories."""
    try:
        return Category(value)
    except ValueError:
        choices = "、".join(f"{c.value}（{c.label}）" for c in Category)
        raise InvalidInput(f"词语分类 {value!r} 未知，可选：{choices}") from None


def parse_severity(value: str) -> Severity:
    """``block`` or ``warn``, or an error saying so."""
    try:
        return Severity(value)
    except ValueError:
        raise InvalidInput(f"级别 {value!r} 未知，可选：block（禁止）、warn（提醒）") from None


def add_word(
    engine: Engine,
    *,
    workspace_id: int,
    word: str,
    category: Category = Category.CUSTOM,
    severity: Severity = Severity.BLOCK,
    suggestion: str | None = None,
    now: datetime,
) -> tuple[WorkspaceWord, WordAction]:
    """List ``word`` for the workspace, or update the entry with the same folded
    form; says whether it was added, updated or already so."""
    word = word.strip()
    suggestion = (suggestion or "").strip() or None
    if len(word) > MAX_WORD_LENGTH:
        raise InvalidInput(f"词语最多 {MAX_WORD_LENGTH} 个字")
    if suggestion is not None and len(suggestion) > MAX_SUGGESTION_LENGTH:
        raise InvalidInput(f"建议改写最多 {MAX_SUGGESTION_LENGTH} 个字")
    entry = WordEntry(word, category, severity, suggestion)  # refuses an empty fold
    if severity is Severity.WARN and _shipped_severity(word) is Severity.BLOCK:
        raise SeverityDowngrade(word)
    with engine.begin() as conn:
        existing = _find(conn, workspace_id, word)
        if existing is None:
            conn.execute(
                insert(workspace_words).values(
                    workspace_id=workspace_id,
                    word=word,
                    category=category.value,
                    severity=severity.value,
                    suggestion=suggestion,
                    created_at=now,
                )
            )
            return WorkspaceWord(word, category, severity, suggestion, now), "added"
        row_id, current = existing
        if current.entry == entry:
            return current, "unchanged"
        conn.execute(
            update(workspace_words)
            .where(workspace_words.c.workspace_id == workspace_id, workspace_words.c.id == row_id)
            .values(
                word=word, category=category.value, severity=severity.value, suggestion=suggestion
            )
        )
    return WorkspaceWord(word, category, severity, suggestion, current.created_at), "updated"


def remove_word(engine: Engine, *, workspace_id: int, word: str) -> WorkspaceWord:
    """Unlist the workspace's entry for ``word`` (any spelling with the same fold)."""
    with engine.begin() as conn:
        existing = _find(conn, workspace_id, word)
        if existing is None:
            raise WordNotListed(word.strip(), _shipped_severity(word) is not None)
        row_id, current = existing
        conn.execute(
            delete(workspace_words).where(
                workspace_words.c.workspace_id == workspace_id, workspace_words.c.id == row_id
            )
        )
    return current


def list_words(engine: Engine, *, workspace_id: int) -> list[WorkspaceWord]:
    """The workspace's own words, oldest first (the shipped list is not included)."""
    with engine.connect() as conn:
        return [_word(row) for row in word_rows(conn, workspace_id=workspace_id)]


def workspace_checker(conn: Connection, *, workspace_id: int) -> WordChecker:
    """The shipped list plus the workspace's words, as every lint of the workspace uses."""
    entries = tuple(_word(row).entry for row in word_rows(conn, workspace_id=workspace_id))
    return _checker(entries)


@lru_cache(maxsize=64)
def _checker(entries: tuple[WordEntry, ...]) -> WordChecker:
    # Keyed by the entries themselves, so an added or removed word is a new key and
    # a stale automaton is never used; building one takes a few milliseconds.
    return default_checker().with_extra(entries)


def _find(conn: Connection, workspace_id: int, word: str) -> tuple[int, WorkspaceWord] | None:
    folded = fold(word)
    for row in word_rows(conn, workspace_id=workspace_id):
        if fold(row.word) == folded:
            return row.id, _word(row)
    return None


def _word(row: Any) -> WorkspaceWord:
    return WorkspaceWord(
        row.word, Category(row.category), Severity(row.severity), row.suggestion, row.created_at
    )


def _shipped_severity(word: str) -> Severity | None:
    folded = fold(word)
    for entry in default_checker().entries:
        if fold(entry.word) == folded:
            return entry.severity
    return None
