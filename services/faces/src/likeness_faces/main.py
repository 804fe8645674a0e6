"""Composition root of the faces service."""

from __future__ import annotations

import asyncio
from typing import Any

from likeness.faces.v1 import faces_pb2, faces_pb2_grpc
from likeness_faces.holder import StatelessHolder
from likeness_platform.dataholder import add_dataholder
from likeness_platform.logging import configure_logging
from likeness_platform.server import serve_forever
from likeness_platform.settings import ServiceSettings
from likeness_platform.telemetry import configure_tracing


class FacesSettings(ServiceSettings):
    grpc_port: int = 50052
    # cpu | cuda | auto (CUDA when present).
    device: str = "auto"


async def main() -> None:
    settings = FacesSettings()
    configure_logging("faces", settings.log_level)
    configure_tracing("faces", settings.otel_exporter)

    def register(server: Any) -> list[str]:
        faces_pb2_grpc.add_FacesServicer_to_server(faces_pb2_grpc.FacesServicer(), server)
        return [faces_pb2.DESCRIPTOR.services_by_name["Faces"].full_name, add_dataholder(server, StatelessHolder())]

    await serve_forever("faces", settings, register)


if __name__ == "__main__":
    asyncio.run(main())
