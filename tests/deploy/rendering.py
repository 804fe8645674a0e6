"""The chart rendered by Helm's own engine (helm-python-sdk binds the Helm v4 Go SDK, so no
helm binary is needed), and the values the deployment tests render it with."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "k8s" / "likeness"
DEV_VALUES = CHART / "values-dev.yaml"
BAKE = REPO / "docker-bake.json"
SERVICES = ("gateway", "ingestion", "faces", "render", "billing", "privacy", "admin")
# The services with a schema, each with its own runtime role (likeness_platform.db_roles).
SCHEMA_SERVICES = ("gateway", "ingestion", "render", "billing", "privacy")
GRPC_PORTS = {"gateway": 50050, "ingestion": 50051, "faces": 50052, "render": 50053, "billing": 50054, "privacy": 50055, "admin": 50056}
RELEASE = "likeness"
NAMESPACE = "likeness-test"

# A complete production-style configuration: every optional feature on, every secret from
# an existing Secret. Tests that need a variation copy and change it.
PRODUCTION_VALUES: dict[str, Any] = {
    "image": {"registry": "registry.example.com/likeness", "tag": "1.2.3"},
    "imagePullSecrets": ["regcred"],
    "otel": {"exporter": "otlp", "endpoint": "http://otel-collector.observability:4317"},
    "privacyKeys": {"existingSecret": "likeness-keys", "kekId": "kek-2026-11", "backupWindowDays": 30},
    "ledgerCheckpoints": {
        "backend": "s3",
        "s3": {"bucket": "likeness-ledger", "region": "eu-central-1", "existingSecret": "likeness-ledger-s3"},
    },
    "billingKeys": {"existingSecret": "likeness-billing"},
    "rights": {
        "apns": {"keyId": "KEY123ABCD", "teamId": "TEAM456XYZ", "topic": "com.example.idphoto", "existingSecret": "likeness-apns"},
    },
    "mail": {"smtpHost": "smtp.example.com", "smtpUsername": "likeness", "existingSecret": "likeness-smtp"},
    "appStore": {
        "bundleId": "com.example.idphoto",
        "appId": "1234567890",
        "environment": "Production",
        "existingSecret": "likeness-appstore",
    },
    "blobs": {
        "backend": "s3",
        "s3": {"bucket": "likeness-blobs", "region": "eu-central-1", "existingSecret": "likeness-s3"},
        "nameKeyExistingSecret": "likeness-blob-names",
    },
    "redis": {"url": "redis://:pw@redis.cache:6379/0", "rateLimitKey": "rate-limit-key-of-at-least-32-characters"},
    "networkPolicy": {
        "gatewayHttpFrom": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}],
        "healthFrom": [{"ipBlock": {"cidr": "10.0.0.0/16"}}],
        "egress": {
            "postgresql": {"to": [{"ipBlock": {"cidr": "10.20.0.5/32"}}], "ports": [5432]},
            "objectStorage": {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [443]},
            "otlp": {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "observability"}}}], "ports": [4317]},
            "redis": {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "cache"}}}], "ports": [6379]},
            "apns": {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [443]},
            "smtp": {"to": [{"ipBlock": {"cidr": "192.0.2.25/32"}}], "ports": [587]},
        },
    },
    # Least privilege: each service's runtime role under its own key, the owner's for migrations.
    "database": {
        "existingSecret": "likeness-db",
        "existingSecretServiceKeys": {svc: f"url-{svc}" for svc in SCHEMA_SERVICES},
        "existingSecretMigrationKey": "migration-url",
    },
    "services": {
        **{svc: {"tls": {"existingSecret": f"likeness-{svc}-tls"}} for svc in SERVICES},
        "faces": {"gpu": {"enabled": True, "count": 2}, "tls": {"existingSecret": "likeness-faces-tls"}},
        "privacy": {
            "grpcFrom": [{"namespaceSelector": {"matchLabels": {"team": "ops"}}}],
            "tls": {"existingSecret": "likeness-privacy-tls"},
        },
        "billing": {
            "egress": [{"to": [{"ipBlock": {"cidr": "17.0.0.0/8"}}], "ports": [{"port": 443, "protocol": "TCP"}]}],
            "tls": {"existingSecret": "likeness-billing-tls"},
        },
        # An operator's matting model from a read-only volume claim.
        "render": {
            "matting": {
                "modelPath": "/models/matting/modnet.onnx",
                "modelSha256": "ab" * 32,
                "volume": {"persistentVolumeClaim": {"claimName": "matting-model", "readOnly": True}},
            },
            # And a face-restoration model for portraits, from another claim.
            "faceModel": {
                "modelPath": "/models/face/restore.onnx",
                "modelSha256": "cd" * 32,
                "volume": {"persistentVolumeClaim": {"claimName": "face-model", "readOnly": True}},
            },
            "tls": {"existingSecret": "likeness-render-tls"},
        },
    },
}

# The least an operator must give: a database URL, privacy's keys (KEK, pseudonym key, ledger signing key),
# billing's ledger key, the blob-name key, each service's certificate Secret, a bucket (the default replicas
# share blobs, which a pod's own emptyDir cannot), and (egress being denied by default) the database's and the
# object store's addresses.
MINIMAL_VALUES: dict[str, Any] = {
    "database": {"url": "postgresql://likeness:secret@db.internal:5432/likeness"},
    "privacyKeys": {
        "kek": base64.b64encode(bytes(range(32))).decode(),
        "pseudonymKey": base64.b64encode(bytes(range(100, 132))).decode(),
        "ledgerSigningKey": base64.b64encode(bytes(range(140, 172))).decode(),
    },
    "blobs": {"backend": "s3", "s3": {"bucket": "likeness-blobs"}, "nameKey": base64.b64encode(bytes(range(180, 220))).decode()},
    "billingKeys": {"ledgerKey": base64.b64encode(bytes(range(32, 80))).decode()},
    "services": {svc: {"tls": {"existingSecret": f"{svc}-cert"}} for svc in SERVICES},
    "networkPolicy": {
        "egress": {
            "postgresql": {"to": [{"ipBlock": {"cidr": "10.20.0.5/32"}}], "ports": [5432]},
            "objectStorage": {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [443]},
        }
    },
}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@dataclass
class Rendered:
    """The manifests of one render, indexed by kind and name."""

    documents: list[dict[str, Any]]

    def of_kind(self, kind: str) -> dict[str, dict[str, Any]]:
        return {d["metadata"]["name"]: d for d in self.documents if d["kind"] == kind}

    def get(self, kind: str, name: str) -> dict[str, Any]:
        found = self.of_kind(kind)
        assert name in found, f"no {kind} {name}; have {sorted(found)}"
        return found[name]

    def deployment(self, svc: str) -> dict[str, Any]:
        return self.get("Deployment", f"{RELEASE}-{svc}")

    def container(self, svc: str) -> dict[str, Any]:
        (container,) = self.deployment(svc)["spec"]["template"]["spec"]["containers"]
        return container

    def env(self, svc: str) -> dict[str, Any]:
        """Container env as name -> value, or name -> ("secret", name, key)."""
        result: dict[str, Any] = {}
        for var in self.container(svc).get("env", []):
            assert var["name"] not in result, f"{svc}: {var['name']} set twice"
            if "value" in var:
                result[var["name"]] = var["value"]
            else:
                ref = var["valueFrom"]["secretKeyRef"]
                result[var["name"]] = ("secret", ref["name"], ref["key"])
        return result


def render(values: dict[str, Any]) -> Rendered:
    with helm.Chart.load(CHART) as chart:
        manifests = chart.render(values, name=RELEASE, namespace=NAMESPACE)
    documents = []
    for name, text in sorted(manifests.items()):
        if not name.endswith((".yaml", ".yml")):
            continue
        documents.extend(d for d in yaml.safe_load_all(text) if d)
    return Rendered(documents)


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep merge the way Helm coalesces values files (maps merge, everything else replaces)."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out
