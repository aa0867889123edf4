"""The whole schema: every table module imported, one metadata to migrate and diff."""

from __future__ import annotations

from echelon.db import outbox, tables

metadata = tables.metadata

__all__ = ["metadata", "outbox", "tables"]
