"""How the CLI speaks: Rich for people, one JSON document for scripts, and errors as
one clear line with a non-zero exit — never a traceback for a user's mistake.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cached_property, wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from echelon.access.service import record_audit
from echelon.config import Settings
from echelon.db.engine import create_db_engine
from echelon.errors import EchelonError
from echelon.workspaces.service import Workspace, get_workspace

console = Console()
errors = Console(stderr=True, soft_wrap=True)

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class Context:
    """What every command needs, built lazily from the settings."""

    settings: Settings = field(default_factory=Settings)

    @cached_property
    def engine(self) -> Engine:
        return create_db_engine(self.settings.database_url)

    @cached_property
    def workspace(self) -> Workspace:
        return get_workspace(self.engine, slug=self.settings.workspace)

    def audit(
        self,
        action: str,
        target: str | None,
        detail: dict[str, Any] | None = None,
        *,
        actor: str | None = None,
    ) -> None:
        """One audit line for a change this command just made, as the API writes for
        the same change; the actor is ``cli:`` and who ran it (``--by``, else the
        login name)."""
        record_audit(
            self.engine,
            workspace_id=self.workspace.id,
            actor=f"cli:{actor or login_name()}",
            action=action,
            target=target,
            detail=detail or {},
            now=datetime.now(UTC),
        )

    def local(self, moment: datetime | None) -> str:
        """A stored (UTC) time as people of the workspace read it."""
        if moment is None:
            return ""
        return f"{moment.astimezone(ZoneInfo(self.workspace.timezone)):%Y-%m-%d %H:%M}"


def login_name() -> str:
    """Who runs this command, as the system knows them ("unknown" in some containers)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Path | set):
        return str(value) if isinstance(value, Path) else sorted(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, ensure_ascii=False, default=_default, indent=2) + "\n")


def fail(message: str, code: int = 1) -> typer.Exit:
    errors.print(f"[bold red]错误：[/]{message}", highlight=False)
    return typer.Exit(code)


def handle_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn domain errors and an unreachable database into one line and exit code 1."""

    @wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except EchelonError as exc:
            raise fail(exc.message) from exc
        except OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise fail(
                f"无法使用数据库（{reason}）；检查 ECHELON_DATABASE_URL，或先运行 `echelon init`"
            ) from exc
        except OSError as exc:
            raise fail(f"{exc.strerror or exc}：{exc.filename or ''}") from exc
        except Exception as exc:
            # A defect, not a user mistake: one line by default, the traceback on request.
            if os.environ.get("ECHELON_DEBUG"):
                raise
            raise fail(
                f"内部错误 {type(exc).__name__}: {exc}（设置 ECHELON_DEBUG=1 查看详情并报告）", 70
            ) from exc

    return run


@contextmanager
def progress_bar(label: str, *, enabled: bool) -> Iterator[Callable[[int, int], None]]:
    """A callback ``advance(done, total)`` drawing a Rich bar on stderr when enabled."""
    if not enabled:
        yield lambda _done, _total: None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=errors,
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, advance=done, total=max(total, 1))

        yield advance
