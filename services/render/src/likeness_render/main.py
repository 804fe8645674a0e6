"""Composition root of the render service."""

from __future__ import annotations

import asyncio
from typing import Any

from likeness.render.v1 import render_pb2, render_pb2_grpc
from likeness_platform.logging import configure_logging
from likeness_platform.server import serve_forever
from likeness_platform.settings import ServiceSettings
from likeness_platform.telemetry import configure_tracing


class RenderSettings(ServiceSettings):
    grpc_port: int = 50053
    # Seconds results are kept (at most 86400); 0 = memory-only mode, results returned inline.
    upload_ttl: int = 86400
    blob_backend: str = "local"
    blob_dir: str = ".run/blobs/render"
    s3_bucket: str = ""
    s3_prefix: str = "results"
    s3_endpoint_url: str = ""
    s3_region: str = ""


async def main() -> None:
    settings = RenderSettings()
    configure_logging("render", settings.log_level)
    configure_tracing("render", settings.otel_exporter)

    def register(server: Any) -> list[str]:
        render_pb2_grpc.add_RenderServicer_to_server(render_pb2_grpc.RenderServicer(), server)
        return [render_pb2.DESCRIPTOR.services_by_name["Render"].full_name]

    await serve_forever("render", settings, register)


if __name__ == "__main__":
    asyncio.run(main())
