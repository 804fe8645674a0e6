"""Domain errors shared by every service and their one mapping to gRPC status codes."""

from __future__ import annotations

import grpc

# Trailing-metadata key that carries the stable error code to clients (the gateway maps it).
ERROR_CODE_KEY = "likeness-error-code"


class DomainError(Exception):
    """An error a client can act on: a stable code, a message, a gRPC status."""

    status: grpc.StatusCode = grpc.StatusCode.INTERNAL
    default_code = "INTERNAL"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code


class InvalidArgument(DomainError):
    status = grpc.StatusCode.INVALID_ARGUMENT
    default_code = "INVALID_ARGUMENT"


class NotFound(DomainError):
    status = grpc.StatusCode.NOT_FOUND
    default_code = "NOT_FOUND"


class FailedPrecondition(DomainError):
    status = grpc.StatusCode.FAILED_PRECONDITION
    default_code = "FAILED_PRECONDITION"


class PermissionDenied(DomainError):
    status = grpc.StatusCode.PERMISSION_DENIED
    default_code = "PERMISSION_DENIED"


class ResourceExhausted(DomainError):
    status = grpc.StatusCode.RESOURCE_EXHAUSTED
    default_code = "RESOURCE_EXHAUSTED"


class Unavailable(DomainError):
    status = grpc.StatusCode.UNAVAILABLE
    default_code = "UNAVAILABLE"


class SubjectErasing(FailedPrecondition):
    """Raised by holders asked to write for a subject whose erasure has started."""

    default_code = "SUBJECT_ERASING"
