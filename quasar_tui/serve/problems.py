"""Errors as RFC 9457 problem details: one clear message, and the bad parameter named."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import msgspec
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from quasar_tui.core.errors import InvalidInputError, NotFoundError

MEDIA_TYPE = "application/problem+json"
_TITLES = {
    400: "Bad parameter",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    422: "Bad parameter",
    429: "Too many requests",
    501: "Not available",
    503: "Not ready",
}


class Problem(Exception):
    """Raised by a handler; becomes a problem+json answer with `status`."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.param = param
        self.headers = headers or {}


def bad_param(param: str, exc: Exception) -> Problem:
    return Problem(400, f"{param}: {exc}", param=param)


def problem_response(problem: Problem, instance: str) -> Response:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": _TITLES.get(problem.status, "Error"),
        "status": problem.status,
        "detail": problem.detail,
        "instance": instance,
    }
    if problem.param is not None:
        body["invalid_params"] = [{"name": problem.param, "reason": problem.detail}]
    return Response(
        msgspec.json.encode(body),
        status_code=problem.status,
        media_type=MEDIA_TYPE,
        headers=problem.headers,
    )


async def on_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return problem_response(exc, request.url.path)


async def on_validation(request: Request, exc: Exception) -> Response:
    """FastAPI's own checks (types, ranges, required): the first failing parameter, named."""
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0]
    location = [str(part) for part in first.get("loc", ()) if part not in ("query", "path")]
    param = ".".join(location) or "request"
    given = first.get("input")
    shown = f" (got {given!r})" if isinstance(given, str | int | float) else ""
    detail = f"{param}: {first.get('msg', 'invalid value')}{shown}"
    return problem_response(Problem(422, detail, param=param), request.url.path)


async def on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail = str(exc.detail) if exc.status_code != 404 else f"no such path: {request.url.path}"
    return problem_response(
        Problem(exc.status_code, detail, headers=dict(exc.headers or {})), request.url.path
    )


async def on_not_found(request: Request, exc: Exception) -> Response:
    return problem_response(Problem(404, str(exc)), request.url.path)


async def on_invalid(request: Request, exc: Exception) -> Response:
    return problem_response(Problem(400, str(exc)), request.url.path)


# Typed as FastAPI's `exception_handlers` parameter is.
HANDLERS: dict[int | type[Exception], Callable[[Request, Any], Coroutine[Any, Any, Response]]] = {
    Problem: on_problem,
    RequestValidationError: on_validation,
    HTTPException: on_http,
    NotFoundError: on_not_found,
    InvalidInputError: on_invalid,
}
