"""Hypothesis strategies from the app's own OpenAPI document: for each operation, path
and query parameters, headers and a JSON body drawn from their JSON schemas — mostly
values the schema allows (so requests get past validation into the services), some
just outside its bounds, and now and then any JSON at all."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from hypothesis import strategies as st

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
ANY_JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
# Values that found defects before (past a BIGINT id, a digit int() refuses, NUL) or
# tend to: drawn often, so a run of a few examples per operation still meets them.
EDGE_INTEGERS = st.sampled_from([-1, 0, 2**31, 2**63 - 1, 2**63, 2**64 + 1])
EDGE_TEXTS = st.sampled_from(["", " ", "²", "\x00", "9" * 30, "%_", "../x", "😀", "a" * 300])
# Identifiers that exist in the seeded workspace, so that paths also reach real rows.
KNOWN_NAMES = ["t", "c", "ch", "贵宾", "13800138000", "+8613800138000", "1", "2"]
_ASCII = st.characters(min_codepoint=0x21, max_codepoint=0x7E)


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    spec: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.method.upper()} {self.path}"


def operations(document: dict[str, Any]) -> list[Operation]:
    return [
        Operation(method, path, spec)
        for path, item in document["paths"].items()
        for method, spec in item.items()
    ]


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    params: dict[str, Any]
    headers: dict[str, str]
    body: Any
    has_body: bool


def requests(operation: Operation, document: dict[str, Any]) -> st.SearchStrategy[Request]:
    @st.composite
    def build(draw: st.DrawFn) -> Request:
        url, params, headers = operation.path, {}, {}
        for parameter in operation.spec.get("parameters", []):
            schema = parameter.get("schema", {})
            where, name = parameter["in"], parameter["name"]
            if where == "path":
                value = draw(
                    st.sampled_from(KNOWN_NAMES)
                    | EDGE_TEXTS
                    | EDGE_INTEGERS
                    | _scalar_text(schema, document)
                )
                url = url.replace("{" + name + "}", quote(str(value), safe=""))
            elif where == "query" and (parameter.get("required") or draw(st.booleans())):
                params[name] = draw(from_schema(schema, document))
            elif where == "header" and draw(st.booleans()):
                headers[name] = draw(st.text(_ASCII, min_size=1, max_size=30))
        content = operation.spec.get("requestBody", {}).get("content", {})
        schema = content.get("application/json", {}).get("schema")
        body = None
        if schema is not None:
            body = draw(
                from_schema(schema, document) | ANY_JSON
                if draw(st.integers(0, 9)) == 0
                else from_schema(schema, document)
            )
        return Request(operation.method.upper(), url, params, headers, body, schema is not None)

    return build()


def _scalar_text(schema: dict[str, Any], document: dict[str, Any]) -> st.SearchStrategy[Any]:
    return from_schema(schema, document).map(lambda v: v if isinstance(v, str | int) else str(v))


def from_schema(
    schema: dict[str, Any], document: dict[str, Any], depth: int = 0
) -> st.SearchStrategy[Any]:
    """Values for one JSON schema (the subset FastAPI writes)."""
    if depth > 6:
        return JSON_SCALARS
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return st.deferred(
            lambda: from_schema(document["components"]["schemas"][name], document, depth + 1)
        )
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return st.one_of([from_schema(s, document, depth + 1) for s in schema[key]])
    if "allOf" in schema:
        return from_schema(schema["allOf"][0], document, depth + 1)
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "string":
        return _strings(schema)
    if kind == "integer":
        low, high = schema.get("minimum"), schema.get("maximum")
        if "exclusiveMinimum" in schema:
            low = int(schema["exclusiveMinimum"]) + 1
        if "exclusiveMaximum" in schema:
            high = int(schema["exclusiveMaximum"]) - 1
        inside = st.integers(min_value=low, max_value=high)
        return inside | EDGE_INTEGERS | st.integers(-(2**70), 2**70)
    if kind == "number":
        low = schema.get("minimum", schema.get("exclusiveMinimum"))
        high = schema.get("maximum", schema.get("exclusiveMaximum"))
        return st.floats(
            min_value=low, max_value=high, allow_nan=False, allow_infinity=False
        ) | st.integers(-10, 10**12)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        items = schema.get("items", {})
        low = schema.get("minItems", 0)
        return st.lists(
            from_schema(items, document, depth + 1),
            min_size=min(low, 3),
            max_size=max(min(low, 3), 4),
        )
    if kind == "object" or "properties" in schema:
        return _objects(schema, document, depth)
    return ANY_JSON


def _strings(schema: dict[str, Any]) -> st.SearchStrategy[str]:
    low = schema.get("minLength", 0)
    high = schema.get("maxLength")
    if schema.get("format") == "date-time":
        return st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()) | st.text(
            max_size=30
        )
    if schema.get("format") == "date":
        return st.dates().map(lambda d: d.isoformat()) | st.text(max_size=12)
    pattern = schema.get("pattern")
    if pattern is not None:
        return st.from_regex(pattern, fullmatch=True) | st.text(max_size=20)
    cap = 40 if high is None else min(high, 40)
    inside = st.text(min_size=min(low, cap), max_size=cap) | EDGE_TEXTS
    if high is not None:
        # Just past the bound: what validation must refuse, not the database.
        return inside | st.text(min_size=high + 1, max_size=high + 3)
    return inside


def _objects(
    schema: dict[str, Any], document: dict[str, Any], depth: int
) -> st.SearchStrategy[Any]:
    properties = schema.get("properties", {})
    required = set(schema.get("required", []))
    fixed = {k: from_schema(v, document, depth + 1) for k, v in properties.items() if k in required}
    optional = {
        k: from_schema(v, document, depth + 1) for k, v in properties.items() if k not in required
    }
    base = st.fixed_dictionaries(fixed, optional=optional)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict) and not properties:
        return st.dictionaries(
            st.text(min_size=1, max_size=12), from_schema(extra, document, depth + 1), max_size=4
        )
    if extra is True or (extra is None and not properties):
        return base.flatmap(
            lambda found: st.dictionaries(st.text(max_size=8), ANY_JSON, max_size=2).map(
                lambda more: more | found
            )
        )
    return base
