"""The built-in journeys' zh-CN templates: they compile, render with what their
journeys supply, compose with a signature, and pass the shipped word list."""

from __future__ import annotations

import pytest

from echelon.content.compose import compose
from echelon.content.length import count_parts
from echelon.content.render import compile_template
from echelon.content.templates import check_body
from echelon.content.words import default_checker, has_block
from echelon.journeys.builtins import BUILTINS, BuiltinTemplate

TEMPLATES = [(b.key, t) for b in BUILTINS.values() for t in b.templates]


def link(url: object) -> str:
    return "https://s.echelon.cn/Ab3dE9x"


@pytest.mark.parametrize(("key", "template"), TEMPLATES, ids=[t.name for _, t in TEMPLATES])
def test_builtin_template_texts(key: str, template: BuiltinTemplate) -> None:
    body = check_body(template.body)
    compiled = compile_template(body)
    assert compiled.variables <= {
        "name", "coupon", "link", "category", "points", "expires_on", "order_id", "express",
        "tracking_no",
    }  # fmt: skip
    variables = {"name": "张三", "coupon": "K7Q2M9PX", "link": link, "order_id": "A20260302"}
    text = compose(
        compiled.render(variables, contact="13800138000"),
        kind=template.kind,
        signature="星河商城",
        opt_out_text="拒收请回复R",
    )
    assert text.startswith("【星河商城】张三") or text.startswith("【星河商城】您的订单A20260302")
    assert not has_block(default_checker().lint(text)), text
    assert count_parts(text).parts <= 2, text
