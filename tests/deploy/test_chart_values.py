"""values.yaml, values-dev.yaml and values.schema.json agree, and the schema catches the
mistakes an operator is likely to make."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import pytest
import yaml


@pytest.fixture(scope="module")
def schema(chart_dir: Path) -> dict[str, Any]:
    return json.loads((chart_dir / "values.schema.json").read_text())


@pytest.fixture(scope="module")
def validator(schema: dict[str, Any]) -> jsonschema.Validator:
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


@pytest.fixture(scope="module")
def defaults(chart_dir: Path) -> dict[str, Any]:
    return yaml.safe_load((chart_dir / "values.yaml").read_text())


def errors(validator: jsonschema.Validator, values: dict[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(values)]


def test_schema_uses_a_draft_helm_understands(schema: dict[str, Any]) -> None:
    # Helm 3.18+ and Helm 4 validate 2020-12; unevaluatedProperties depends on it.
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_values_yaml_validates(validator: jsonschema.Validator, defaults: dict[str, Any]) -> None:
    assert errors(validator, defaults) == []


def test_dev_values_validate_after_merging(validator: jsonschema.Validator, chart_dir: Path, dev_values: dict[str, Any]) -> None:
    with helm.Chart.load(chart_dir) as chart:
        merged = chart.merge_values(dev_values)
        chart.validate_schema(dev_values)
    assert errors(validator, merged) == []


def test_values_yaml_configures_every_service(defaults: dict[str, Any], services: tuple[str, ...], grpc_ports: dict[str, int]) -> None:
    assert sorted(defaults["services"]) == sorted(services)
    assert {svc: cfg["grpcPort"] for svc, cfg in defaults["services"].items()} == grpc_ports
    assert defaults["services"]["gateway"]["httpPort"] == 8080


def test_every_key_in_values_yaml_is_described_by_the_schema(schema: dict[str, Any], defaults: dict[str, Any]) -> None:
    # additionalProperties/unevaluatedProperties make unknown keys errors; this checks the
    # converse, that the schema names each key the defaults use at the top level.
    assert set(defaults) <= set(schema["properties"])


def _set(values: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(values)
    node = out
    *parents, leaf = dotted.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value
    return out


BAD_VALUES = [
    ("privacyKeys.kek", "c2hvcnQ=", "a KEK that is not 32 bytes"),
    ("uploadTTLSeconds", 172800, "retention beyond the 24 h promise"),
    ("uploadTTLSeconds", -1, "negative TTL"),
    ("services.faces.replicas", "two", "replicas as a string"),
    ("services.faces.gpus", {"enabled": True}, "a misspelt service key"),
    ("services.gateway.gpu", {"enabled": True}, "gpu on a service other than faces"),
    ("services.renderer", {"replicas": 1}, "an unknown service"),
    ("services.render.calls", ["ingestion", "storage"], "a call to an unknown service"),
    ("services.render.grpcPort", 65000, "a port whose metrics port would pass 65535"),
    ("dataHolders", ["gateway", "gateway"], "a holder listed twice"),
    ("blobs.backend", "gcs", "an unknown blob backend"),
    ("blobs", {"backend": "s3", "s3": {"bucket": ""}}, "s3 without a bucket"),
    ("otel", {"exporter": "otlp", "endpoint": ""}, "otlp without an endpoint"),
    ("postgresql", {"enabled": True, "auth": {"password": ""}}, "in-cluster postgres without a password"),
    ("postgresql.auth.password", "p@ss word", "a password that would break the URL"),
    ("database.url", "mysql://x", "a database URL that is not PostgreSQL"),
    ("appStore.environment", "Prod", "an unknown App Store environment"),
    ("logLevel", "verbose", "an unknown log level"),
    ("networkPolicy.metricsFrom", [{"podSelectr": {}}], "a misspelt NetworkPolicy peer"),
    ("replicaCount", 3, "an unknown top-level key"),
    ("services.gateway.api.trustedProxies", -1, "a negative proxy count"),
    ("services.gateway.api.docs", True, "a misspelt gateway API setting"),
    ("services.gateway.api.corsOrigins", ["https://app.example.com/path"], "a CORS origin with a path"),
    ("services.gateway.api.maxConcurrentGenerationsPerDevice", 0, "no generations at all"),
    ("services.gateway.api.headerTimeoutSeconds", 0, "a zero header timeout"),
    ("services.gateway.appAttest.appId", "com.example.idphoto", "an App Attest app id without the team id"),
    ("services.render.api", {}, "gateway API settings on another service"),
    ("redis.rateLimitKey", "short", "a rate-limit key shorter than 32 characters"),
    ("database.urls.faces", "postgresql://u:p@h:5432/d", "a database URL for faces, which keeps nothing"),
]


@pytest.mark.parametrize(("key", "value", "why"), BAD_VALUES, ids=[b[2] for b in BAD_VALUES])
def test_schema_rejects(validator: jsonschema.Validator, defaults: dict[str, Any], key: str, value: Any, why: str) -> None:
    assert errors(validator, _set(defaults, key, value)), f"schema accepted {why}"


@pytest.mark.parametrize(("key", "value", "why"), BAD_VALUES[:6], ids=[b[2] for b in BAD_VALUES[:6]])
def test_helm_rejects_with_the_same_schema(chart_dir: Path, key: str, value: Any, why: str) -> None:
    # Helm's validator (not only Python's jsonschema) must read the schema the same way.
    with helm.Chart.load(chart_dir) as chart, pytest.raises(helm.HelmError):
        chart.validate_schema(_set({}, key, value))


def test_helm_accepts_a_complete_production_configuration(chart_dir: Path, production_values: dict[str, Any]) -> None:
    with helm.Chart.load(chart_dir) as chart:
        chart.validate_schema(production_values)
