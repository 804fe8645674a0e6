"""Prometheus metrics shared by every service."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

RPC_LATENCY = Histogram("likeness_rpc_seconds", "gRPC server latency", ["service", "method", "code"])
MODEL_LATENCY = Histogram("likeness_model_seconds", "Model inference latency", ["model"])
QUEUE_DEPTH = Gauge("likeness_queue_depth", "Items waiting in a work queue", ["queue"])
SWEEP_LAG = Gauge("likeness_retention_oldest_seconds", "Age of the oldest item per holder and category", ["holder", "category"])
RETENTION_BREACHES = Counter("likeness_retention_breaches_total", "Items found older than their retention", ["holder", "category"])
ERASURE_DEADLINE_BREACHES = Counter("likeness_erasure_deadline_breaches_total", "Erasures past their 24 h deadline")

AUTHZ_DENIED = Counter("likeness_authz_denied_total", "Calls refused by the mesh policy", ["service", "method", "caller"])
SECURITY_EVENTS_DROPPED = Counter(
    "likeness_security_events_dropped_total", "Security events not delivered to privacy (queue full or privacy unreachable)", ["service"]
)


def start_metrics_server(host: str, port: int) -> None:
    """Serve /metrics on host:port (skipped for port < 1)."""
    if port > 0:
        start_http_server(port, addr=host)
