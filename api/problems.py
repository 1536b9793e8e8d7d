"""RFC 9457 problem details for every error the API returns, validation included.

One ``Problem`` model, one exception (``ApiProblem``) for domain errors, and handlers for
Starlette's HTTP errors, FastAPI's validation errors and anything unexpected, so a client only
ever parses one error shape (``application/problem+json``) and can branch on ``code``.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("meow.api")

#: seconds a client is told to wait (Retry-After) when the database is unavailable
DATABASE_RETRY_AFTER_S = 5

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://meow.dev/problems/"
#: what a problem echoes of one message or location at most, and how many errors it lists: a 422
#: about a 100K-character field (or 10,000 bad facts) must not mirror the input back
MAX_ECHO_CHARS = 300
MAX_ERRORS = 50


def clip(text: str, limit: int = MAX_ECHO_CHARS) -> str:
    """``text`` shortened to ``limit`` characters, saying how much was cut."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text) - limit} more characters)"


class ProblemDetail(BaseModel):
    loc: str = Field(description="where the problem is, e.g. body/facts/3/answer")
    message: str
    type: str = Field(description="machine-readable kind, e.g. string_too_long")


class Problem(BaseModel):
    type: str = Field(description="URI naming the problem type")
    title: str
    status: int
    detail: str
    instance: str | None = Field(None, description="the request path")
    code: str = Field(description="stable machine-readable code, e.g. not_found, validation_error")
    errors: list[ProblemDetail] | None = None

    model_config = {"json_schema_extra": {"examples": [{
        "type": TYPE_BASE + "not_found", "title": "Not Found", "status": 404,
        "detail": "unlearn job job_0193… does not exist", "instance": "/v1/unlearn/job_0193…",
        "code": "not_found", "errors": None}]}}


class ApiProblem(Exception):
    def __init__(self, status: int, code: str, detail: str, *, errors: list[ProblemDetail] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.errors, self.headers = status, code, detail, errors, headers


def not_found(what: str, ident: str) -> ApiProblem:
    return ApiProblem(404, "not_found", f"{what} {ident} does not exist")


def invalid(loc: str, message: str, type_: str = "value_error") -> ApiProblem:
    """A 422 for checks that need settings or the database (limits, references)."""
    return ApiProblem(422, "validation_error", f"{loc}: {message}",
                      errors=[ProblemDetail(loc=loc, message=message, type=type_)])


def problem_response(request: Request | None, status: int, code: str, detail: str,
                     errors: list[ProblemDetail] | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    if errors is not None:
        errors = [ProblemDetail(loc=clip(e.loc), message=clip(e.message), type=clip(e.type, 64))
                  for e in errors[:MAX_ERRORS]]
    body = Problem(type=TYPE_BASE + code, title=title, status=status, detail=clip(detail, 3 * MAX_ECHO_CHARS),
                   instance=clip(request.url.path) if request is not None else None, code=code, errors=errors)
    return JSONResponse(body.model_dump(mode="json"), status_code=status, media_type=PROBLEM_MEDIA_TYPE,
                        headers=headers)


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large", 415: "unsupported_media_type",
               406: "not_acceptable", 400: "bad_request", 409: "conflict", 503: "unavailable"}


def _loc(parts: tuple[Any, ...]) -> str:
    return "/".join(str(p) for p in parts)


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiProblem)
    async def _api_problem(request: Request, exc: ApiProblem) -> JSONResponse:
        return problem_response(request, exc.status, exc.code, exc.detail, exc.errors, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and isinstance(exc.__cause__, (ValueError, RecursionError)):
            # FastAPI's "error parsing the body" (not UTF-8, a number of over 4300 digits, nesting too
            # deep for the parser): like any JSON that does not parse, a 422
            cause = exc.__cause__
            msg = ("the body is not valid UTF-8 (JSON must be UTF-8 encoded, RFC 8259)"
                   if isinstance(cause, UnicodeDecodeError) else "the body is nested too deeply to parse"
                   if isinstance(cause, RecursionError) else f"the body does not parse as JSON: {cause}")
            return problem_response(request, 422, "validation_error", f"body: {msg}",
                                    [ProblemDetail(loc="body", message=msg, type="json_invalid")])
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no route {request.method} {request.url.path}"
        return problem_response(request, exc.status_code, code, detail, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        if any(e.get("loc") == ("body",) and isinstance(e.get("input"), bytes) for e in exc.errors()):
            # FastAPI hands the raw bytes on when the Content-Type is missing or not JSON
            got = request.headers.get("content-type") or "none"
            return problem_response(request, 415, "unsupported_media_type", "the body must be JSON sent with "
                                    f"Content-Type: application/json (got: {got})")
        errors = []
        for e in exc.errors():
            msg = str(e.get("msg", "invalid"))
            if msg.startswith("Value error, "):
                msg = msg.removeprefix("Value error, ")
            errors.append(ProblemDetail(loc=_loc(tuple(e.get("loc", ()))), message=msg, type=str(e.get("type"))))
        first = errors[0] if errors else None
        detail = f"{first.loc}: {first.message}" if first else "invalid request"
        if len(errors) > 1:
            detail += f" (and {len(errors) - 1} more)"
        return problem_response(request, 422, "validation_error", detail, errors)

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        # the database is unreachable, was dropped or renamed, or cut our connection: the request did
        # not fail by its own fault, and the pool (pre-ping) reconnects once the database is back
        if not isinstance(exc, OperationalError | InterfaceError) and not exc.connection_invalidated:
            return await _unexpected(request, exc)
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path,
                    str(exc.orig).splitlines()[0] if exc.orig is not None else type(exc).__name__)
        return problem_response(request, 503, "database_unavailable", "the database is unavailable; retry later",
                                headers={"Retry-After": str(DATABASE_RETRY_AFTER_S)})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(request, 500, "internal_error", "an internal error occurred; it has been logged")


def add_problem_schemas(spec: dict[str, Any]) -> dict[str, Any]:
    """Routes only reference ``Problem`` by $ref (problem+json, not application/json): add its schema."""
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    defs = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in defs.pop("$defs", {}).items():
        schemas.setdefault(name, sub)
    schemas["Problem"] = defs
    # FastAPI documents its default 422 as HTTPValidationError; ours is a problem like every error.
    for ops in spec.get("paths", {}).values():
        for op in ops.values():
            resp = op.get("responses", {})
            if "422" in resp and "HTTPValidationError" in str(resp["422"]):
                resp["422"] = problem_responses(422)[422]
            if "requestBody" in op:  # a body that is not JSON (no or another Content-Type)
                resp.setdefault("415", problem_responses(415)[415])
            if "401" in resp:  # every authenticated route counts requests per key (api/ratelimit.py)
                resp.setdefault("429", problem_responses(429)[429])
    for name in ("HTTPValidationError", "ValidationError"):
        if name not in str(spec.get("paths")):
            schemas.pop(name, None)
    return spec


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries declaring problem+json errors (typed errors in SDKs)."""
    out: dict[int | str, dict[str, Any]] = {}
    for s in statuses:
        out[s] = {"description": HTTPStatus(s).phrase,
                  "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    return out
