"""SQL the two databases spell differently, as SQLAlchemy constructs that compile to
the same meaning on each: so one Core query gives the same members on both.

- ``json_text``: a JSON property as text (``5`` → ``'5'``, ``true`` → ``'true'``, a
  number spelled in full as stored);
- ``as_number``: text that is a plain decimal number (``-12``, ``3.5``) as a number,
  anything else NULL — never an error;
- ``binary_text``: text compared by code point (PostgreSQL's collation might not);
- ``contains_text``: substring test, case-sensitive on both;
- ``shifted``: a stored time plus whole seconds, exact to the microsecond;
- ``no_index``: the same value, which SQLite may not look up through an index;
- ``among``: a contact id among the ``contact_id`` of a set of rows, read once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ColumnElement, Numeric, String, literal, literal_column
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from echelon.db.types import UTCDateTime

_PLAIN_NUMBER = r"^-?[0-9]+(\.[0-9]+)?$"


class json_text(FunctionElement[str]):
    type = String()
    inherit_cache = True
    name = "json_text"


class as_number(FunctionElement[Any]):
    type = Numeric()
    inherit_cache = True
    name = "as_number"


class binary_text(FunctionElement[str]):
    type = String()
    inherit_cache = True
    name = "binary_text"


class contains_text(FunctionElement[bool]):
    type = Boolean()
    inherit_cache = True
    name = "contains_text"
    _is_implicitly_boolean = True


class shifted(FunctionElement[datetime]):
    type = UTCDateTime()
    inherit_cache = True
    name = "shifted"


class no_index(FunctionElement[Any]):
    """SQLite plans without statistics (nothing here runs ANALYZE), so in a sub-query
    run once per contact a test such as ``workspace_id = 1`` can tie with
    ``contact_id = ?`` and win: a workspace-wide index then gets scanned once per
    contact. SQLite's unary ``+`` leaves it the contact's own index; PostgreSQL, which
    has statistics, gets the plain value."""

    inherit_cache = True
    name = "no_index"

    def __init__(self, value: ColumnElement[Any]) -> None:
        super().__init__(value)
        self.type = value.type


class among(FunctionElement[bool]):
    """``contacts.id`` is the ``contact_id`` of one of ``rows`` (an uncorrelated
    SELECT): SQLite reads the rows once with IN (as a derived table it would push the
    contact into it and search them once per contact); PostgreSQL gets an EXISTS over
    the rows, a semi-join that NOT turns into an anti-join (NOT IN would test every
    contact against the whole set once it outgrows memory)."""

    type = Boolean()
    inherit_cache = True
    name = "among"
    # A predicate in its own right: no "= 1" after it on SQLite, which would hide the
    # IN from its planner.
    _is_implicitly_boolean = True


def json_property(document: ColumnElement[Any], key: str) -> ColumnElement[str]:
    return json_text(document, literal(key, String()))


def plus_seconds(moment: ColumnElement[datetime], seconds: int) -> ColumnElement[datetime]:
    # Inlined: a whole number the definition fixed, not user text.
    return shifted(moment, literal_column(str(int(seconds))))


def _args(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> list[str]:
    return [compiler.process(arg, **kw) for arg in element.clauses]


@compiles(json_text, "postgresql")
def _json_text_pg(element: json_text, compiler: SQLCompiler, **kw: Any) -> str:
    document, key = _args(element, compiler, **kw)
    return f"({document} ->> {key})"


@compiles(json_text, "sqlite")
def _json_text_sqlite(element: json_text, compiler: SQLCompiler, **kw: Any) -> str:
    document, key = _args(element, compiler, **kw)
    path = f"""('$."' || {key} || '"')"""
    # A number as it is spelled in the document (``->``, SQLite 3.38+), as PostgreSQL
    # gives it: json_extract would make it a REAL, and CAST that to 15 digits
    # (0.30000000000000004 → '0.3', a 20-digit card number → '1.23456789012346e+19').
    return (
        f"(CASE json_type({document}, {path}) WHEN 'true' THEN 'true' "
        f"WHEN 'false' THEN 'false' "
        f"WHEN 'integer' THEN ({document} -> {path}) WHEN 'real' THEN ({document} -> {path}) "
        f"ELSE CAST(json_extract({document}, {path}) AS TEXT) END)"
    )


@compiles(as_number, "postgresql")
def _as_number_pg(element: as_number, compiler: SQLCompiler, **kw: Any) -> str:
    (value,) = _args(element, compiler, **kw)
    return f"(CASE WHEN {value} ~ '{_PLAIN_NUMBER}' THEN CAST({value} AS NUMERIC) END)"


@compiles(as_number, "sqlite")
def _as_number_sqlite(element: as_number, compiler: SQLCompiler, **kw: Any) -> str:
    (value,) = _args(element, compiler, **kw)
    # SQLite has no regular expressions: the same test, -?[0-9]+(.[0-9]+)?, by GLOB.
    digits = f"(CASE WHEN substr({value}, 1, 1) = '-' THEN substr({value}, 2) ELSE {value} END)"
    plain = (
        f"{digits} GLOB '[0-9]*' AND {digits} NOT GLOB '*[^0-9.]*' "
        f"AND {digits} NOT GLOB '*.' AND {digits} NOT GLOB '*.*.*'"
    )
    return f"(CASE WHEN {plain} THEN CAST({value} AS REAL) END)"


@compiles(binary_text, "postgresql")
def _binary_text_pg(element: binary_text, compiler: SQLCompiler, **kw: Any) -> str:
    (value,) = _args(element, compiler, **kw)
    return f'({value} COLLATE "C")'


@compiles(binary_text, "sqlite")
def _binary_text_sqlite(element: binary_text, compiler: SQLCompiler, **kw: Any) -> str:
    (value,) = _args(element, compiler, **kw)
    return value  # BINARY, SQLite's default collation


@compiles(contains_text, "postgresql")
def _contains_pg(element: contains_text, compiler: SQLCompiler, **kw: Any) -> str:
    haystack, needle = _args(element, compiler, **kw)
    return f"(strpos({haystack}, {needle}) > 0)"


@compiles(contains_text, "sqlite")
def _contains_sqlite(element: contains_text, compiler: SQLCompiler, **kw: Any) -> str:
    haystack, needle = _args(element, compiler, **kw)
    return f"(instr({haystack}, {needle}) > 0)"


@compiles(shifted, "postgresql")
def _shifted_pg(element: shifted, compiler: SQLCompiler, **kw: Any) -> str:
    moment, seconds = _args(element, compiler, **kw)
    return f"({moment} + make_interval(secs => {seconds}))"


@compiles(shifted, "sqlite")
def _shifted_sqlite(element: shifted, compiler: SQLCompiler, **kw: Any) -> str:
    moment, seconds = _args(element, compiler, **kw)
    # Times are stored as 'YYYY-MM-DD HH:MM:SS.ffffff': shift the whole seconds and keep
    # the stored fraction, so the result compares exactly with other stored times.
    return (
        f"(strftime('%Y-%m-%d %H:%M:%S', {moment}, '+' || {seconds} || ' seconds') "
        f"|| substr({moment}, 20))"
    )


@compiles(no_index, "postgresql")
def _no_index_pg(element: no_index, compiler: SQLCompiler, **kw: Any) -> str:
    (value,) = _args(element, compiler, **kw)
    return value


@compiles(no_index, "sqlite")
def _no_index_sqlite(element: no_index, compiler: SQLCompiler, **kw: Any) -> str:
    (value,) = _args(element, compiler, **kw)
    return f"(+{value})"


@compiles(among, "postgresql")
def _among_pg(element: among, compiler: SQLCompiler, **kw: Any) -> str:
    contact, rows = _args(element, compiler, **kw)
    return f"EXISTS (SELECT 1 FROM {rows} AS found WHERE found.contact_id = {contact})"


@compiles(among, "sqlite")
def _among_sqlite(element: among, compiler: SQLCompiler, **kw: Any) -> str:
    contact, rows = _args(element, compiler, **kw)
    return f"({contact} IN {rows})"
