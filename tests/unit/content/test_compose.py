"""Composition: signature, opt-out line and separator, and the errors."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from echelon.content.compose import (
    OPT_OUT_TEXTS,
    BodyHasSignature,
    EmptyBody,
    InvalidMessageKind,
    InvalidOptOut,
    InvalidSignature,
    MessageKind,
    compose,
    has_opt_out,
    validate_signature,
)
from echelon.errors import InvalidInput

SIGNATURE = "星河商城"


R, T, TD = OPT_OUT_TEXTS
M, S, V = "marketing", "service", "verification"


@pytest.mark.parametrize(
    ("body", "kind", "opt_out", "expected"),
    [
        ("双11预售开启", M, R, "【星河商城】双11预售开启，拒收请回复R"),
        ("双11预售开启。", M, R, "【星河商城】双11预售开启。拒收请回复R"),
        ("双11预售开启！", M, T, "【星河商城】双11预售开启！回T退订"),
        ("会员日（周三）", M, TD, "【星河商城】会员日（周三）回TD退订"),
        ("详情https://e.cn/a1B2", M, R, "【星河商城】详情https://e.cn/a1B2 拒收请回复R"),
        ("券码 SALE50", M, T, "【星河商城】券码 SALE50 回T退订"),
        ("打开APP", M, T, "【星河商城】打开APP 回T退订"),
        ("详情 e.cn/aB/", M, R, "【星河商城】详情 e.cn/aB/ 拒收请回复R"),
        ("  双11预售开启\n", M, R, "【星河商城】双11预售开启，拒收请回复R"),
        # The body already says how to opt out, in any spelling: nothing appended.
        ("双11预售开启，回T退订", M, R, "【星河商城】双11预售开启，回T退订"),
        ("双11预售开启 退 订回N", M, R, "【星河商城】双11预售开启 退 订回N"),
        ("不想收到请回复ＳＴＯＰ", M, R, "【星河商城】不想收到请回复ＳＴＯＰ"),
        ("回 T 即可", M, T, "【星河商城】回 T 即可"),
        # Not opt-out instructions: the line is appended.
        ("24小时nonstop营业", M, R, "【星河商城】24小时nonstop营业，拒收请回复R"),
        ("non-stop营业", M, R, "【星河商城】non-stop营业，拒收请回复R"),
        ("请回Tom电话", M, R, "【星河商城】请回Tom电话，拒收请回复R"),
        # Service and verification messages carry no opt-out line.
        ("您的订单已发货", S, R, "【星河商城】您的订单已发货"),
        ("验证码 123456，5分钟内有效", V, T, "【星河商城】验证码 123456，5分钟内有效"),
    ],
)
def test_known_compositions(body: str, kind: MessageKind, opt_out: str, expected: str) -> None:
    assert compose(body, kind=kind, signature=SIGNATURE, opt_out_text=opt_out) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("回T退订", True),
        ("拒收请回复R", True),
        ("回TD", True),
        ("回n", True),
        ("回复STOP", True),
        ("stop.", True),
        ("退-订", True),
        ("拒_收", True),
        ("ｓｔｏｐ", True),
        ("stops", False),
        ("stopwatch", False),
        ("nonstop", False),
        ("回Tom", False),
        ("回复T", False),
        ("欢迎光临", False),
    ],
)
def test_opt_out_recognition(text: str, expected: bool) -> None:
    assert has_opt_out(text) is expected


@pytest.mark.parametrize(
    "signature",
    ["星", "星" * 17, "【星河】", "[星河]", "星河】", " 星河", "星河 ", "星\n河", "星河\t商城", ""],
)
def test_bad_signatures(signature: str) -> None:
    with pytest.raises(InvalidSignature) as caught:
        compose("你好", kind="service", signature=signature)
    assert caught.value.code == "invalid_signature"
    assert "短信签名" in caught.value.message


@pytest.mark.parametrize("signature", ["星河", "星" * 16, "ABC Bank", "星河商城·旗舰店"])
def test_good_signatures(signature: str) -> None:
    assert validate_signature(signature) == signature


@pytest.mark.parametrize(
    ("call", "error", "code"),
    [
        (
            lambda: compose("【星河】你好", kind="service", signature=SIGNATURE),
            BodyHasSignature,
            "body_has_signature",
        ),
        (
            lambda: compose("你好】", kind="service", signature=SIGNATURE),
            BodyHasSignature,
            "body_has_signature",
        ),
        (lambda: compose(" \n ", kind="service", signature=SIGNATURE), EmptyBody, "empty_body"),
        (
            lambda: compose("你好", kind="marketing", signature=SIGNATURE, opt_out_text="退订回T"),
            InvalidOptOut,
            "invalid_opt_out",
        ),
        (
            lambda: compose("你好", kind="promo", signature=SIGNATURE),  # type: ignore[arg-type]
            InvalidMessageKind,
            "invalid_message_kind",
        ),
    ],
)
def test_refusals(call: Callable[[], str], error: type[InvalidInput], code: str) -> None:
    with pytest.raises(error) as caught:
        call()
    assert caught.value.code == code
    assert isinstance(caught.value, InvalidInput)


bodies = st.text(min_size=1, max_size=200).filter(
    lambda body: body.strip() != "" and "【" not in body and "】" not in body
)
kinds = st.sampled_from(["marketing", "service", "verification"])


@given(bodies, kinds, st.sampled_from(OPT_OUT_TEXTS))
def test_signature_opens_and_body_follows_verbatim(body: str, kind: MessageKind, opt: str) -> None:
    text = compose(body, kind=kind, signature=SIGNATURE, opt_out_text=opt)
    assert text.startswith(f"【{SIGNATURE}】{body.strip()}")
    assert text.count("【") == 1


@given(bodies, st.sampled_from(OPT_OUT_TEXTS))
def test_marketing_always_says_how_to_opt_out(body: str, opt: str) -> None:
    text = compose(body, kind="marketing", signature=SIGNATURE, opt_out_text=opt)
    assert has_opt_out(text)
    if not has_opt_out(body):
        assert text.endswith(opt)
        assert len(text) - len(f"【{SIGNATURE}】{body.strip()}{opt}") in (0, 1)


@given(bodies, st.sampled_from(["service", "verification"]))
def test_non_marketing_is_signature_plus_body(body: str, kind: MessageKind) -> None:
    assert compose(body, kind=kind, signature=SIGNATURE) == f"【{SIGNATURE}】{body.strip()}"


def test_default_opt_out_is_reply_r() -> None:
    assert compose("你好", kind="marketing", signature=SIGNATURE) == "【星河商城】你好，拒收请回复R"
