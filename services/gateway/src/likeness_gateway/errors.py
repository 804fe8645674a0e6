"""One JSON error shape for the public API, and the one place gRPC statuses become HTTP statuses."""

from __future__ import annotations

from typing import Any

import grpc
from fastapi.responses import JSONResponse

from likeness_platform.errors import ERROR_CODE_KEY, DomainError, ErrorKind

HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.CANCELLED: 499,
}

# Domain codes whose HTTP status differs from their gRPC status's default.
CODE_STATUS = {
    "TOO_LARGE": 413,
    "TOO_MANY_PIXELS": 413,
    "UNSUPPORTED_FORMAT": 415,
    "QUOTA_EXCEEDED": 402,
    "SUBJECT_ERASING": 401,
    # The person has not given (or has withdrawn) the consent this processing needs.
    "CONSENT_REQUIRED": 403,
    # The photo is readable but cannot make an ID photo: the client must take another one.
    "NO_FACE": 422,
    "MULTIPLE_FACES": 422,
    "LOW_RESOLUTION": 422,
    "HEAD_NOT_MEASURABLE": 422,
    "OUTFIT_TOO_LITTLE_TORSO": 422,
}


class ApiError(Exception):
    """An error answered as {"error": {"code", "message", "details"}}."""

    def __init__(
        self, status: int, code: str, message: str, details: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


def from_rpc_error(exc: grpc.aio.AioRpcError, upstream: str) -> ApiError:
    """Translate an upstream failure; internal details never reach the client."""
    code = exc.code()
    domain_code = ""
    for key, value in exc.trailing_metadata() or ():
        if key == ERROR_CODE_KEY:
            domain_code = str(value)
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return ApiError(
            HTTP_STATUS[code],
            "UPSTREAM_UNAVAILABLE",
            f"the {upstream} service is not available right now; try again",
            {"upstream": upstream},
        )
    if code == grpc.StatusCode.INTERNAL or code == grpc.StatusCode.UNKNOWN:
        return ApiError(502, "UPSTREAM_ERROR", f"the {upstream} service failed", {"upstream": upstream})
    status = CODE_STATUS.get(domain_code, HTTP_STATUS.get(code, 500))
    return ApiError(status, domain_code or code.name, exc.details() or code.name, {"upstream": upstream})


KIND_STATUS = {
    ErrorKind.INVALID: 400,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.ALREADY_EXISTS: 409,
    ErrorKind.FAILED_PRECONDITION: 409,
    ErrorKind.PERMISSION_DENIED: 403,
    ErrorKind.UNAUTHENTICATED: 401,
    ErrorKind.RESOURCE_EXHAUSTED: 429,
    ErrorKind.UNAVAILABLE: 503,
    ErrorKind.INTERNAL: 500,
}


def from_domain_error(exc: DomainError) -> ApiError:
    """A domain error raised in the gateway itself (e.g. by a shared adapter) as an API error."""
    return ApiError(CODE_STATUS.get(exc.code, KIND_STATUS.get(exc.kind, 500)), exc.code, exc.message)


def error_response(
    status: int, code: str, message: str, details: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The one error shape as a response."""
    return JSONResponse({"error": {"code": code, "message": message, "details": details or {}}}, status_code=status, headers=headers)
