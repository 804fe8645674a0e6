"""Settings of the admin API (LIKENESS_* environment variables)."""

from __future__ import annotations

from likeness_platform.settings import ServiceSettings


class AdminSettings(ServiceSettings):
    # gRPC port: health (and the mesh's authorisation) only; the API itself is HTTPS on http_port.
    grpc_port: int = 50056
    # The operators' HTTPS port (mutual TLS: operator certificates of the mesh CA). Never the public one.
    http_host: str = "127.0.0.1"
    http_port: int = 8443
    # Deadline of the calls the API makes into the mesh.
    upstream_deadline_seconds: float = 30.0
    # Interactive docs (Swagger UI) at /docs; the OpenAPI document is always at /openapi.json.
    docs_enabled: bool = True
