"""Settings common to every service, read from `LIKENESS_*` environment variables."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Base settings; each service subclasses it with its own fields and defaults."""

    model_config = SettingsConfigDict(env_prefix="LIKENESS_", extra="ignore")

    # Empty means: start an embedded PostgreSQL (make run, tests).
    database_url: str = ""
    db_pool_min: int = 1
    db_pool_max: int = 8
    grpc_host: str = "127.0.0.1"
    grpc_port: int = 0
    # Prometheus metrics; 0 = gRPC port + 1000, -1 = off.
    metrics_port: int = 0
    log_level: str = "info"
    # none | console | otlp (OTLP endpoint from OTEL_EXPORTER_OTLP_ENDPOINT).
    otel_exporter: str = "none"
    # Seconds in-flight calls get to finish after SIGTERM.
    shutdown_grace_seconds: float = 10.0
    max_message_bytes: int = 64 * 1024 * 1024
    # Default deadline of calls this service makes to others.
    client_deadline_seconds: float = 30.0
    privacy_addr: str = "127.0.0.1:50055"
    ingestion_addr: str = "127.0.0.1:50051"
    faces_addr: str = "127.0.0.1:50052"
    render_addr: str = "127.0.0.1:50053"
    billing_addr: str = "127.0.0.1:50054"
