"""Errors of the privacy service, free of any transport."""

from __future__ import annotations

from likeness_platform.errors import Unavailable


class HolderCallFailed(Unavailable):
    """A data holder did not answer, or answered with an error.

    The message is safe to return to a caller; `status` (the transport's status name) and `detail`
    are for logs and erasure receipts only.
    """

    default_code = "HOLDER_UNAVAILABLE"

    def __init__(self, holder: str, status: str, detail: str) -> None:
        super().__init__(f"the {holder} service did not answer; try again")
        self.holder = holder
        self.status = status
        self.detail = detail


def describe_error(exc: BaseException) -> str:
    """A short, log-safe description of a failed holder call."""
    if isinstance(exc, HolderCallFailed):
        return f"{exc.status}: {exc.detail}"
    return type(exc).__name__
