"""Rendering: a message template compiled once, rendered per contact.

Templates are Jinja2 run in ``SandboxedEnvironment`` and written by workspace
users, so they are treated as hostile: no loops, macros, includes or imports
(compile time), no private attributes and only a few string methods (run time),
operators and filters that could build huge values are bounded, and every failure
surfaces as a domain error. A template is then linear in its own size to render.

Variables are whatever the caller passes; a missing one (or one that is ``None``,
e.g. an empty contact field) is an error naming it, unless the template gives a
fallback: ``{{ name | default('会员') }}``. The tracking feature supplies ``link``:
a string, or a callable ``link(url) -> str`` used as ``{{ link('https://…') }}``.
Line breaks in the template (``\r\n``, ``\r``) become ``\n``, one unit each.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from jinja2 import StrictUndefined, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError, TemplateRuntimeError, UndefinedError
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment
from jinja2.utils import missing

from echelon.errors import EchelonError, InvalidInput

MAX_RENDERED_LENGTH: Final = 2000
"""Characters a rendered body may have; generous, as composing caps messages at 500."""

_MAX_INT_BITS = 4096

_FILTERS: Final = (
    *("abs", "capitalize", "count", "d", "default", "first", "float", "int", "join", "last"),
    *("length", "lower", "replace", "round", "string", "title", "trim", "truncate", "upper"),
)
# Filters whose output can be many times their input, so their results are sized.
_GROWING_FILTERS: Final = frozenset({"join", "replace"})

_STR_METHODS: Final = ("upper", "lower", "strip", "lstrip", "rstrip", "title", "capitalize")
_SAFE_METHODS: Final[Mapping[type, frozenset[str]]] = {
    str: frozenset((*_STR_METHODS, "replace", "startswith", "endswith")),
    dict: frozenset({"get"}),
}
_DATA_TYPES: Final = (str, bytes, bytearray, int, float, complex, list, tuple, dict, set, frozenset)

_REFUSED: Final[Mapping[type[nodes.Node], str]] = {
    nodes.For: "for",
    nodes.Macro: "macro",
    nodes.CallBlock: "call",
    nodes.Include: "include",
    nodes.Import: "import",
    nodes.FromImport: "from … import",
    nodes.Extends: "extends",
    nodes.Block: "block",
}
_UNKNOWN_FILTER = re.compile(r"No filter named '([^']+)'")


class BadTemplate(InvalidInput):
    code = "bad_template"

    def __init__(self, line: int | None, problem: str) -> None:
        where = f"第 {line} 行" if line else ""
        super().__init__(f"模板{where}有误：{problem}")
        self.line = line
        self.problem = problem


class RenderFailed(InvalidInput):
    code = "render_failed"

    def __init__(self, contact: str, detail: str, message: str | None = None) -> None:
        super().__init__(message or f"模板渲染失败（联系人 {contact}）：{detail}")
        self.contact = contact
        self.detail = detail


class MissingVariable(RenderFailed):
    code = "missing_variable"

    def __init__(self, variable: str, contact: str) -> None:
        super().__init__(contact, variable, f"模板缺少变量 {variable}（联系人 {contact}）")
        self.variable = variable


class UnsafeTemplate(RenderFailed):
    code = "unsafe_template"

    def __init__(self, contact: str, detail: str) -> None:
        message = f"模板含有不允许的操作，已拒绝渲染（联系人 {contact}）：{detail}"
        super().__init__(contact, detail, message)


class RenderedTooLong(RenderFailed):
    code = "rendered_too_long"

    def __init__(self, contact: str) -> None:
        message = f"渲染结果超过 {MAX_RENDERED_LENGTH} 字（联系人 {contact}），请检查模板和变量"
        super().__init__(contact, "too long", message)


class _TooLarge(Exception):
    """A value inside the template outgrew MAX_RENDERED_LENGTH."""


class _MissingName(UndefinedError):
    """Raised with the missing variable's name as its only argument."""


class _Undefined(StrictUndefined):
    """StrictUndefined whose failure carries the variable's name, not a sentence."""

    __slots__ = ()

    def __init__(
        self,
        hint: str | None = None,
        obj: Any = missing,
        name: str | None = None,
        exc: type[TemplateRuntimeError] = UndefinedError,
    ) -> None:
        # The sandbox passes exc=SecurityError for refused attributes; keep it.
        if exc is UndefinedError and hint is None:
            exc = _MissingName
        super().__init__(hint, obj, name, exc)

    @property
    def _undefined_message(self) -> str:
        if self._undefined_exception is _MissingName:
            return str(self._undefined_name)
        return str(super()._undefined_message)


def _sized(value: Any) -> Any:
    if isinstance(value, str | list | tuple) and len(value) > MAX_RENDERED_LENGTH:
        raise _TooLarge
    return value


def _sized_filter(func: Callable[..., Any]) -> Callable[..., Any]:
    # functools.wraps copies ``jinja_pass_arg``, so Jinja still passes the context.
    @functools.wraps(func)
    def sized(*args: Any, **kwargs: Any) -> Any:
        return _sized(func(*args, **kwargs))

    return sized


class _Environment(SandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for sequence, times in ((left, right), (right, left)):
                if (
                    isinstance(sequence, str | list | tuple)
                    and isinstance(times, int)
                    and len(sequence) * times > MAX_RENDERED_LENGTH
                ):
                    raise _TooLarge
        elif (
            operator == "**"
            and isinstance(left, int)
            and isinstance(right, int)
            and abs(left).bit_length() * right > _MAX_INT_BITS
        ):
            raise SecurityError(f"{left} ** {right} is too large")
        elif operator == "%" and isinstance(left, str):
            raise SecurityError("printf-style formatting is not allowed")
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        # Methods of plain data are refused except a few harmless string/dict ones;
        # the sandbox wraps str.format, so look through ``__wrapped__`` to see it.
        target = getattr(__obj, "__wrapped__", __obj)
        owner = getattr(target, "__self__", None)
        if isinstance(owner, _DATA_TYPES):
            name = getattr(target, "__name__", "?")
            if name not in _SAFE_METHODS.get(type(owner), frozenset()):
                raise SecurityError(f"{type(owner).__name__}.{name}() is not allowed")
        return _sized(super().call(__context, __obj, *args, **kwargs))


def _environment() -> _Environment:
    env = _Environment(undefined=_Undefined, autoescape=False, keep_trailing_newline=True)
    # No cycler, joiner, lipsum, namespace, range: nothing an SMS needs, each one
    # more surface. A name used anyway is reported as a missing variable.
    env.globals.clear()
    env.filters = {
        name: _sized_filter(env.filters[name]) if name in _GROWING_FILTERS else env.filters[name]
        for name in _FILTERS
    }
    return env


_ENV: Final = _environment()


class CompiledTemplate:
    """A template parsed, checked and compiled once; ``render`` is the hot path."""

    __slots__ = ("_pieces", "_template", "source", "variables")

    def __init__(self, source: str) -> None:
        self.source = source
        try:
            ast = _ENV.parse(source)
            _refuse_constructs(ast)
            self.variables: frozenset[str] = frozenset(meta.find_undeclared_variables(ast))
            self._pieces = _plain_pieces(ast, self.variables)
            self._template = _ENV.from_string(ast)
            # Jinja makes a template's globals a ChainMap over the (empty) environment
            # globals and iterates it in Python on every render; a plain empty dict
            # says the same and saves a fifth of the render time.
            self._template.globals = {}
        except TemplateSyntaxError as exc:
            raise BadTemplate(exc.lineno, _explain(exc.message or "")) from None

    def render(self, variables: Mapping[str, object], *, contact: str) -> str:
        """The body for one contact (``contact`` only names them in errors)."""
        try:
            if self._pieces is not None:
                text = _join(self._pieces, variables)
            else:
                if None in variables.values():
                    variables = {k: value for k, value in variables.items() if value is not None}
                text = self._template.render(variables)
        except _MissingName as exc:
            raise MissingVariable(str(exc), contact) from None
        except SecurityError as exc:
            raise UnsafeTemplate(contact, str(exc)) from None
        except _TooLarge:
            raise RenderedTooLong(contact) from None
        except EchelonError:
            raise  # from a caller's callable such as ``link``: already a domain error
        except Exception as exc:
            # Anything else is this template failing on these values (1/0, a bad
            # int(), an unknown filter inside {% if %}, which Jinja reports only
            # once reached): report it against the contact.
            raise RenderFailed(contact, f"{type(exc).__name__}: {exc}") from exc
        if len(text) > MAX_RENDERED_LENGTH:
            raise RenderedTooLong(contact)
        return text


# A plain template — text, ``{{ name }}`` and ``{{ name | default('会员') }}`` only, as
# most SMS templates are — is rendered by joining its pieces exactly as Jinja's compiled
# code would (``str`` of each value, the fallback for a missing or None one), without
# building a Jinja context per render: the planner renders once per distinct contact.
_Variable = tuple[str, str | None]  # name, fallback (None: the variable is required)


def _plain_pieces(
    ast: nodes.Template, variables: frozenset[str]
) -> tuple[str | _Variable, ...] | None:
    """The template as literal strings and variables, or None unless it is plain."""
    pieces: list[str | _Variable] = []
    for output in ast.body:
        if not isinstance(output, nodes.Output):
            return None
        for node in output.nodes:
            if isinstance(node, nodes.TemplateData):
                pieces.append(node.data)
            elif isinstance(node, nodes.Const) and isinstance(node.value, str):
                pieces.append(node.value)
            elif isinstance(node, nodes.Name) and node.name in variables:
                pieces.append((node.name, None))
            elif (
                isinstance(node, nodes.Filter)
                and node.name in ("default", "d")
                and isinstance(node.node, nodes.Name)
                and node.node.name in variables
                and len(node.args) == 1
                and isinstance(node.args[0], nodes.Const)
                and isinstance(node.args[0].value, str)
                and not node.kwargs
                and node.dyn_args is None
                and node.dyn_kwargs is None
            ):
                pieces.append((node.node.name, node.args[0].value))
            else:
                return None
    return tuple(pieces)


def _join(pieces: tuple[str | _Variable, ...], variables: Mapping[str, object]) -> str:
    parts: list[str] = []
    for piece in pieces:
        if isinstance(piece, str):
            parts.append(piece)
            continue
        name, fallback = piece
        value = variables.get(name)
        if value is not None:
            parts.append(str(value))
        elif fallback is not None:
            parts.append(fallback)
        else:
            raise _MissingName(name)
    return "".join(parts)


def compile_template(body: str) -> CompiledTemplate:
    """Compile ``body`` once for any number of renders; raise ``BadTemplate`` if it
    cannot be parsed or uses a refused construct."""
    return CompiledTemplate(body)


def _refuse_constructs(ast: nodes.Template) -> None:
    for node in ast.find_all(tuple(_REFUSED)):
        tag = _REFUSED[type(node)]
        raise BadTemplate(
            node.lineno, f"不支持 {{% {tag} %}}：短信模板只能使用变量、过滤器和 if 条件"
        )


def _explain(message: str) -> str:
    unknown = _UNKNOWN_FILTER.search(message)
    if unknown:
        return f"不支持过滤器 {unknown.group(1)}，可用：{', '.join(_FILTERS)}"
    return f"语法错误（{message}）"
