"""Errors and retries: calls that fail UNAVAILABLE are tried again after a jittered, growing pause, within the call's deadline."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import grpc

# Trailing-metadata key with the stable error code services send (likeness_platform.errors).
ERROR_CODE_KEY = "likeness-error-code"


class LikenessError(Exception):
    """A call the mesh refused or could not do: the gRPC status, the service's stable code (`NO_FACE`) and its message."""

    def __init__(self, status: grpc.StatusCode, code: str, message: str, method: str = "") -> None:
        super().__init__(f"{method + ': ' if method else ''}{code or status.name}: {message}")
        self.status, self.code, self.message, self.method = status, code, message, method

    @classmethod
    def from_rpc(cls, exc: grpc.RpcError, method: str = "") -> LikenessError:
        status = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
        details = (exc.details() if hasattr(exc, "details") else "") or ""
        trailing = exc.trailing_metadata() if hasattr(exc, "trailing_metadata") else None
        code = ""
        for key, value in trailing or ():
            if key == ERROR_CODE_KEY:
                code = value.decode() if isinstance(value, bytes) else str(value)
        return cls(status, code or status.name, details, method)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait between tries of a call that failed UNAVAILABLE.

    The pause before try n+1 is uniform in [0, min(cap, base * 2**n)] ("full jitter"), so many clients
    that lost the same server do not come back in step. No try starts after the call's deadline.
    """

    attempts: int = 4
    base_seconds: float = 0.2
    cap_seconds: float = 3.0
    retry_on: frozenset[grpc.StatusCode] = field(default_factory=lambda: frozenset({grpc.StatusCode.UNAVAILABLE}))
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.base_seconds < 0 or self.cap_seconds < 0:
            raise ValueError("pauses cannot be negative")

    def should_retry(self, status: grpc.StatusCode, attempt: int) -> bool:
        """After failed try number `attempt` (0-based) with `status`: try again?"""
        return status in self.retry_on and attempt + 1 < self.attempts

    def pause(self, attempt: int) -> float:
        """Seconds to wait after failed try number `attempt` (0-based)."""
        return self.rng.uniform(0.0, min(self.cap_seconds, self.base_seconds * (2**attempt)))


NO_RETRY = RetryPolicy(attempts=1)
