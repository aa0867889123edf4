"""Word checks: the shipped list, folding, offsets, overlaps, workspace words."""

from __future__ import annotations

import json
from importlib import resources

import pytest
from hypothesis import given
from hypothesis import strategies as st

from echelon.content.words import (
    Category,
    InvalidWordEntry,
    Severity,
    WordChecker,
    WordEntry,
    default_checker,
    fold,
    has_block,
)

CHECKER = default_checker()
WORDS = sorted(entry.word for entry in CHECKER.entries)
SEPARATORS = [" ", "*", ".", "-", "_", "|", "/", "\u200b", "\u3000", "，", "~", "🎉"]


def spans(text: str, checker: WordChecker = CHECKER) -> list[tuple[str, str]]:
    """(listed word, matched original text) for each hit."""
    return [(hit.word, text[hit.start : hit.end]) for hit in checker.lint(text)]


def test_shipped_list_is_documented_and_broad() -> None:
    raw = resources.files("echelon.content").joinpath("wordlist.json").read_text("utf-8")
    document = json.loads(raw)
    assert "广告法" in document["_source"]
    assert len(document["entries"]) == len(CHECKER.entries) >= 150
    by_category = {category: 0 for category in Category}
    for entry in CHECKER.entries:
        by_category[entry.category] += 1
    required = set(Category) - {Category.MEDICAL, Category.CUSTOM}
    assert all(by_category[category] >= 5 for category in required)
    assert {entry.severity for entry in CHECKER.entries} == {Severity.BLOCK, Severity.WARN}


def test_default_checker_is_built_once() -> None:
    assert default_checker() is CHECKER


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("双11预售开启，会员专享50元券，拒收请回复R", []),
        ("本店最高优惠", [("最高", "最高")]),
        ("本店最 高优惠", [("最高", "最 高")]),
        ("本店最*高优惠", [("最高", "最*高")]),
        ("本店最\u200b高优惠", [("最高", "最\u200b高")]),
        ("国家级 品质", [("国家级", "国家级")]),
        ("国·家·级", [("国家级", "国·家·级")]),
        ("全网最低价", [("全网最低价", "全网最低价"), ("最低价", "最低价")]),
        ("全网最低", [("全网最低", "全网最低"), ("最低", "最低")]),
        ("100%正品", [("100%", "100%")]),
        ("１００％正品", [("100%", "１００％")]),
        ("满100减20", []),
        ("恭喜您中奖了", [("恭喜您中奖", "恭喜您中奖"), ("中奖", "中奖")]),
        ("A货", [("A货", "A货")]),
        ("ａ货", [("A货", "ａ货")]),
    ],
)
def test_known_hits(text: str, expected: list[tuple[str, str]]) -> None:
    assert spans(text) == expected


def test_lone_surrogates_are_separators() -> None:
    assert spans("最\ud800高") == [("最高", "最\ud800高")]


def test_categories_have_chinese_labels() -> None:
    assert Category.ABSOLUTE.label == "广告法极限用语"
    assert all(category.label for category in Category)


def test_hit_fields_and_offsets() -> None:
    [hit] = CHECKER.lint("欢迎光临，第 一 次来店")
    assert (hit.word, hit.category, hit.severity, hit.suggestion) == (
        "第一",
        Category.ABSOLUTE,
        Severity.WARN,
        "领先",
    )
    assert (hit.start, hit.end) == (5, 8)


def test_has_block() -> None:
    assert has_block(CHECKER.lint("全网最低价"))
    assert not has_block(CHECKER.lint("第一次来店"))
    assert not has_block([])


def test_extra_words_are_matched_after_folding() -> None:
    checker = CHECKER.with_extra([WordEntry("STOP", Category.CUSTOM, Severity.WARN)])
    assert spans("回复ＳＴＯＰ", checker) == [("STOP", "ＳＴＯＰ")]
    assert spans("回复s t o p", checker) == [("STOP", "s t o p")]
    assert spans("回复ＳＴＯＰ") == []
    assert len(checker.entries) == len(CHECKER.entries) + 1


def test_workspace_may_tighten_but_not_relax() -> None:
    relaxed = CHECKER.with_extra([WordEntry("最佳", Category.CUSTOM, Severity.WARN, "优选")])
    [hit] = relaxed.lint("最佳选择")
    assert (hit.category, hit.severity, hit.suggestion) == (Category.CUSTOM, Severity.BLOCK, "优选")
    tightened = CHECKER.with_extra([WordEntry("第一", Category.ABSOLUTE, Severity.BLOCK)])
    assert has_block(tightened.lint("第一次"))
    assert len(tightened.entries) == len(CHECKER.entries)


def test_empty_word_set_finds_nothing() -> None:
    assert WordChecker.from_entries([]).lint("最高最佳") == []


@pytest.mark.parametrize("word", ["", "  ", "*-*", "\u200b"])
def test_word_must_survive_folding(word: str) -> None:
    with pytest.raises(InvalidWordEntry) as caught:
        WordEntry(word, Category.CUSTOM, Severity.WARN)
    assert caught.value.code == "invalid_word_entry"


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("ＳＴＯＰ", "stop"),
        ("最 高*优-惠_了|吗/？", "最高优惠了吗"),
        ("①号", "1号"),
        ("Straße", "strasse"),
        ("100％", "100%"),
        ("𝐒𝐓𝐎𝐏🎉", "stop"),
    ],
)
def test_known_folds(text: str, folded: str) -> None:
    assert fold(text) == folded


@given(st.text(), st.text())
def test_fold_works_per_character(left: str, right: str) -> None:
    assert fold(left + right) == fold(left) + fold(right)


@given(st.text(max_size=200))
def test_hits_are_ordered_unique_and_point_at_the_word(text: str) -> None:
    hits = CHECKER.lint(text)
    starts = [hit.start for hit in hits]
    assert starts == sorted(set(starts))
    for hit in hits:
        assert 0 <= hit.start < hit.end <= len(text)
        assert fold(hit.word) in fold(text[hit.start : hit.end])


@given(
    st.text(max_size=30),
    st.sampled_from(WORDS),
    st.lists(st.sampled_from(SEPARATORS), max_size=3),
    st.text(max_size=30),
)
def test_separated_word_is_found_where_it_starts(
    prefix: str, word: str, separators: list[str], suffix: str
) -> None:
    disguised = "".join(separators).join(word)
    text = prefix + disguised + suffix
    start, end = len(prefix), len(prefix) + len(disguised)
    hit_ends = {hit.start: hit.end for hit in CHECKER.lint(text)}
    assert start in hit_ends
    assert hit_ends[start] >= end


@given(st.lists(st.one_of(st.sampled_from(WORDS), st.text(max_size=8)), max_size=8))
def test_any_hit_exactly_when_a_folded_word_occurs(pieces: list[str]) -> None:
    text = "".join(pieces)
    expected = any(fold(word) in fold(text) for word in WORDS)
    assert bool(CHECKER.lint(text)) is expected
