"""The chart's admin API (its own Deployment, Service and NetworkPolicy, never public) and the usage
statistics it ships: privacy's suppression setting and a Grafana dashboard over metrics that exist."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest

DASHBOARDS = Path(__file__).resolve().parents[2] / "k8s" / "likeness" / "dashboards"


def test_the_admin_api_has_its_own_service_not_the_public_one(renders: dict[str, Any], release: tuple[str, str]) -> None:
    for rendered in renders.values():
        https = rendered.get("Service", f"{release[0]}-admin-https")
        assert https["spec"]["type"] == "ClusterIP"
        assert https["spec"]["selector"]["app.kubernetes.io/component"] == "admin"
        assert [p["targetPort"] for p in https["spec"]["ports"]] == ["https"]
        public = rendered.get("Service", f"{release[0]}-gateway-http")
        assert public["spec"]["selector"]["app.kubernetes.io/component"] == "gateway"
        assert not rendered.of_kind("Ingress")
        (container,) = rendered.get("Deployment", f"{release[0]}-admin")["spec"]["template"]["spec"]["containers"]
        assert {"name": "https", "containerPort": 8443, "protocol": "TCP"} in container["ports"]
        env = rendered.env("admin")
        assert env["LIKENESS_HTTP_PORT"] == "8443" and env["LIKENESS_HTTP_HOST"] == "0.0.0.0"
        # It reaches privacy and render, nothing else, and keeps nothing (no database, no blobs).
        assert {k for k in env if k.endswith("_ADDR")} == {"LIKENESS_PRIVACY_ADDR", "LIKENESS_RENDER_ADDR"}
        assert "LIKENESS_DATABASE_URL" not in env and "LIKENESS_BLOB_BACKEND" not in env


def test_neither_the_ingress_nor_the_http_route_carries_the_admin_api(
    render_chart: Any, minimal_values: dict[str, Any], release: tuple[str, str]
) -> None:
    values = copy.deepcopy(minimal_values)
    values["ingress"] = {"enabled": True, "hosts": ["api.example.com"]}
    values["httpRoute"] = {"enabled": True, "parentRefs": [{"name": "public"}], "hostnames": ["api.example.com"]}
    rendered = render_chart(values)
    public = [*rendered.of_kind("Ingress").values(), *rendered.of_kind("HTTPRoute").values()]
    assert len(public) == 2
    text = json.dumps(public)
    assert f"{release[0]}-gateway-http" in text and "admin" not in text


def test_operators_reach_the_admin_port_only_from_the_peers_named(
    render_chart: Any, minimal_values: dict[str, Any], release: tuple[str, str]
) -> None:
    def https_rules(values: dict[str, Any]) -> list[dict[str, Any]]:
        policy = render_chart(values).get("NetworkPolicy", f"{release[0]}-admin")
        return [r for r in policy["spec"]["ingress"] if {"port": "https", "protocol": "TCP"} in r["ports"]]

    assert https_rules(minimal_values) == []  # kubectl port-forward only
    ops = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "operators"}}}]
    values = copy.deepcopy(minimal_values)
    values["networkPolicy"]["adminHttpsFrom"] = ops
    (rule,) = https_rules(values)
    assert rule["from"] == ops


def test_the_admin_certificate_names_its_https_service(render_chart: Any, dev_values: dict[str, Any], release: tuple[str, str]) -> None:
    cert = render_chart(dev_values).get("Certificate", f"{release[0]}-admin-tls")
    assert cert["spec"]["uris"] == ["spiffe://likeness/admin"]
    assert f"{release[0]}-admin-https" in cert["spec"]["dnsNames"] and "localhost" in cert["spec"]["dnsNames"]
    other = render_chart(dev_values).get("Certificate", f"{release[0]}-render-tls")
    assert "localhost" not in other["spec"]["dnsNames"]


def test_privacy_gets_the_suppression_threshold(render_chart: Any, minimal_values: dict[str, Any], chart_dir: Path) -> None:
    assert render_chart(minimal_values).env("privacy")["LIKENESS_STATS_MIN_COUNT"] == "5"
    values = copy.deepcopy(minimal_values)
    values["usageStats"] = {"minCount": 10, "metricsSeconds": 60}
    env = render_chart(values).env("privacy")
    assert (env["LIKENESS_STATS_MIN_COUNT"], env["LIKENESS_STATS_METRICS_SECONDS"]) == ("10", "60")
    # A threshold of 1 would show single people: the schema refuses it.
    with helm.Chart.load(chart_dir) as chart, pytest.raises(helm.HelmError):
        chart.validate_schema({"usageStats": {"minCount": 1, "metricsSeconds": 60}})


def _dashboards() -> dict[str, dict[str, Any]]:
    found = {p.name: json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))}
    assert found, "no dashboards"
    return found


def _exported_metrics() -> set[str]:
    """Every sample name the services export (histograms as _bucket/_sum/_count, counters as _total)."""
    import likeness_admin.app  # noqa: F401 - registers the admin API's metrics
    from prometheus_client import REGISTRY

    import likeness_platform.metrics  # noqa: F401
    import likeness_privacy.adapters.usage_metrics  # noqa: F401

    names: set[str] = set()
    for family in REGISTRY.collect():
        names.add(family.name)
        names.update(s.name for s in family.samples)
        if family.type == "counter":
            names.add(family.name + "_total")
        if family.type == "histogram":
            names.update(family.name + suffix for suffix in ("_bucket", "_sum", "_count"))
    return names


def test_dashboards_are_valid_and_query_metrics_that_exist() -> None:
    exported = _exported_metrics()
    for name, dashboard in _dashboards().items():
        assert dashboard["title"] and dashboard["uid"] and dashboard["panels"], name
        exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
        assert exprs, name
        used = {m for expr in exprs for m in re.findall(r"\blikeness_[a-z_]+\b", expr)}
        assert "likeness_usage_last_day_calls" in used
        assert used <= exported, f"{name} queries metrics no service exports: {sorted(used - exported)}"
        # Usage panels sum one value per cell: every privacy replica publishes the same cells.
        for expr in exprs:
            if "likeness_usage_last_day_calls" in expr:
                assert "max by (interface, operation, spec_id, country, outcome, app_version)" in expr, expr


def test_dashboards_are_configmaps_for_the_grafana_sidecar(
    render_chart: Any, minimal_values: dict[str, Any], release: tuple[str, str]
) -> None:
    maps = {n: m for n, m in render_chart(minimal_values).of_kind("ConfigMap").items() if "dashboard" in n}
    assert set(maps) == {f"{release[0]}-dashboard-{Path(n).stem}" for n in _dashboards()}
    for name, configmap in maps.items():
        assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1", name
        ((key, text),) = configmap["data"].items()
        assert json.loads(text) == _dashboards()[key]
    values = copy.deepcopy(minimal_values)
    values["grafanaDashboards"] = {"enabled": False}
    assert not [n for n in render_chart(values).of_kind("ConfigMap") if "dashboard" in n]
