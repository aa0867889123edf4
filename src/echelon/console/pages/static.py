"""The console's static files (htmx, ECharts, its stylesheet and script), served
from the package: no build step, no CDN."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

STATIC: Final = Path(__file__).resolve().parent.parent / "static"
_TYPES: Final = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
}


def static_router() -> APIRouter:
    """Files of ``static/`` by name (one level of folders), nothing outside it."""
    files = {
        str(path.relative_to(STATIC)): path
        for path in STATIC.rglob("*")
        if path.is_file() and path.suffix in _TYPES
    }
    router = APIRouter(include_in_schema=False)

    @router.get("/static/{name:path}")
    def static_file(name: str) -> Response:
        path = files.get(name)
        if path is None:
            return Response("not found", status_code=404, media_type="text/plain")
        return FileResponse(
            path, media_type=_TYPES[path.suffix], headers={"Cache-Control": "public, max-age=3600"}
        )

    return router
