"""Gateway settings (LIKENESS_* environment variables)."""

from __future__ import annotations

from likeness_platform.settings import ServiceSettings, StrList


class GatewaySettings(ServiceSettings):
    grpc_port: int = 50050
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    # Redis for rate limits shared between replicas; in-process memory when empty.
    redis_url: str = ""
    rate_limit_device_per_minute: int = 120
    rate_limit_ip_per_minute: int = 300
    # Key for hashing IPs into rate-limit bucket names; set it when replicas share Redis.
    rate_limit_key: str = ""
    # Largest request body accepted (uploads included), bytes.
    max_body_bytes: int = 26 * 1024 * 1024
    # Allowed origins, comma-separated or a JSON array; CORS is off when empty.
    cors_origins: StrList = []
    upstream_deadline_seconds: float = 30.0
    # Seconds in-memory uploads (memory-only mode) stay available to the next call.
    memory_upload_ttl_seconds: int = 600
    # Honour X-Forwarded-For from this many trusted proxies in front of the gateway.
    trusted_proxies: int = 0
