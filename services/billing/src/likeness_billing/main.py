"""Composition root of the billing service."""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

from appstoreserverlibrary.models.Environment import Environment

from likeness.billing.v1 import billing_pb2_grpc
from likeness_billing import service
from likeness_billing.adapters.apple_verifier import AppleVerifier, load_root_certificates
from likeness_billing.adapters.receipts import AppStoreServerApi, ReceiptResolver
from likeness_billing.adapters.repository import MIGRATIONS_DIR, BillingRepository
from likeness_billing.domain.quotas import QuotaPolicy
from likeness_billing.grpc_api import BillingServicer, service_name
from likeness_billing.holder import BillingHolder
from likeness_platform.dataholder import add_dataholder
from likeness_platform.db import open_service_pool
from likeness_platform.logging import get_logger
from likeness_platform.server import Wiring, run_service
from likeness_platform.settings import ServiceSettings, StrList

log = get_logger("likeness.billing")


class BillingSettings(ServiceSettings):
    grpc_port: int = 50054
    # DER/PEM files, comma-separated or a JSON array; Apple Root CA - G3 in production. Empty: purchases are refused.
    apple_root_certs: StrList = []
    apple_bundle_id: str = ""
    apple_app_id: int | None = None
    # Production or Sandbox (Xcode and LocalTesting skip signature checks and are refused).
    apple_environment: Literal["Production", "Sandbox", "Xcode", "LocalTesting"] = "Production"
    apple_online_checks: bool = True
    # App Store Server API, for legacy receipts: key id, issuer id and the p8 key (PEM text or a path).
    apple_key_id: str = ""
    apple_issuer_id: str = ""
    apple_private_key: str = ""
    apple_api_base_url: str = ""
    # Base64 key (>= 32 bytes) for the keyed hashes of the accounting ledger and tombstones.
    billing_ledger_key: str = ""
    free_daily_generations: int = 3
    pending_interval_seconds: float = 60.0


def build_verifier(s: BillingSettings) -> AppleVerifier | None:
    if not s.apple_root_certs:
        log.warning("apple_verification_off", reason="LIKENESS_APPLE_ROOT_CERTS is not set; purchases will be refused")
        return None
    return AppleVerifier(
        root_certificates=load_root_certificates(s.apple_root_certs),
        bundle_id=s.apple_bundle_id,
        app_apple_id=s.apple_app_id,
        environment=Environment(s.apple_environment),
        enable_online_checks=s.apple_online_checks,
    )


def build_receipts(s: BillingSettings, verifier: AppleVerifier | None) -> ReceiptResolver | None:
    if verifier is None or not (s.apple_key_id and s.apple_issuer_id and s.apple_private_key):
        return None
    key = s.apple_private_key
    if not key.lstrip().startswith("-----"):
        with open(key, "rb") as fh:
            key = fh.read().decode()
    apis = [
        AppStoreServerApi(key.encode(), s.apple_key_id, s.apple_issuer_id, s.apple_bundle_id, env, base_url=s.apple_api_base_url or None)
        for env in (Environment.PRODUCTION, Environment.SANDBOX)
    ]
    return ReceiptResolver(verifier=verifier, apis=apis)


def ledger_key(s: BillingSettings) -> bytes:
    if not s.billing_ledger_key:
        raise SystemExit("LIKENESS_BILLING_LEDGER_KEY is not set (base64, at least 32 bytes); make run generates a development key")
    return base64.b64decode(s.billing_ledger_key)


@dataclass(kw_only=True)
class BillingWiring(Wiring[BillingSettings]):
    repo: BillingRepository
    verifier: AppleVerifier | None
    receipts: ReceiptResolver | None
    policy: QuotaPolicy


async def build(settings: BillingSettings) -> BillingWiring:
    """The billing service's one composition root: adapters, policy, servicers, background loop."""
    key = ledger_key(settings)
    verifier = build_verifier(settings)
    receipts = build_receipts(settings, verifier)
    pool = await open_service_pool(settings, "billing", MIGRATIONS_DIR)
    repo = BillingRepository(pool, ledger_key=key)
    policy = QuotaPolicy(settings.free_daily_generations)

    def register(server: Any) -> list[str]:
        billing_pb2_grpc.add_BillingServicer_to_server(BillingServicer(repo, verifier, receipts, policy), server)
        return [service_name(), add_dataholder(server, BillingHolder(repo))]

    async def apply_pending() -> None:
        # Notifications stored but never applied (a crash between store and apply) are finished here.
        while verifier is not None:
            await service.apply_pending_notifications(repo, verifier)
            await asyncio.sleep(settings.pending_interval_seconds)

    async def close() -> None:
        if receipts is not None:
            await receipts.aclose()
        await pool.close()

    return BillingWiring(
        settings=settings,
        register=register,
        background=[apply_pending],
        closers=[close],
        repo=repo,
        verifier=verifier,
        receipts=receipts,
        policy=policy,
    )


main = partial(run_service, "billing", BillingSettings, build)


if __name__ == "__main__":
    asyncio.run(main())
