"""Settings common to every service, read from `LIKENESS_*` environment variables."""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BeforeValidator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _split_list(value: Any) -> Any:
    """A JSON array, or comma-separated text (blanks dropped), as a list of strings."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        return json.loads(text)
    return [part.strip() for part in text.split(",") if part.strip()]


# A list of strings from one environment variable: `a,b,c` or `["a", "b", "c"]`.
StrList = Annotated[list[str], NoDecode, BeforeValidator(_split_list)]


class ServiceSettings(BaseSettings):
    """Base settings; each service subclasses it with its own fields and defaults."""

    model_config = SettingsConfigDict(env_prefix="LIKENESS_", extra="ignore")

    # The service's runtime role: DML on its own schema only (make run and the tests set it).
    database_url: str = ""
    # The owner role that runs migrations and grants the runtime role its privileges;
    # empty = database_url does both (a single-role setup).
    migration_database_url: str = ""
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
    # Mutual TLS (mandatory): this service's certificate and key, and the CA bundle it trusts (PEM files,
    # watched: a rotated Secret is picked up without a restart).
    tls_cert_file: str = ""
    tls_key_file: str = ""
    tls_ca_file: str = ""
    # Plaintext port serving only grpc.health.v1 (kubelet probes); unset = gRPC port + 2000, 0 = a free port, -1 = off.
    health_port: int | None = None
    # gRPC server reflection (make run turns it on).
    reflection: bool = False


class SealedStoreSettings(ServiceSettings):
    """A service that keeps sealed blobs (likeness_platform.sealed_store): where they go and how long data keys are cached."""

    # local | s3
    blob_backend: str = "local"
    blob_dir: str = ".run/blobs"
    s3_bucket: str = ""
    s3_prefix: str = ""
    s3_endpoint_url: str = ""
    s3_region: str = ""
    data_key_ttl_seconds: float = 10.0
    # Base64 of at least 32 random bytes, the same on every replica: keys the hashes of subject ids that name a
    # subject's blobs and tombstones (likeness_platform.blobs.SubjectNames). Required.
    blob_name_key: str = ""
    # The store sweeps its own expired items (and stale .tmp/orphan blobs) this often, privacy up or not.
    self_sweep_seconds: float = 300.0
