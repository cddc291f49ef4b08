"""Errors in OpenAI's shape (`{"error": {message, type, param, code}}`), so the official
SDKs raise their usual exceptions, and the request-size limit."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("unibatch.gateway")

_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    402: "insufficient_quota",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "invalid_request_error",
}


class APIError(Exception):
    """An error answer; raised anywhere in a route, rendered by `install`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        type_: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.type = type_ or _TYPES.get(status, "api_error")


def not_found(kind: str, item_id: str) -> APIError:
    # The same answer whether the item is absent or belongs to another key.
    return APIError(404, f"No {kind} found with id '{item_id}'", code="not_found")


def error_body(status: int, message: str, **extra: Any) -> dict[str, Any]:
    error = {"message": message, "type": _TYPES.get(status, "api_error"), "param": None}
    error["code"] = None
    error.update(extra)
    return {"error": error}


def _render(exc: APIError) -> JSONResponse:
    body = error_body(exc.status, exc.message, type=exc.type, param=exc.param, code=exc.code)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return JSONResponse(body, status_code=exc.status, headers=headers)


def _param(loc: tuple[Any, ...]) -> str | None:
    # ("body", "requests", 0, "custom_id") -> "requests[0].custom_id"
    # The first element names where the field was (body, query, ...), not the field.
    parts = loc[1:] if loc and loc[0] in ("body", "query", "path", "header", "form") else loc
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or None


def install(app: FastAPI) -> None:
    async def api_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, APIError)
        return _render(exc)

    async def invalid(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        param = _param(tuple(first.get("loc", ())))
        where = f"{param}: " if param else ""
        return _render(APIError(400, where + str(first.get("msg")), param=param))

    async def http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        code = "request_too_large" if exc.status_code == 413 else None
        message = str(exc.detail)
        if isinstance(exc.__cause__, RecursionError):
            # FastAPI's "error parsing the body" for JSON nested past the parser's limit.
            message = "the request body is nested too deeply to parse"
        return _render(APIError(exc.status_code, message, code=code))

    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return _render(APIError(500, "internal error; see the gateway's log", type_="api_error"))

    app.add_exception_handler(APIError, api_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)


class BodyLimit:
    """Refuse request bodies over `limit` bytes with 413, counting as they stream in, so
    a chunked upload without Content-Length is cut off too."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = f"request body larger than the gateway's limit of {self.limit} bytes"
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                response = JSONResponse(
                    error_body(413, too_large, code="request_too_large"), status_code=413
                )
                await response(scope, receive, send)
                return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    # An HTTPException passes through FastAPI's body parsing untouched
                    # and reaches the handler above.
                    raise HTTPException(413, too_large)
            return message

        await self.app(scope, limited, send)
