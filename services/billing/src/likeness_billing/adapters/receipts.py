"""Legacy app receipts: receipt -> transaction id -> App Store Server API -> verified transaction.

`verifyReceipt` is deprecated. The receipt itself is only mined for a transaction id (nothing
in it is trusted); the App Store Server API returns that transaction as Apple-signed JWS, which
the `AppleVerifier` then checks like any StoreKit 2 transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

import httpx
from appstoreserverlibrary.api_client import APIError, APIException, AsyncAppStoreServerAPIClient
from appstoreserverlibrary.models.Environment import Environment
from appstoreserverlibrary.receipt_utility import ReceiptUtility

from likeness_billing.domain.errors import (
    InvalidReceipt,
    StoreUnavailable,
    TransactionNotFound,
)
from likeness_billing.domain.purchases import Transaction

# Base64 of a receipt with years of renewals stays well under this.
MAX_RECEIPT_CHARS = 1024 * 1024

_NOT_FOUND = (APIError.TRANSACTION_ID_NOT_FOUND, APIError.INVALID_TRANSACTION_ID)


class TransactionVerifier(Protocol):
    def verify_transaction(self, signed_transaction: str) -> Transaction: ...


class AppStoreServerApi(AsyncAppStoreServerAPIClient):
    """The library's async App Store Server API client, with a base URL that can be replaced.

    The library fixes Apple's hosts per environment; tests and egress proxies need another.
    """

    def __init__(
        self,
        signing_key: bytes,
        key_id: str,
        issuer_id: str,
        bundle_id: str,
        environment: Environment,
        *,
        base_url: str | None = None,
    ) -> None:
        super().__init__(signing_key, key_id, issuer_id, bundle_id, environment)
        self.environment = environment
        self._override_base_url = base_url.rstrip("/") if base_url else None

    def _get_full_url(self, path: str) -> str:
        if self._override_base_url is not None:
            return self._override_base_url + path
        return str(super()._get_full_url(path))

    async def aclose(self) -> None:
        await self.http_client.aclose()


class ReceiptResolver:
    """Turns a legacy receipt into a verified transaction.

    `apis` are tried in order, production first: a receipt does not say which environment it
    came from, and App Review and TestFlight receipts only exist in the sandbox.
    """

    def __init__(self, *, verifier: TransactionVerifier, apis: Sequence[AppStoreServerApi]) -> None:
        if not apis:
            raise ValueError("at least one App Store Server API client is required")
        self._verifier = verifier
        self._apis = list(apis)

    async def resolve(self, receipt: str) -> Transaction:
        transaction_id = extract_transaction_id(receipt)
        for api in self._apis:
            signed = await _signed_transaction(api, transaction_id)
            if signed is not None:
                return await asyncio.to_thread(self._verifier.verify_transaction, signed)
        raise TransactionNotFound("the App Store has no transaction for this receipt")

    async def aclose(self) -> None:
        for api in self._apis:
            await api.aclose()


def extract_transaction_id(receipt: str) -> str:
    if not isinstance(receipt, str) or not receipt or len(receipt) > MAX_RECEIPT_CHARS:
        raise InvalidReceipt(f"receipt must be base64 text of 1 to {MAX_RECEIPT_CHARS} characters")
    try:
        transaction_id = ReceiptUtility().extract_transaction_id_from_app_receipt(receipt)
    except ValueError:
        raise InvalidReceipt("receipt is not a well-formed App Store app receipt") from None
    if not transaction_id:
        raise InvalidReceipt("receipt holds no in-app purchase")
    # The id goes into a URL path: Apple's are decimal digits, anything else is not one.
    if not str(transaction_id).isdigit():
        raise InvalidReceipt("receipt holds a transaction id that is not an App Store id")
    return str(transaction_id)


async def _signed_transaction(api: AppStoreServerApi, transaction_id: str) -> str | None:
    try:
        response = await api.get_transaction_info(transaction_id)
    except APIException as exc:
        if exc.api_error in _NOT_FOUND or exc.http_status_code == 404:
            return None
        if exc.http_status_code == 401:
            raise StoreUnavailable("the App Store Server API refused this server's API key; the operator must fix it") from None
        if exc.http_status_code == 429:
            raise StoreUnavailable("the App Store Server API is rate limiting us; retry later") from None
        if exc.http_status_code >= 500:
            raise StoreUnavailable("the App Store Server API is failing; retry later") from None
        raise TransactionNotFound("the App Store did not accept the receipt's transaction id") from None
    except httpx.HTTPError:
        raise StoreUnavailable("the App Store Server API could not be reached; retry later") from None
    except Exception:
        # The library parses bodies itself; a body it cannot parse is a broken answer.
        raise StoreUnavailable("the App Store Server API answered with an unreadable body") from None
    signed = response.signedTransactionInfo
    return signed or None
