"""Domain errors shared by every service: a stable code and a kind, no transport.

The kind says what sort of failure it is; only the server interceptor turns a kind into a gRPC
status (`likeness_platform.interceptors.GRPC_STATUS`), so domain code never imports grpc.
"""

from __future__ import annotations

from enum import StrEnum

# Trailing-metadata key that carries the stable error code to clients (the gateway maps it).
ERROR_CODE_KEY = "likeness-error-code"


class ErrorKind(StrEnum):
    """What sort of failure an error is, independent of any transport."""

    INVALID = "INVALID"
    NOT_FOUND = "NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
    UNAVAILABLE = "UNAVAILABLE"
    INTERNAL = "INTERNAL"


class DomainError(Exception):
    """An error a client can act on: a stable code, a message, a kind."""

    kind: ErrorKind = ErrorKind.INTERNAL
    default_code = "INTERNAL"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code


class InvalidArgument(DomainError):
    kind = ErrorKind.INVALID
    default_code = "INVALID_ARGUMENT"


class NotFound(DomainError):
    kind = ErrorKind.NOT_FOUND
    default_code = "NOT_FOUND"


class FailedPrecondition(DomainError):
    kind = ErrorKind.FAILED_PRECONDITION
    default_code = "FAILED_PRECONDITION"


class PermissionDenied(DomainError):
    kind = ErrorKind.PERMISSION_DENIED
    default_code = "PERMISSION_DENIED"


class ResourceExhausted(DomainError):
    kind = ErrorKind.RESOURCE_EXHAUSTED
    default_code = "RESOURCE_EXHAUSTED"


class Unavailable(DomainError):
    kind = ErrorKind.UNAVAILABLE
    default_code = "UNAVAILABLE"


class SubjectErasing(FailedPrecondition):
    """Raised by holders asked to write for a subject whose erasure has started."""

    default_code = "SUBJECT_ERASING"
