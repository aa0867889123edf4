"""Rendering: variables and fallbacks, errors that name what failed, hostile templates."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from echelon.content.render import (
    MAX_RENDERED_LENGTH,
    BadTemplate,
    MissingVariable,
    RenderedTooLong,
    RenderFailed,
    UnsafeTemplate,
    compile_template,
)
from echelon.errors import EchelonError, InvalidInput

PHONE = "+8613800138000"
MARKETING = "{{ name | default('会员') }}您好，双11预售开启，会员专享{{ coupon }}券，详情{{ link }}"


def test_renders_variables_and_fallback() -> None:
    template = compile_template(MARKETING)
    assert template.variables == {"name", "coupon", "link"}
    values = {"name": "张伟", "coupon": "50元", "link": "https://e.cn/a1"}
    assert template.render(values, contact=PHONE) == (
        "张伟您好，双11预售开启，会员专享50元券，详情https://e.cn/a1"
    )
    without_name = {"coupon": "50元", "link": "https://e.cn/a1"}
    assert template.render(without_name, contact=PHONE).startswith("会员您好")


def test_none_counts_as_missing() -> None:
    template = compile_template(MARKETING)
    values = {"name": None, "coupon": "50元", "link": "x"}
    assert template.render(values, contact=PHONE).startswith("会员您好")
    with pytest.raises(MissingVariable):
        template.render({"name": "张伟", "coupon": None, "link": "x"}, contact=PHONE)


def test_missing_variable_names_variable_and_contact() -> None:
    template = compile_template(MARKETING)
    with pytest.raises(MissingVariable) as caught:
        template.render({"name": "张伟", "link": "x"}, contact=PHONE)
    error = caught.value
    assert (error.variable, error.contact) == ("coupon", PHONE)
    assert error.message == "模板缺少变量 coupon（联系人 +8613800138000）"
    assert error.code == "missing_variable"
    assert isinstance(error, InvalidInput)


def test_link_callable_from_the_caller() -> None:
    template = compile_template("详情{{ link('https://shop.cn/11') }}")
    assert template.variables == {"link"}
    rendered = template.render({"link": lambda url: f"https://e.cn/{len(url)}"}, contact=PHONE)
    assert rendered == "详情https://e.cn/18"


@pytest.mark.parametrize(
    ("source", "values", "expected"),
    [
        ("{{ x }}", {"x": "<b>&amp;"}, "<b>&amp;"),
        ("{{ n }}件", {"n": 3}, "3件"),
        ("{% if vip %}尊享{% else %}会员{% endif %}价", {"vip": True}, "尊享价"),
        ("{% if vip %}尊享{% else %}会员{% endif %}价", {"vip": False}, "会员价"),
        ("{{ name | trim | upper }}", {"name": " ann "}, "ANN"),
        ("{{ name.upper() }}", {"name": "ann"}, "ANN"),
        ("{{ (price * 0.8) | round(1) }}元", {"price": 99}, "79.2元"),
        ("{{ tags | join('、') }}", {"tags": ["美妆", "数码"]}, "美妆、数码"),
        ("{{ d.get('k', '无') }}", {"d": {}}, "无"),
        ("{{ name | truncate(5, true, '…', 0) }}", {"name": "一二三四五六七"}, "一二三四…"),
        ("你好{# 备注 #}\n", {}, "你好\n"),
    ],
)
def test_known_renders(source: str, values: dict[str, object], expected: str) -> None:
    assert compile_template(source).render(values, contact=PHONE) == expected


@pytest.mark.parametrize(
    ("source", "line", "fragment"),
    [
        ("{{ name }", 1, "语法错误"),
        ("第一行\n第二行{{ name }\n", 2, "语法错误"),
        ("{% if x %}没有结束", 1, "语法错误"),
        ("{{ name | center(9) }}", 1, "不支持过滤器 center"),
        ("{% for c in coupons %}{{ c }}{% endfor %}", 1, "不支持 {% for %}"),
        ("\n{% macro m() %}{% endmacro %}", 2, "不支持 {% macro %}"),
        ("{% include '/etc/passwd' %}", 1, "不支持 {% include %}"),
        ("{% import 'x.html' as x %}", 1, "不支持 {% import %}"),
        ("{% from 'x.html' import y %}", 1, "不支持 {% from … import %}"),
        ("{% extends 'base.html' %}", 1, "不支持 {% extends %}"),
    ],
)
def test_bad_templates_name_the_line(source: str, line: int, fragment: str) -> None:
    with pytest.raises(BadTemplate) as caught:
        compile_template(source)
    assert caught.value.line == line
    assert f"第 {line} 行" in caught.value.message
    assert fragment in caught.value.message
    assert caught.value.code == "bad_template"


HOSTILE = [
    ("{{ ''.__class__.__mro__ }}", UnsafeTemplate),
    ("{{ ''.__class__.__mro__[1].__subclasses__() }}", UnsafeTemplate),
    ("{{ ().__class__.__base__.__subclasses__() }}", UnsafeTemplate),
    ("{{ self._TemplateReference__context }}", UnsafeTemplate),
    ("{{ link.__globals__ }}", UnsafeTemplate),
    ("{{ link.__code__.co_consts }}", UnsafeTemplate),
    ("{{ name.__len__() }}", UnsafeTemplate),
    ("{{ name.format_map({}) }}", UnsafeTemplate),
    ("{{ '{0.__class__}'.format(name) }}", UnsafeTemplate),
    ("{{ '{:>999999999}'.format(1) }}", UnsafeTemplate),
    ("{{ '%999999999d' % 1 }}", UnsafeTemplate),
    ("{{ 'x'.center(10**9) }}", UnsafeTemplate),
    ("{{ 'x'.ljust(10**9) }}", UnsafeTemplate),
    ("{{ 9 ** (9 ** 9) }}", UnsafeTemplate),
    ("{{ 'a' * 10**9 }}", RenderedTooLong),
    ("{{ [0] * 10**9 }}", RenderedTooLong),
    ("{{ name | replace('', name * 400) }}", RenderedTooLong),
    ("{{ name.replace('', 'x' * 1000) }}", RenderedTooLong),
    # Each step multiplies the length by eleven: 2, 32, 362, 4000 (refused), ...
    ("{{ name" + "|replace('', 'xxxxxxxxxx')" * 8 + " }}", RenderedTooLong),
    ("{% set s = 'a' * 1000 %}{{ s ~ s ~ s }}", RenderedTooLong),
    ("{{ cycler.__init__.__globals__ }}", EchelonError),
    ("{{ range(10**9) | list }}", BadTemplate),
    ("{{ range(10**9) }}", MissingVariable),
    ("{{ lipsum(10**6) }}", MissingVariable),
    ("{{ namespace() }}", MissingVariable),
    ("{% for i in range(10**9) %}{% endfor %}", BadTemplate),
    ("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}", BadTemplate),
    ("{{ 1 / 0 }}", RenderFailed),
]


@pytest.mark.timeout(20)
@pytest.mark.parametrize(("source", "error"), HOSTILE)
def test_hostile_templates_raise_domain_errors_quickly(
    source: str, error: type[EchelonError]
) -> None:
    values = {"name": "张伟", "link": lambda url: url}
    started = time.perf_counter()
    with pytest.raises(error):
        compile_template(source).render(values, contact=PHONE)
    assert time.perf_counter() - started < 2


def test_long_values_are_refused_not_truncated() -> None:
    template = compile_template("{{ note }}")
    assert len(template.render({"note": "字" * MAX_RENDERED_LENGTH}, contact=PHONE)) == 2000
    with pytest.raises(RenderedTooLong) as caught:
        template.render({"note": "字" * (MAX_RENDERED_LENGTH + 1)}, contact=PHONE)
    assert PHONE in caught.value.message


def test_errors_from_the_callers_link_pass_through() -> None:
    class LinkQuotaExceeded(InvalidInput):
        code = "link_quota_exceeded"

    def link(url: str) -> str:
        raise LinkQuotaExceeded("短链额度已用完")

    with pytest.raises(LinkQuotaExceeded):
        compile_template("{{ link('https://a.cn') }}").render({"link": link}, contact=PHONE)


plain_text = st.text(max_size=300).filter(lambda text: "{" not in text)


@given(plain_text)
def test_text_without_tags_renders_unchanged_but_for_line_breaks(text: str) -> None:
    expected = text.replace("\r\n", "\n").replace("\r", "\n")
    assert compile_template(text).render({}, contact=PHONE) == expected


@given(st.text(max_size=MAX_RENDERED_LENGTH))
def test_a_value_is_inserted_verbatim(value: str) -> None:
    assert compile_template("【{{ v }}】").render({"v": value}, contact=PHONE) == f"【{value}】"


# Plain templates (text, {{ v }}, {{ v | default('…') }}) are rendered by joining their
# pieces; "{% if true %}{% endif %}" adds nothing to the text but sends a template
# through Jinja, so the two must agree on every text and every error.
_NAMES = ("name", "会员等级", "v")


def _quotable(text: str) -> bool:
    """Fits between '' in a template as it is."""
    return "'" not in text and "\\" not in text


_piece = st.one_of(
    plain_text.map(lambda text: text[:20]),
    st.sampled_from(_NAMES).map(lambda name: f"{{{{ {name} }}}}"),
    st.tuples(st.sampled_from(_NAMES), st.text(max_size=5).filter(_quotable)).map(
        lambda pair: f"{{{{ {pair[0]} | default('{pair[1]}') }}}}"
    ),
    st.sampled_from(_NAMES).map(lambda name: f'{{{{{name}|d("会员")}}}}'),
    st.just("{{ '常量' }}"),
)
_value = st.one_of(
    st.none(),
    st.text(max_size=30),
    st.integers(),
    st.floats(allow_nan=False),
    st.booleans(),
    st.lists(st.text(max_size=3), max_size=2),
    st.just("x" * (MAX_RENDERED_LENGTH + 1)),
)


def _outcome(source: str, values: dict[str, object]) -> str:
    try:
        return compile_template(source).render(values, contact=PHONE)
    except RenderFailed as exc:
        return f"{type(exc).__name__}: {exc.message}"


# Each example compiles two templates: no deadline, so a busy machine cannot fail it.
@settings(deadline=None)
@given(
    st.lists(_piece, max_size=6).map("".join),
    st.dictionaries(st.sampled_from(_NAMES), _value),
)
def test_plain_templates_render_as_jinja_does(source: str, values: dict[str, object]) -> None:
    through_jinja = f"{source}{{% if true %}}{{% endif %}}"
    assert _outcome(source, values) == _outcome(through_jinja, values)


def test_only_plain_templates_skip_jinja() -> None:
    assert compile_template("{{ name | default('会员') }}您好{{ v }}")._pieces is not None
    for source in ("{% if v %}x{% endif %}", "{{ v | upper }}", "{{ self }}", "{{ v.x }}"):
        assert compile_template(source)._pieces is None
