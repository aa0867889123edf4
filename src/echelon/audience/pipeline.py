"""Reading and parsing an import file in a child process, a batch ahead of the database.

Parsing a million rows costs a core's worth of Python; done in a thread it shares the
GIL with the statements that feed the database, so the two mostly take turns. A
forked child parses instead and hands each batch over as JSON (never pickles), while
the parent only decodes and loads: on two cores the import costs about the larger of
parsing and the database, not their sum.

The child inherits the open file and the parser by ``fork`` and writes the rejects
file itself; it never touches the parent's database connections, and leaves with
``os._exit`` so that nothing inherited is finalised twice.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
from collections.abc import Callable, Generator, Iterator
from datetime import date, datetime
from multiprocessing.connection import Connection as Pipe
from typing import Any, Protocol, TypeVar

from echelon.audience.fields import BadValue, Cell
from echelon.audience.phone import InvalidNumber
from echelon.audience.tabular import Sheet
from echelon.errors import EchelonError

Row = TypeVar("Row")
Progress = Callable[[int, int], None]


class ParsingFailed(EchelonError):
    code = "parsing_failed"


class RejectSink(Protocol):
    """Where rejected rows go; the importer's rejects file implements it."""

    count: int

    def add(self, row_number: int, reason: str, cells: list[Cell]) -> None: ...

    def flush(self) -> None: ...


def parsed_batches(
    sheet: Sheet,
    parse: Callable[[list[Cell]], Row],
    rejects: RejectSink,
    batch_size: int,
    progress: Progress | None,
    wire_time: Callable[[datetime], Any],
) -> Generator[tuple[list[Any], int]]:
    """Parsed rows in batches (as JSON gives them back: tuples become lists, times are
    spelled by ``wire_time``), with the number of file rows each batch covers."""
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(
        target=_produce,
        args=(sheet, parse, rejects, batch_size, wire_time, sender),
        name="import-parser",
        daemon=True,
    )
    child.start()
    sender.close()
    try:
        while True:
            message = json.loads(receiver.recv_bytes())
            if "batch" in message:
                yield message["batch"], message["covered"]
                if progress:
                    progress(message["covered"], sheet.estimated_rows)
            elif "error" in message:
                raise ParsingFailed(message["error"])
            else:
                rejects.count = message["rejected"]
                return
    except EOFError as exc:
        raise ParsingFailed("读取文件的进程意外退出") from exc
    finally:
        receiver.close()
        if child.is_alive():
            child.terminate()
        child.join()


def _produce(
    sheet: Sheet,
    parse: Callable[[list[Cell]], Any],
    rejects: RejectSink,
    batch_size: int,
    wire_time: Callable[[datetime], Any],
    sender: Pipe,
) -> None:
    def default(value: object) -> Any:
        if isinstance(value, datetime):
            return wire_time(value)
        if isinstance(value, date):
            return value.isoformat()
        raise TypeError(f"cannot send {type(value).__name__}")

    code = 0
    try:
        for batch, covered in parse_batches(sheet, parse, rejects, batch_size):
            payload = {"batch": batch, "covered": covered}
            sender.send_bytes(json.dumps(payload, default=default, ensure_ascii=False).encode())
        rejects.flush()
        sender.send_bytes(json.dumps({"rejected": rejects.count}).encode())
    except BrokenPipeError:
        code = 1  # the parent stopped listening: it is failing or done with us
    except BaseException as exc:  # reported to the parent, which raises it
        message = exc.message if isinstance(exc, EchelonError) else f"{type(exc).__name__}: {exc}"
        with contextlib.suppress(OSError):
            sender.send_bytes(json.dumps({"error": message}, ensure_ascii=False).encode())
        code = 1
    finally:
        os._exit(code)


def parse_batches(
    sheet: Sheet, parse: Callable[[list[Cell]], Row], rejects: RejectSink, batch_size: int
) -> Iterator[tuple[list[Row], int]]:
    batch: list[Row] = []
    seen = 0
    for row_number, cells in sheet.rows:
        seen += 1
        try:
            batch.append(parse(cells))
        except (InvalidNumber, BadValue) as exc:
            rejects.add(row_number, exc.message, cells)
        if seen == batch_size:
            yield batch, seen
            batch, seen = [], 0
    if seen:
        yield batch, seen
