"""The chart's NetworkPolicies: default deny, then exactly the paths the mesh policy needs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest

REPO = Path(__file__).resolve().parents[2]

# `helm test`'s pod (templates/tests/health.yaml), admitted wherever a rule names its sources.
HELM_TEST_POD = {
    "podSelector": {
        "matchLabels": {
            "app.kubernetes.io/name": "likeness",
            "app.kubernetes.io/instance": "likeness",
            "app.kubernetes.io/component": "test",
        }
    }
}


def served_by() -> dict[str, set[str]]:
    """Full gRPC service name -> the services whose port serves it: each serves its own package's
    (likeness.<svc>.v1), and DataHolder where its source registers one (add_dataholder)."""
    from likeness_platform import policy

    servers: dict[str, set[str]] = {}
    for key in policy.POLICY:
        name = key.split("/")[1]
        package, _, service = name.rpartition(".")
        if service == "DataHolder":
            servers[name] = {
                svc
                for svc in policy.SERVICES
                if any("add_dataholder(" in f.read_text() for f in (REPO / "services" / svc / "src").rglob("*.py"))
            }
        elif (own := package.removeprefix("likeness.").removesuffix(".v1")) in policy.SERVICES:
            servers[name] = {own}
    return servers


def expected_grpc_callers() -> dict[str, set[str]]:
    """likeness_platform.policy (identity -> the methods it may call) as connections: the services
    that need a path to each service's gRPC port, because they may call a method served there.

    A NetworkPolicy admits a port, not a method: the gateway reaches ingestion's port, which also
    serves DataHolder. Method-level control is the mTLS authorisation every server enforces from
    the caller's certificate; these policies are the coarser layer under it. Operators (OPERATOR)
    come in through grpcFrom; health and reflection (ANYONE, ANY_IDENTITY) need no path of their own."""
    from likeness_platform import policy

    servers = served_by()
    callers: dict[str, set[str]] = {svc: set() for svc in policy.SERVICES}
    for key, identities in policy.POLICY.items():
        named = identities & policy.SERVICES
        if not named:
            continue
        name = key.split("/")[1]
        assert servers.get(name), f"{key}: no service of the mesh serves {name}"
        for server in servers[name]:
            callers[server] |= named - {server}  # a service's calls to itself stay in the pod
    # The admin API (a delegator: it calls for operators, see policy.DELEGATORS) reaches the servers
    # of the methods its routes forward to.
    from likeness_admin.app import FORWARDED

    for method in FORWARDED:
        for server in servers[method.split("/")[1]]:
            callers[server] |= policy.DELEGATORS
    return callers


def test_the_derived_graph_is_not_empty_or_total() -> None:
    # Guards the derivation against reading nothing (every test below would then agree with a chart
    # that admits nothing) or everything.
    callers = expected_grpc_callers()
    assert callers["privacy"] == {"gateway", "ingestion", "faces", "render", "billing", "admin"}  # security events from all
    assert callers["render"] == {"gateway", "privacy", "admin"} and "admin" not in callers["faces"] | callers["gateway"]
    assert "gateway" in callers["billing"] and "faces" not in callers["billing"]
    assert served_by()["likeness.privacy.v1.DataHolder"] == {"gateway", "ingestion", "faces", "render", "billing", "privacy"}


# ----------------------------------------------------------------------- network policy


def allowed_grpc_callers(rendered: Any, svc: str, release: tuple[str, str]) -> tuple[set[str], list[dict[str, Any]]]:
    """Components of this release admitted to `svc`'s gRPC port, and any other peers."""
    policy = rendered.get("NetworkPolicy", f"{release[0]}-{svc}")
    components: set[str] = set()
    others: list[dict[str, Any]] = []
    for rule in policy["spec"].get("ingress", []):
        if {"port": "grpc", "protocol": "TCP"} not in rule.get("ports", []):
            continue
        assert "from" in rule, f"{svc}: gRPC port open to every source"
        for peer in rule["from"]:
            selector = peer.get("podSelector")
            if selector is None or "namespaceSelector" in peer:
                others.append(peer)
                continue
            assert selector["matchLabels"] == {"app.kubernetes.io/name": "likeness", "app.kubernetes.io/instance": release[0]}
            (expr,) = selector["matchExpressions"]
            assert expr["key"] == "app.kubernetes.io/component" and expr["operator"] == "In"
            components |= set(expr["values"])
    return components, others


def test_network_policy_admits_exactly_the_callers(renders: dict[str, Any], svc: str, release: tuple[str, str]) -> None:
    for rendered in renders.values():
        callers, _ = allowed_grpc_callers(rendered, svc, release)
        assert callers == expected_grpc_callers()[svc]
        policy = rendered.get("NetworkPolicy", f"{release[0]}-{svc}")
        assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
        assert policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == svc


def test_every_address_a_service_is_given_is_reachable(
    renders: dict[str, Any], services: tuple[str, ...], release: tuple[str, str]
) -> None:
    # The converse of the test above: a client configured with an address the policies
    # block would fail only in a cluster whose CNI enforces them.
    rendered = renders["dev"]
    for caller in services:
        env = rendered.env(caller)
        callees = {k.removeprefix("LIKENESS_").removesuffix("_ADDR").lower() for k in env if k.endswith("_ADDR")}
        if caller == "privacy":
            callees |= set(json.loads(env["LIKENESS_HOLDERS"]))
        for callee in callees:
            assert caller in allowed_grpc_callers(rendered, callee, release)[0], f"{caller} -> {callee} is blocked"


def test_only_the_gateway_takes_outside_traffic(renders: dict[str, Any], services: tuple[str, ...], release: tuple[str, str]) -> None:
    for rendered in renders.values():
        for svc in services:
            rules = rendered.get("NetworkPolicy", f"{release[0]}-{svc}")["spec"]["ingress"]
            http = [r for r in rules if {"port": "http", "protocol": "TCP"} in r["ports"]]
            assert bool(http) == (svc == "gateway"), svc
            # The admin API's HTTPS port: nobody over the network unless networkPolicy.adminHttpsFrom names them.
            assert not [r for r in rules if {"port": "https", "protocol": "TCP"} in r["ports"]], svc
            for rule in rules:
                # Open to any source only: the public HTTP API, and the health port when no node CIDR is given.
                if {"port": "http", "protocol": "TCP"} not in rule["ports"] and {"port": "health", "protocol": "TCP"} not in rule["ports"]:
                    assert rule.get("from"), f"{svc}: a rule open to any source"
    # Dev leaves the HTTP port open to all; production narrows it to the ingress namespace.
    dev_http = [
        r for r in renders["dev"].get("NetworkPolicy", f"{release[0]}-gateway")["spec"]["ingress"] if r["ports"][0]["port"] == "http"
    ]
    assert "from" not in dev_http[0]
    prod_http = [
        r for r in renders["production"].get("NetworkPolicy", f"{release[0]}-gateway")["spec"]["ingress"] if r["ports"][0]["port"] == "http"
    ]
    assert prod_http[0]["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}, HELM_TEST_POD]


def test_extra_grpc_peers_are_added_not_substituted(prod_render: Any, release: tuple[str, str]) -> None:
    callers, others = allowed_grpc_callers(prod_render, "privacy", release)
    assert callers == expected_grpc_callers()["privacy"]
    assert others == [{"namespaceSelector": {"matchLabels": {"team": "ops"}}}]


def test_postgresql_admits_only_services_with_a_database(dev_render: Any, release: tuple[str, str]) -> None:
    policy = dev_render.get("NetworkPolicy", f"{release[0]}-postgresql")
    (rule,) = policy["spec"]["ingress"]
    (peer,) = rule["from"]
    (expr,) = peer["podSelector"]["matchExpressions"]
    # ... and the migrations Job, which applies their schemas before they start.
    assert set(expr["values"]) == {"gateway", "ingestion", "render", "billing", "privacy", "migrations"}


def test_network_policies_can_be_turned_off(render_chart: Any, minimal_values: dict[str, Any]) -> None:
    assert render_chart({**minimal_values, "networkPolicy": {"enabled": False}}).of_kind("NetworkPolicy") == {}


# Network policies: default deny, then the policy table.


def policy_of(rendered: Any, svc: str, release: tuple[str, str]) -> dict[str, Any]:
    return rendered.get("NetworkPolicy", f"{release[0]}-{svc}")["spec"]


def grpc_callees(rendered: Any, svc: str, release: tuple[str, str], grpc_ports: dict[str, int]) -> set[str]:
    """Services of the release `svc` may open connections to, each checked to be on its gRPC port only."""
    callees = set()
    for rule in policy_of(rendered, svc, release)["egress"]:
        for peer in rule["to"]:
            component = peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/component")
            if component in grpc_ports:
                assert "namespaceSelector" not in peer
                assert rule["ports"] == [{"port": grpc_ports[component], "protocol": "TCP"}], f"{svc} -> {component}"
                callees.add(component)
    return callees


def test_a_default_deny_policy_selects_every_pod(renders: dict[str, Any], release: tuple[str, str]) -> None:
    for rendered in renders.values():
        spec = rendered.get("NetworkPolicy", f"{release[0]}-default-deny")["spec"]
        assert spec["policyTypes"] == ["Ingress", "Egress"]
        assert "ingress" not in spec and "egress" not in spec
        for workload in [*rendered.of_kind("Deployment").values(), *rendered.of_kind("StatefulSet").values()]:
            labels = workload["spec"]["template"]["metadata"]["labels"]
            assert spec["podSelector"]["matchLabels"].items() <= labels.items(), workload["metadata"]["name"]


def test_network_policy_graph_equals_the_policy_table(
    renders: dict[str, Any], services: tuple[str, ...], release: tuple[str, str], grpc_ports: dict[str, int]
) -> None:
    expected_edges = {(caller, callee) for callee, callers in expected_grpc_callers().items() for caller in callers}
    for values_name, rendered in renders.items():
        ingress = {(caller, callee) for callee in services for caller in allowed_grpc_callers(rendered, callee, release)[0]}
        egress = {(caller, callee) for caller in services for callee in grpc_callees(rendered, caller, release, grpc_ports)}
        assert ingress == expected_edges, values_name
        assert egress == expected_edges, values_name


def test_the_gateway_reaches_only_the_services_it_may_call(
    renders: dict[str, Any], release: tuple[str, str], grpc_ports: dict[str, int]
) -> None:
    # Per port, not per method: the gateway reaching ingestion's port also reaches the DataHolder
    # served there, and the mTLS policy refuses it (DataHolder.* from privacy only). A service whose
    # port serves the gateway nothing but DataHolder is not reachable from it at all.
    for rendered in renders.values():
        assert grpc_callees(rendered, "gateway", release, grpc_ports) == {"ingestion", "render", "billing", "privacy"}
        # faces serves the gateway nothing but DataHolder (privacy's business only).
        assert "gateway" not in allowed_grpc_callers(rendered, "faces", release)[0]
        assert "LIKENESS_FACES_ADDR" not in rendered.env("gateway")


def egress_to(rendered: Any, svc: str, release: tuple[str, str], port: int) -> list[dict[str, Any]]:
    return [rule for rule in policy_of(rendered, svc, release)["egress"] if any(p["port"] == port for p in rule["ports"])]


def test_egress_beyond_the_mesh_is_named(renders: dict[str, Any], services: tuple[str, ...], release: tuple[str, str]) -> None:
    dev, prod = renders["dev"], renders["production"]
    kube_dns = [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ]
    for rendered in renders.values():
        for svc in services:
            for rule in policy_of(rendered, svc, release)["egress"]:
                assert rule.get("to") and rule.get("ports"), f"{svc}: an egress rule open to every destination or port"
            (dns,) = egress_to(rendered, svc, release, 53)
            assert dns["to"] == kube_dns
            assert {(p["port"], p["protocol"]) for p in dns["ports"]} == {(53, "UDP"), (53, "TCP")}
    for svc in services:
        database, blobs = svc not in ("faces", "admin"), svc in ("ingestion", "render")
        # PostgreSQL: the in-cluster pod in dev, the operator's address in production.
        dev_pg, prod_pg = egress_to(dev, svc, release, 5432), egress_to(prod, svc, release, 5432)
        assert bool(dev_pg) == bool(prod_pg) == database, svc
        if database:
            assert dev_pg[0]["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "postgresql"
            assert prod_pg[0]["to"] == [{"ipBlock": {"cidr": "10.20.0.5/32"}}]
        # Object storage (s3 in production only: blobs, and privacy's ledger checkpoints), the OTLP collector,
        # Redis (the gateway's limiter).
        assert bool(egress_to(prod, svc, release, 443)) == (blobs or svc in ("billing", "privacy")), svc
        assert egress_to(dev, svc, release, 443) == []
        assert egress_to(prod, svc, release, 4317)[0]["to"] == [
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "observability"}}}
        ]
        assert egress_to(dev, svc, release, 4317) == []
        assert bool(egress_to(prod, svc, release, 6379)) == (svc == "gateway"), svc
    # Billing's extra rule (App Store Server API) is added as given.
    assert {"to": [{"ipBlock": {"cidr": "17.0.0.0/8"}}], "ports": [{"port": 443, "protocol": "TCP"}]} in policy_of(
        prod, "billing", release
    )["egress"]


@pytest.mark.parametrize(
    ("change", "missing"),
    [
        (
            {
                "blobs": {"backend": "s3", "s3": {"bucket": "b"}},
                "networkPolicy": {
                    "egress": {
                        "postgresql": {"to": [{"ipBlock": {"cidr": "10.20.0.5/32"}}], "ports": [5432]},
                        "objectStorage": {"to": [], "ports": [443]},
                    }
                },
            },
            "objectStorage",
        ),
        ({"otel": {"exporter": "otlp", "endpoint": "http://collector:4317"}}, "otlp"),
        ({"redis": {"url": "redis://cache:6379/0", "rateLimitKey": "k" * 32}}, "redis"),
        ({"networkPolicy": {"egress": {"postgresql": {"to": [], "ports": [5432]}}}}, "postgresql"),
    ],
)
def test_egress_a_feature_needs_must_be_named(
    render_chart: Any, minimal_values: dict[str, Any], change: dict[str, Any], missing: str
) -> None:
    values = json.loads(json.dumps(minimal_values))
    for key, value in change.items():
        values[key] = {**values.get(key, {}), **value}
    with pytest.raises(helm.HelmError, match=rf"networkPolicy\.egress\.{missing}\.to is required"):
        render_chart(values)


def test_metrics_only_from_the_monitoring_namespace_and_health_from_the_nodes(
    renders: dict[str, Any], svc: str, release: tuple[str, str]
) -> None:
    monitoring = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    for values_name, rendered in renders.items():
        rules = policy_of(rendered, svc, release)["ingress"]
        (metrics,) = [r for r in rules if r["ports"] == [{"port": "metrics", "protocol": "TCP"}]]
        assert metrics["from"] == monitoring, values_name
        (health,) = [r for r in rules if r["ports"] == [{"port": "health", "protocol": "TCP"}]]
        if values_name == "production":
            # The nodes' CIDR, and `helm test`'s pod, which would otherwise be shut out.
            assert health["from"] == [{"ipBlock": {"cidr": "10.0.0.0/16"}}, HELM_TEST_POD]
        else:
            assert "from" not in health  # no node CIDR given: the health-only port is open to probes from anywhere
