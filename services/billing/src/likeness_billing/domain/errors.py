"""The billing service's domain errors.

Each carries a stable `code` that the gRPC layer maps to a status in one place. Messages are
written for a client developer and never quote signed payloads, receipts or tokens.
"""

from __future__ import annotations

from enum import StrEnum


class BillingError(Exception):
    """Base of every error the billing domain raises on purpose."""

    code: str = "BILLING_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(BillingError):
    code = "INVALID_ARGUMENT"


class VerificationReason(StrEnum):
    """Why signed App Store data was refused; mirrors the library's statuses, refined."""

    UNTRUSTED_CHAIN = "UNTRUSTED_CHAIN"
    CERTIFICATE_NOT_VALID_AT_SIGNING = "CERTIFICATE_NOT_VALID_AT_SIGNING"
    MISSING_APPLE_MARKER = "MISSING_APPLE_MARKER"
    BAD_SIGNATURE = "BAD_SIGNATURE"
    MALFORMED = "MALFORMED"
    WRONG_APP = "WRONG_APP"
    BAD_CERTIFICATE = "BAD_CERTIFICATE"
    BAD_CHAIN_LENGTH = "BAD_CHAIN_LENGTH"
    INVALID_CHAIN = "INVALID_CHAIN"
    WRONG_ENVIRONMENT = "WRONG_ENVIRONMENT"
    RETRYABLE = "RETRYABLE"
    FAILURE = "FAILURE"


class VerificationFailed(BillingError):
    """Signed App Store data did not verify; `retryable` only for a failed online status check."""

    code = "VERIFICATION_FAILED"

    def __init__(self, reason: VerificationReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.retryable = reason is VerificationReason.RETRYABLE


class InvalidReceipt(BillingError):
    code = "INVALID_RECEIPT"


class TransactionNotFound(BillingError):
    code = "TRANSACTION_NOT_FOUND"


class StoreUnavailable(BillingError):
    """The App Store Server API could not answer; the client may retry later."""

    code = "STORE_UNAVAILABLE"


class TransactionBoundElsewhere(BillingError):
    code = "TRANSACTION_BOUND_ELSEWHERE"


class QuotaExceeded(BillingError):
    code = "QUOTA_EXCEEDED"
