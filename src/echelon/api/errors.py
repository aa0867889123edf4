"""Every failure as one JSON shape, ``{"error": {"code", "message", "field"?}}``, mapped
in one place: domain errors by their ``code`` and ``http_status``, validation as 422,
unknown routes as 404 — and a defect as 500 with nothing of its internals."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, IntegrityError
from starlette.exceptions import HTTPException

from echelon.errors import EchelonError

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


class ApiError(EchelonError):
    """A refusal of the HTTP layer itself (authentication, permission, rate limit)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.http_status = status
        self.headers = dict(headers or {})


def error_response(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    error: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    return JSONResponse({"error": error}, status_code=status, headers=headers)


def _field_of(exc: EchelonError) -> str | None:
    found = getattr(exc, "field", None)
    return found if isinstance(found, str) else None


async def _domain(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, EchelonError)
    headers = exc.headers if isinstance(exc, ApiError) else None
    return error_response(exc.http_status, exc.code, exc.message, _field_of(exc), headers)


async def _validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {}
    location = [str(part) for part in first.get("loc", ())]
    # ("body", "records", 3, "phone") -> "records.3.phone"; the source is implied.
    field = ".".join(location[1:]) if len(location) > 1 else (location[0] if location else None)
    reason = str(first.get("msg", "请求格式不正确"))
    message = f"{field or '请求'} 无效：{reason}"
    if len(errors) > 1:
        message += f"（另有 {len(errors) - 1} 处问题）"
    return error_response(422, "invalid_input", message, field or None)


async def _http(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else "请求无法处理"
    if exc.status_code == 404:
        message = "没有这个地址"
    elif exc.status_code == 405:
        message = "这个地址不支持该请求方法"
    elif exc.status_code == 400 and message == "There was an error parsing the body":
        # FastAPI's words for a body that is not the JSON (or form) it said it was.
        message = "请求体无法解析：请发送 JSON，并与 Content-Type 一致"
    return error_response(exc.status_code, code, message, headers=exc.headers)


async def _data(_request: Request, exc: Exception) -> JSONResponse:
    # A value the database refused (too long, out of range) that no check caught first.
    log.warning("database refused a value: %s", exc)
    return error_response(422, "invalid_input", "有字段的值超出允许范围（过长或过大）")


async def _conflict(_request: Request, exc: Exception) -> JSONResponse:
    # Two requests created the same thing at once; the loser hears it exists.
    log.warning("integrity error: %s", exc)
    return error_response(409, "conflict", "同名或同号的记录已存在，或刚被同时创建")


async def _defect(_request: Request, exc: Exception) -> JSONResponse:
    log.exception("internal error", exc_info=exc)
    return error_response(500, "internal_error", "服务器内部错误，已记录；请稍后重试")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(EchelonError, _domain)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(DataError, _data)
    app.add_exception_handler(IntegrityError, _conflict)
    app.add_exception_handler(Exception, _defect)
