"""The whole schema: every table module imported, one metadata to migrate and diff."""

from __future__ import annotations

from echelon.db import access, journeys, outbox, segments, tables, tracking

metadata = tables.metadata

__all__ = ["access", "journeys", "metadata", "outbox", "segments", "tables", "tracking"]
