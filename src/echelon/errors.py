"""The root of every domain error.

Each package raises its own subclasses (``InvalidNumber``, ``WorkspaceNotFound`` ...).
The CLI and the API map them to a message and an exit or HTTP code in one place,
so a caller never sees a traceback for a mistake in its input.
"""

from __future__ import annotations


class EchelonError(Exception):
    """A failure the user can act on; ``code`` is stable for scripts."""

    code = "error"
    http_status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(EchelonError):
    code = "not_found"
    http_status = 404


class InvalidInput(EchelonError):
    code = "invalid_input"
    http_status = 422
