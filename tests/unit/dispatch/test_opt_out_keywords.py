"""Opt-out keywords: what people really reply, and properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from echelon.dispatch.rules import DEFAULT_OPT_OUT_KEYWORDS, OptOutKeywords

KEYWORDS = OptOutKeywords.of()


@pytest.mark.parametrize(
    ("reply", "keyword"),
    [
        ("TD", "td"),
        ("td", "td"),
        ("ＴＤ", "td"),
        (" T ", "t"),
        ("t.", "t"),
        ("R", "r"),
        ("n", "n"),
        ("退订", "退订"),
        ("我要退订！", "退订"),
        ("取消短信", "取消"),
        ("STOP", "stop"),
        ("Stop!", "stop"),
        ("unsubscribe", "unsubscribe"),
        ("拒收", "拒收"),
    ],
)
def test_replies_that_opt_out(reply: str, keyword: str) -> None:
    assert KEYWORDS.match(reply) == keyword


@pytest.mark.parametrize(
    "reply", ["Thanks", "好的", "TDD", "stop by tomorrow", "请问几点开门", "1", "", "   "]
)
def test_replies_that_do_not(reply: str) -> None:
    assert KEYWORDS.match(reply) is None


@given(
    st.sampled_from(DEFAULT_OPT_OUT_KEYWORDS),
    st.text(" .!！,，\u3000", max_size=4),
    st.text(" .!！,，\u3000", max_size=4),
    st.booleans(),
)
def test_a_keyword_with_any_padding_case_or_width_opts_out(
    keyword: str, before: str, after: str, upper: bool
) -> None:
    spelled = keyword.upper() if upper else keyword.lower()
    assert KEYWORDS.match(before + spelled + after) is not None


@given(st.text(alphabet=st.characters(codec="ascii", categories=["Ll", "Lu"]), min_size=1))
def test_a_latin_word_opts_out_only_if_it_is_a_keyword(word: str) -> None:
    expected = word.casefold() if word.upper() in DEFAULT_OPT_OUT_KEYWORDS else None
    assert KEYWORDS.match(word) == expected


def test_workspace_keywords_replace_the_defaults() -> None:
    custom = OptOutKeywords.of(["QX", "不要再发"])
    assert custom.match("qx") == "qx"
    assert custom.match("请不要再发了") == "不要再发"
    assert custom.match("TD") is None
