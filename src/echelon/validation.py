"""Pydantic's validation errors said in words a marketer reads (zh-CN).

Segment and journey definitions are JSON a person writes; each problem is reported as
where it is (the caller's) and this: what is wrong there.
"""

from __future__ import annotations

from pydantic_core import ErrorDetails

_TYPES = {
    "string_type": "应为文字",
    "int_type": "应为整数",
    "int_parsing": "应为整数",
    "int_from_float": "应为整数",
    "bool_type": "应为 true 或 false",
    "bool_parsing": "应为 true 或 false",
    "time_type": "应为时刻，如 10:00",
    "time_parsing": "应为时刻，如 10:00",
    "decimal_type": "应为数字",
    "decimal_parsing": "应为数字",
    "list_type": "应为列表 [...]",
    "dict_type": "应为对象 {...}",
    "model_type": "应为对象 {...}",
    "model_attributes_type": "应为对象 {...}",
    "missing": "缺少这一项",
    "extra_forbidden": "不认识这一项（拼写有误？）",
    "string_too_short": "不能为空",
}


def explain(
    error: ErrorDetails,
    *,
    tagged: str = "",
    known_tags: str | None = None,
    tag_field: str = "type",
    pattern: str | None = None,
) -> str:
    """What is wrong, for one of ``ValidationError.errors()``. ``tagged`` names what a
    tagged union chooses between (「条件」) and ``tag_field`` the key that chooses,
    ``known_tags`` lists the
    types a tagged union accepts (default: pydantic's own list); ``pattern`` says in
    words what a pattern-checked string may hold."""
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind == "union_tag_invalid":
        known = known_tags or ctx.get("expected_tags")
        return f"未知的{tagged}类型「{ctx.get('tag')}」，可用：{known}"
    if kind == "union_tag_not_found":
        return f'须有 "{tag_field}"'
    if kind == "literal_error":
        return f"应为 {ctx.get('expected')}"
    if kind in ("greater_than_equal", "greater_than"):
        return f"须 {'≥' if kind.endswith('equal') else '>'} {ctx.get('ge', ctx.get('gt'))}"
    if kind in ("less_than_equal", "less_than"):
        return f"须 {'≤' if kind.endswith('equal') else '<'} {ctx.get('le', ctx.get('lt'))}"
    if kind == "too_short":
        return f"至少需要 {ctx.get('min_length')} 项"
    if kind == "too_long":
        return f"最多 {ctx.get('max_length')} 项"
    if kind == "string_too_long":
        return f"最多 {ctx.get('max_length')} 个字符"
    if kind == "decimal_max_places":
        return f"最多 {ctx.get('decimal_places')} 位小数"
    if kind == "string_pattern_mismatch" and pattern is not None:
        return pattern
    return _TYPES.get(kind, error["msg"])
