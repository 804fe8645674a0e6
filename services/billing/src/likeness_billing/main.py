"""Composition root of the billing service."""

from __future__ import annotations

import asyncio
from typing import Any

from likeness.billing.v1 import billing_pb2, billing_pb2_grpc
from likeness_platform.logging import configure_logging
from likeness_platform.server import serve_forever
from likeness_platform.settings import ServiceSettings
from likeness_platform.telemetry import configure_tracing


class BillingSettings(ServiceSettings):
    grpc_port: int = 50054


async def main() -> None:
    settings = BillingSettings()
    configure_logging("billing", settings.log_level)
    configure_tracing("billing", settings.otel_exporter)

    def register(server: Any) -> list[str]:
        billing_pb2_grpc.add_BillingServicer_to_server(billing_pb2_grpc.BillingServicer(), server)
        return [billing_pb2.DESCRIPTOR.services_by_name["Billing"].full_name]

    await serve_forever("billing", settings, register)


if __name__ == "__main__":
    asyncio.run(main())
