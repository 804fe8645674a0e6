"""The chart rendered by Helm's engine: valid Kubernetes objects, and the properties the
deployment promises (hardening, probes, balancing, network isolation, secrets, GPU)."""

from __future__ import annotations

import base64
import importlib
import json
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate import utils as kv_utils

# Oldest version the chart supports (Chart.yaml kubeVersion: native gRPC probes are GA
# from 1.27) and the newest kubernetes-validate ships schemas for.
K8S_VERSIONS = ("1.27", kv_utils.latest_version())

PROBES = ("startupProbe", "readinessProbe", "livenessProbe")
SERVICES = ("gateway", "ingestion", "faces", "render", "billing", "privacy")

# The mesh policy table (ARCHITECTURE.md, "Trust inside the mesh") as connections: who may
# open one to each service's gRPC port. From the table: Ingestion.Upload/Describe/Delete
# from the gateway, Ingestion.Open from render and faces; Faces.Analyze* from render;
# Render.* from the gateway; Billing.* from the gateway; Privacy's public RPCs from the
# gateway, GetDataKey and RecordAccess from ingestion and render, RecordSecurityEvent
# (refused calls) from every service; DataHolder.* (every service but privacy serves it)
# from privacy only. Operators come in through grpcFrom.
# A NetworkPolicy admits a port, not a method: the gateway reaches ingestion's port, which
# also serves DataHolder. Method-level control is the mTLS authorisation every server
# enforces from the caller's certificate; these policies are the coarser layer under it.
EXPECTED_GRPC_CALLERS = {
    "gateway": {"privacy"},
    "ingestion": {"gateway", "render", "faces", "privacy"},
    "faces": {"render", "privacy"},
    "render": {"gateway", "privacy"},
    "billing": {"gateway", "privacy"},
    "privacy": {"gateway", "ingestion", "faces", "render", "billing"},
}
# Services whose port serves the gateway nothing but DataHolder (privacy's business only).
DATAHOLDER_ONLY_FOR_THE_GATEWAY = {"faces"}
TLS_DIR = "/etc/likeness/tls"
CERT_MANAGER_KINDS = {"Certificate", "Issuer", "ClusterIssuer"}


@pytest.fixture(scope="module")
def minimal_values() -> dict[str, Any]:
    """The least an operator must give: a database URL, a KEK and billing's ledger key."""
    return {
        "database": {"url": "postgresql://likeness:secret@db.internal:5432/likeness"},
        "privacyKeys": {"kek": base64.b64encode(bytes(range(32))).decode()},
        "billingKeys": {"ledgerKey": base64.b64encode(bytes(range(32, 80))).decode()},
        # TLS is not optional: each service's certificate Secret.
        "services": {svc: {"tls": {"existingSecret": f"{svc}-cert"}} for svc in SERVICES},
        # Egress is denied by default: the external database must be named.
        "networkPolicy": {"egress": {"postgresql": {"to": [{"ipBlock": {"cidr": "10.20.0.5/32"}}], "ports": [5432]}}},
    }


@pytest.fixture(scope="module")
def renders(render_chart: Any, dev_render: Any, prod_render: Any, minimal_values: dict[str, Any]) -> dict[str, Any]:
    return {"dev": dev_render, "production": prod_render, "minimal": render_chart(minimal_values)}


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]


def port_of(container: dict[str, Any], name: str) -> int:
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert name in ports, f"{container['name']} has no port named {name}"
    return ports[name]


# ------------------------------------------------------------------- rendering at all


def test_defaults_alone_refuse_to_render_and_say_what_is_missing(render_chart: Any) -> None:
    with pytest.raises(helm.HelmError, match="database"):
        render_chart({})
    with pytest.raises(helm.HelmError, match=r"networkPolicy\.egress\.postgresql\.to is required"):
        render_chart({"database": {"url": "postgresql://u:p@h:5432/d"}})
    database = {"url": "postgresql://u:p@h:5432/d"}
    egress = {"egress": {"postgresql": {"to": [{"ipBlock": {"cidr": "10.0.0.9/32"}}], "ports": [5432]}}}
    with pytest.raises(helm.HelmError, match=r"services\.\w+\.tls\.existingSecret is required"):
        render_chart({"database": database, "networkPolicy": egress, "billingKeys": {"existingSecret": "b"}})
    tls = {svc: {"tls": {"existingSecret": f"{svc}-cert"}} for svc in SERVICES}
    with pytest.raises(helm.HelmError, match="kek"):
        render_chart({"database": database, "networkPolicy": egress, "services": tls, "billingKeys": {"existingSecret": "b"}})


def test_billing_needs_its_ledger_key(render_chart: Any, minimal_values: dict[str, Any], release: tuple[str, str]) -> None:
    # Billing exits at start without LIKENESS_BILLING_LEDGER_KEY: refuse to render instead.
    with pytest.raises(helm.HelmError, match=r"billingKeys\.ledgerKey"):
        render_chart({k: v for k, v in minimal_values.items() if k != "billingKeys"})
    with pytest.raises(helm.HelmError, match="/billingKeys/ledgerKey"):  # the schema: fewer than 32 bytes
        render_chart({**minimal_values, "billingKeys": {"ledgerKey": base64.b64encode(bytes(16)).decode()}})
    rendered = render_chart(minimal_values)
    assert rendered.env("billing")["LIKENESS_BILLING_LEDGER_KEY"] == ("secret", release[0], "billing-ledger-key")
    secret = rendered.get("Secret", release[0])
    assert base64.b64decode(base64.b64decode(secret["data"]["billing-ledger-key"])) == bytes(range(32, 80))


def test_a_kek_of_the_wrong_length_is_refused(render_chart: Any, minimal_values: dict[str, Any]) -> None:
    values = {**minimal_values, "privacyKeys": {"kek": base64.b64encode(b"0" * 16).decode()}}
    with pytest.raises(helm.HelmError, match="kek"):
        render_chart(values)


@pytest.mark.parametrize("values_name", ["dev", "production", "minimal"])
@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_manifest_passes_kubernetes_validate(renders: dict[str, Any], values_name: str, version: str) -> None:
    failures = []
    for doc in renders[values_name].documents:
        if doc["kind"] in CERT_MANAGER_KINDS:
            continue  # custom resources: no schema here; test_cert_manager_issues_one_certificate_per_identity checks them
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            failures.append(f"{doc['kind']}/{doc['metadata']['name']}: {'/'.join(map(str, exc.path))}: {exc.message}")
    assert failures == []


def test_kubernetes_validate_would_notice_a_broken_manifest(dev_render: Any) -> None:
    # Guards the test above against validating nothing (a schema lookup that silently
    # accepts anything would make it pass vacuously).
    deployment = json.loads(json.dumps(dev_render.deployment("faces")))
    deployment["spec"]["template"]["spec"]["containers"][0]["startupProbe"]["grpc"]["port"] = "grpc"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[-1], strict=True)


def test_every_service_gets_each_kind_of_object(renders: dict[str, Any], services: tuple[str, ...], release: tuple[str, str]) -> None:
    name, namespace = release
    for rendered in renders.values():
        for kind in ("Deployment", "Service", "ServiceAccount", "PodDisruptionBudget", "NetworkPolicy"):
            assert {f"{name}-{svc}" for svc in services} <= set(rendered.of_kind(kind)), kind
        for doc in rendered.documents:
            assert doc["metadata"].get("namespace") == namespace, f"{doc['kind']}/{doc['metadata']['name']}"


@pytest.mark.parametrize("values_name", ["dev", "production"])
def test_helm_lint_is_clean(chart_dir: Path, dev_values: dict[str, Any], production_values: dict[str, Any], values_name: str) -> None:
    values = dev_values if values_name == "dev" else production_values
    report = helm.lint(chart_dir, values, strict=True, kube_version=f"v{K8S_VERSIONS[0]}.0")
    serious = [m for m in report["messages"] if m["severity"] >= 2]
    assert serious == [] and report["errors"] == []


# --------------------------------------------------------------------------- workloads


@pytest.mark.parametrize("values_name", ["dev", "production"])
def test_pods_are_hardened(renders: dict[str, Any], services: tuple[str, ...], values_name: str) -> None:
    rendered = renders[values_name]
    workloads = [rendered.deployment(svc) for svc in services] + list(rendered.of_kind("StatefulSet").values())
    for workload in workloads:
        spec = pod_spec(workload)
        where = workload["metadata"]["name"]
        assert spec["automountServiceAccountToken"] is False, where
        assert spec["securityContext"]["runAsNonRoot"] is True, where
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, where
        for container in spec["containers"]:
            sc = container["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["capabilities"]["drop"] == ["ALL"], where
            assert sc["runAsNonRoot"] is True, where
            assert sc.get("privileged", False) is False, where
            # Only the Tilt dev values open the root filesystem, for live_update.
            assert sc["readOnlyRootFilesystem"] is (values_name != "dev"), where
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert "/tmp" in mounts, f"{where}: no writable /tmp"
            volumes = {v["name"]: v for v in spec["volumes"]}
            assert "emptyDir" in volumes[mounts["/tmp"]], where


def test_service_pods_run_as_the_image_user(dev_render: Any, svc: str, dockerfiles: dict[str, Any]) -> None:
    user = dockerfiles[svc].final.all("USER")[-1].args.split(":")[0]
    assert str(pod_spec(dev_render.deployment(svc))["securityContext"]["runAsUser"]) == user


def test_probes_are_native_grpc_on_the_plaintext_health_port(renders: dict[str, Any], svc: str, grpc_ports: dict[str, int]) -> None:
    # The kubelet's gRPC probes cannot present a client certificate, so they go to a port that
    # serves grpc.health.v1 only, without TLS; the gRPC port itself is mutual TLS only.
    for rendered in renders.values():
        container = rendered.container(svc)
        env = rendered.env(svc)
        assert port_of(container, "grpc") == grpc_ports[svc]
        assert port_of(container, "metrics") == grpc_ports[svc] + 1000
        assert port_of(container, "health") == grpc_ports[svc] + 2000
        assert env["LIKENESS_HEALTH_PORT"] == str(grpc_ports[svc] + 2000)
        for probe in PROBES:
            assert container[probe]["grpc"] == {"port": grpc_ports[svc] + 2000}, probe
        # Reflection stays at its default (off) in a cluster.
        assert "LIKENESS_REFLECTION" not in env


def test_services_listen_beyond_loopback(dev_render: Any, svc: str) -> None:
    # The settings default to 127.0.0.1 for `make run`; in a pod that would hide the
    # server from probes and peers.
    env = dev_render.env(svc)
    assert env["LIKENESS_GRPC_HOST"] == "0.0.0.0"
    if svc == "gateway":
        assert env["LIKENESS_HTTP_HOST"] == "0.0.0.0"
        assert env["LIKENESS_HTTP_PORT"] == "8080"


def test_every_container_has_resources(renders: dict[str, Any], svc: str) -> None:
    for rendered in renders.values():
        resources = rendered.container(svc)["resources"]
        assert resources["requests"]["cpu"] and resources["requests"]["memory"]
        assert resources["limits"]["memory"]


def test_images(renders: dict[str, Any], svc: str) -> None:
    assert renders["dev"].container(svc)["image"] == f"likeness-{svc}:dev"
    assert renders["production"].container(svc)["image"] == f"registry.example.com/likeness/likeness-{svc}:1.2.3"
    assert renders["minimal"].container(svc)["image"] == f"likeness-{svc}:0.1.0"
    assert pod_spec(renders["production"].deployment(svc))["imagePullSecrets"] == [{"name": "regcred"}]


def test_service_links_are_off(dev_render: Any, svc: str) -> None:
    # Kubernetes would otherwise inject LIKENESS_<NAME>_PORT-style variables.
    assert pod_spec(dev_render.deployment(svc))["enableServiceLinks"] is False


def test_a_secret_change_rolls_the_pods(render_chart: Any, minimal_values: dict[str, Any], release: tuple[str, str]) -> None:
    other = {**minimal_values, "privacyKeys": {"kek": base64.b64encode(bytes(32)).decode()}}
    before = render_chart(minimal_values).deployment("privacy")["spec"]["template"]["metadata"]["annotations"]
    after = render_chart(other).deployment("privacy")["spec"]["template"]["metadata"]["annotations"]
    assert before["checksum/secret"] != after["checksum/secret"]


# ------------------------------------------------------------------ services & addresses


def test_grpc_services_are_headless(renders: dict[str, Any], svc: str, grpc_ports: dict[str, int], release: tuple[str, str]) -> None:
    for rendered in renders.values():
        service = rendered.get("Service", f"{release[0]}-{svc}")
        assert service["spec"]["clusterIP"] == "None"
        ports = {p["name"]: p["port"] for p in service["spec"]["ports"]}
        # The health port is the kubelet's, on the pod itself: no Service routes to it.
        assert ports == {"grpc": grpc_ports[svc], "metrics": grpc_ports[svc] + 1000}
        labels = rendered.deployment(svc)["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= labels.items()


def test_gateway_http_has_a_balancing_service(dev_render: Any, release: tuple[str, str]) -> None:
    service = dev_render.get("Service", f"{release[0]}-gateway-http")
    assert service["spec"].get("clusterIP") != "None"
    assert service["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP", "appProtocol": "http"}]
    labels = dev_render.deployment("gateway")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()


def test_client_addresses_are_dns_targets_of_headless_services(
    dev_render: Any, svc: str, release: tuple[str, str], grpc_ports: dict[str, int]
) -> None:
    name, namespace = release
    addresses = {k: v for k, v in dev_render.env(svc).items() if k.endswith("_ADDR")}
    for var, address in addresses.items():
        callee = var.removeprefix("LIKENESS_").removesuffix("_ADDR").lower()
        assert address == f"dns:///{name}-{callee}.{namespace}.svc.cluster.local:{grpc_ports[callee]}"
        assert dev_render.get("Service", f"{name}-{callee}")["spec"]["clusterIP"] == "None"


def test_privacy_knows_every_data_holder(dev_render: Any, release: tuple[str, str], grpc_ports: dict[str, int]) -> None:
    name, namespace = release
    holders = json.loads(dev_render.env("privacy")["LIKENESS_HOLDERS"])
    assert set(holders) == {"gateway", "ingestion", "faces", "render", "billing"}
    for holder, address in holders.items():
        assert address == f"dns:///{name}-{holder}.{namespace}.svc.cluster.local:{grpc_ports[holder]}"


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
        assert callers == EXPECTED_GRPC_CALLERS[svc]
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
    assert prod_http[0]["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}]


def test_extra_grpc_peers_are_added_not_substituted(prod_render: Any, release: tuple[str, str]) -> None:
    callers, others = allowed_grpc_callers(prod_render, "privacy", release)
    assert callers == EXPECTED_GRPC_CALLERS["privacy"]
    assert others == [{"namespaceSelector": {"matchLabels": {"team": "ops"}}}]


def test_postgresql_admits_only_services_with_a_database(dev_render: Any, release: tuple[str, str]) -> None:
    policy = dev_render.get("NetworkPolicy", f"{release[0]}-postgresql")
    (rule,) = policy["spec"]["ingress"]
    (peer,) = rule["from"]
    (expr,) = peer["podSelector"]["matchExpressions"]
    assert set(expr["values"]) == {"gateway", "ingestion", "render", "billing", "privacy"}


def test_network_policies_can_be_turned_off(render_chart: Any, minimal_values: dict[str, Any]) -> None:
    assert render_chart({**minimal_values, "networkPolicy": {"enabled": False}}).of_kind("NetworkPolicy") == {}


# -------------------------------------------------------------------- scaling & budgets


def test_autoscaling_covers_gateway_faces_and_render(renders: dict[str, Any], services: tuple[str, ...], release: tuple[str, str]) -> None:
    name = release[0]
    for values_name in ("production", "minimal"):
        rendered = renders[values_name]
        hpas = rendered.of_kind("HorizontalPodAutoscaler")
        assert set(hpas) == {f"{name}-gateway", f"{name}-faces", f"{name}-render"}
        for hpa_name, hpa in hpas.items():
            assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": hpa_name}
            assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
            # An HPA fights a fixed replica count on every upgrade.
            assert "replicas" not in rendered.get("Deployment", hpa_name)["spec"]
        for svc in ("ingestion", "billing", "privacy"):
            assert rendered.deployment(svc)["spec"]["replicas"] >= 2
    assert renders["dev"].of_kind("HorizontalPodAutoscaler") == {}
    assert all(renders["dev"].deployment(svc)["spec"]["replicas"] == 1 for svc in services)


def test_disruption_budgets_select_their_pods(renders: dict[str, Any], svc: str, release: tuple[str, str]) -> None:
    for rendered in renders.values():
        pdb = rendered.get("PodDisruptionBudget", f"{release[0]}-{svc}")
        labels = rendered.deployment(svc)["spec"]["template"]["metadata"]["labels"]
        assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert pdb["spec"]["maxUnavailable"] == 1


def test_each_service_has_its_own_account_without_a_token(renders: dict[str, Any], svc: str, release: tuple[str, str]) -> None:
    for rendered in renders.values():
        account = rendered.get("ServiceAccount", f"{release[0]}-{svc}")
        assert account["automountServiceAccountToken"] is False
        assert pod_spec(rendered.deployment(svc))["serviceAccountName"] == account["metadata"]["name"]


# ----------------------------------------------------------------------------- GPU


def test_faces_gpu_option(prod_render: Any, dev_render: Any) -> None:
    container = prod_render.container("faces")
    spec = pod_spec(prod_render.deployment("faces"))
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 2
    assert container["resources"]["requests"]["cpu"] == "2"  # merged, not replaced
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    assert prod_render.env("faces")["LIKENESS_DEVICE"] == "cuda"

    assert "nvidia.com/gpu" not in dev_render.container("faces")["resources"].get("limits", {})
    assert "nodeSelector" not in pod_spec(dev_render.deployment("faces"))
    assert dev_render.env("faces")["LIKENESS_DEVICE"] == "cpu"
    for svc in ("gateway", "render"):
        assert "nvidia.com/gpu" not in prod_render.container(svc)["resources"].get("limits", {})


# --------------------------------------------------------------- secrets & configuration


def test_dev_values_keep_secrets_in_the_chart_secret(dev_render: Any, release: tuple[str, str]) -> None:
    name, namespace = release
    secret = dev_render.get("Secret", name)
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data["database-url"] == f"postgresql://likeness:likeness-dev-only@{name}-postgresql.{namespace}.svc.cluster.local:5432/likeness"
    assert len(base64.b64decode(data["kek"])) == 32
    assert dev_render.env("privacy")["LIKENESS_KEK"] == ("secret", name, "kek")
    assert dev_render.env("privacy")["LIKENESS_DATABASE_URL"] == ("secret", name, "database-url")
    for doc in dev_render.documents:
        if doc["kind"] == "Deployment":
            # Secrets only ever arrive by reference, never as plain values.
            assert data["kek"] not in yaml.safe_dump(doc)


def test_existing_secrets_are_referenced_not_copied(prod_render: Any, release: tuple[str, str]) -> None:
    secret = prod_render.get("Secret", release[0])
    assert set(secret["data"]) == {"redis-url"}
    env = {svc: prod_render.env(svc) for svc in ("privacy", "billing", "ingestion", "gateway", "render")}
    assert env["privacy"]["LIKENESS_KEK"] == ("secret", "likeness-keys", "kek")
    assert env["privacy"]["LIKENESS_PSEUDONYM_KEY"] == ("secret", "likeness-keys", "pseudonym-key")
    assert env["gateway"]["LIKENESS_DATABASE_URL"] == ("secret", "likeness-db", "url")
    assert env["billing"]["LIKENESS_APPLE_PRIVATE_KEY"] == ("secret", "likeness-appstore", "apple-private-key")
    assert env["billing"]["LIKENESS_BILLING_LEDGER_KEY"] == ("secret", "likeness-billing", "billing-ledger-key")
    assert env["billing"]["LIKENESS_APPLE_ENVIRONMENT"] == "Production"
    assert env["ingestion"]["AWS_ACCESS_KEY_ID"] == ("secret", "likeness-s3", "s3-access-key-id")
    assert env["render"]["LIKENESS_S3_BUCKET"] == "likeness-blobs"
    assert env["gateway"]["LIKENESS_REDIS_URL"] == ("secret", release[0], "redis-url")


def test_only_privacy_sees_the_kek(renders: dict[str, Any], services: tuple[str, ...]) -> None:
    for rendered in renders.values():
        for svc in services:
            assert ("LIKENESS_KEK" in rendered.env(svc)) == (svc == "privacy"), svc
            assert ("LIKENESS_BILLING_LEDGER_KEY" in rendered.env(svc)) == (svc == "billing"), svc


def test_database_url_goes_only_to_services_with_a_schema(dev_render: Any, services: tuple[str, ...]) -> None:
    for svc in services:
        assert ("LIKENESS_DATABASE_URL" in dev_render.env(svc)) == (svc != "faces"), svc


def test_blob_settings(renders: dict[str, Any], services: tuple[str, ...]) -> None:
    for svc in services:
        dev = renders["dev"].env(svc)
        prod = renders["production"].env(svc)
        blob_user = svc in ("ingestion", "render")
        assert ("LIKENESS_BLOB_BACKEND" in dev) == blob_user, svc
        if blob_user:
            assert dev["LIKENESS_BLOB_BACKEND"] == "local" and dev["LIKENESS_BLOB_DIR"] == "/var/lib/likeness/blobs"
            mounts = {m["mountPath"] for m in renders["dev"].container(svc)["volumeMounts"]}
            assert "/var/lib/likeness/blobs" in mounts
            assert prod["LIKENESS_BLOB_BACKEND"] == "s3" and "LIKENESS_BLOB_DIR" not in prod
            assert prod["LIKENESS_S3_REGION"] == "eu-central-1"


def test_otlp_endpoint(renders: dict[str, Any], svc: str) -> None:
    prod = renders["production"].env(svc)
    assert prod["LIKENESS_OTEL_EXPORTER"] == "otlp"
    assert prod["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector.observability:4317"
    assert prod["OTEL_SERVICE_NAME"] == f"likeness-{svc}"
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in renders["minimal"].env(svc)


def test_in_cluster_postgresql_only_when_asked(renders: dict[str, Any], release: tuple[str, str]) -> None:
    name = f"{release[0]}-postgresql"
    statefulset = renders["dev"].get("StatefulSet", name)
    (container,) = pod_spec(statefulset)["containers"]
    assert container["securityContext"]["runAsNonRoot"] is True
    assert pod_spec(statefulset)["securityContext"]["runAsUser"] == 999
    assert renders["dev"].get("Service", name)["spec"]["ports"][0]["port"] == 5432
    for values_name in ("production", "minimal"):
        assert renders[values_name].of_kind("StatefulSet") == {}


def _settings_fields(svc: str) -> set[str]:
    """LIKENESS_* variables the service's settings class reads."""
    from likeness_platform.settings import ServiceSettings

    module = importlib.import_module(f"likeness_{svc}.main")
    classes = [v for v in vars(module).values() if isinstance(v, type) and issubclass(v, ServiceSettings) and v is not ServiceSettings]
    assert classes, f"likeness_{svc}.main defines or imports no ServiceSettings subclass"
    fields: set[str] = set()
    for cls in classes:
        fields |= {f"LIKENESS_{name.upper()}" for name in cls.model_fields}
    return fields


def test_every_setting_the_chart_sets_is_read_by_the_service(renders: dict[str, Any], svc: str) -> None:
    # A misspelt or renamed variable is ignored by pydantic-settings without a word; the
    # service would then run on its loopback / local-disk defaults in the cluster.
    known = _settings_fields(svc)
    for values_name in ("dev", "production"):
        unknown = {k for k in renders[values_name].env(svc) if k.startswith("LIKENESS_")} - known
        assert unknown == set(), f"{values_name}: {svc} does not read {sorted(unknown)}"


# ------------------------------------------------------------------ mutual TLS & zero trust


def tls_volume(rendered: Any, svc: str) -> dict[str, Any]:
    volumes = {v["name"]: v for v in pod_spec(rendered.deployment(svc))["volumes"]}
    mounts = {m["mountPath"]: m for m in rendered.container(svc)["volumeMounts"]}
    assert TLS_DIR in mounts, f"{svc}: no certificate mounted at {TLS_DIR}"
    mount = mounts[TLS_DIR]
    # A subPath mount never sees a renewed Secret; the service watches the files instead.
    assert mount.get("readOnly") is True and "subPath" not in mount, svc
    volume = volumes[mount["name"]]
    assert "items" not in volume["secret"], f"{svc}: all three keys (tls.crt, tls.key, ca.crt) are needed"
    return volume


def test_every_deployment_mounts_its_own_tls_secret(renders: dict[str, Any], svc: str, release: tuple[str, str]) -> None:
    expected = {"dev": f"{release[0]}-{svc}-tls", "production": f"likeness-{svc}-tls", "minimal": f"{svc}-cert"}
    for values_name, rendered in renders.items():
        assert tls_volume(rendered, svc)["secret"]["secretName"] == expected[values_name], values_name
        env = rendered.env(svc)
        assert env["LIKENESS_TLS_CERT_FILE"] == f"{TLS_DIR}/tls.crt"
        assert env["LIKENESS_TLS_KEY_FILE"] == f"{TLS_DIR}/tls.key"
        assert env["LIKENESS_TLS_CA_FILE"] == f"{TLS_DIR}/ca.crt"


def test_cert_manager_issues_one_certificate_per_identity(dev_render: Any, services: tuple[str, ...], release: tuple[str, str]) -> None:
    name, namespace = release
    certificates = dev_render.of_kind("Certificate")
    issuers = dev_render.of_kind("Issuer")
    ca = certificates.pop(f"{name}-ca")
    assert ca["spec"]["isCA"] is True and issuers[ca["spec"]["issuerRef"]["name"]]["spec"] == {"selfSigned": {}}
    assert set(certificates) == {f"{name}-{svc}-tls" for svc in services}
    for svc in services:
        spec = certificates[f"{name}-{svc}-tls"]["spec"]
        assert spec["uris"] == [f"spiffe://likeness/{svc}"]
        assert spec["secretName"] == tls_volume(dev_render, svc)["secret"]["secretName"]
        assert {"server auth", "client auth"} <= set(spec["usages"])
        assert f"{name}-{svc}.{namespace}.svc.cluster.local" in spec["dnsNames"]
        # Every service's certificate comes from the one CA, so each trusts the others' (ca.crt).
        issuer = issuers[spec["issuerRef"]["name"]]
        assert issuer["spec"] == {"ca": {"secretName": ca["spec"]["secretName"]}}


def test_cert_manager_with_an_operator_issuer(render_chart: Any, minimal_values: dict[str, Any], release: tuple[str, str]) -> None:
    values = json.loads(json.dumps(minimal_values))
    values["services"]["privacy"] = {"tls": {"existingSecret": ""}}
    values["services"]["faces"] = {"tls": {"existingSecret": ""}}
    with pytest.raises(helm.HelmError, match=r"issuerRef\.name is required"):
        render_chart({**values, "tls": {"certManager": {"enabled": True}}})
    issuer = {"name": "mesh-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"}
    rendered = render_chart({**values, "tls": {"certManager": {"enabled": True, "issuerRef": issuer}}})
    assert rendered.of_kind("Issuer") == {}
    certificates = rendered.of_kind("Certificate")
    # Services with their own Secret keep it; the others get a Certificate from the operator's issuer.
    assert set(certificates) == {f"{release[0]}-privacy-tls", f"{release[0]}-faces-tls"}
    assert all(c["spec"]["issuerRef"] == issuer for c in certificates.values())
    assert tls_volume(rendered, "render")["secret"]["secretName"] == "render-cert"
    assert tls_volume(rendered, "faces")["secret"]["secretName"] == f"{release[0]}-faces-tls"


def test_migrations_run_under_their_own_database_url(
    renders: dict[str, Any], services: tuple[str, ...], render_chart: Any, minimal_values: dict[str, Any], release: tuple[str, str]
) -> None:
    for svc in services:
        prod = renders["production"].env(svc)
        if svc == "faces":
            assert "LIKENESS_MIGRATION_DATABASE_URL" not in prod
            continue
        assert prod["LIKENESS_MIGRATION_DATABASE_URL"] == ("secret", "likeness-db", "migration-url")
        assert prod["LIKENESS_DATABASE_URL"] == ("secret", "likeness-db", "url")
        # Single-role setups set only the runtime URL.
        assert "LIKENESS_MIGRATION_DATABASE_URL" not in renders["minimal"].env(svc)
    owner = "postgresql://owner:pw@db.internal:5432/likeness"
    rendered = render_chart({**minimal_values, "database": {**minimal_values["database"], "migrationUrl": owner}})
    assert rendered.env("privacy")["LIKENESS_MIGRATION_DATABASE_URL"] == ("secret", release[0], "migration-database-url")
    data = rendered.get("Secret", release[0])["data"]
    assert base64.b64decode(data["migration-database-url"]).decode() == owner


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
    expected_edges = {(caller, callee) for callee, callers in EXPECTED_GRPC_CALLERS.items() for caller in callers}
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
        for svc in DATAHOLDER_ONLY_FOR_THE_GATEWAY:
            assert "gateway" not in allowed_grpc_callers(rendered, svc, release)[0]
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
        database, blobs = svc != "faces", svc in ("ingestion", "render")
        # PostgreSQL: the in-cluster pod in dev, the operator's address in production.
        dev_pg, prod_pg = egress_to(dev, svc, release, 5432), egress_to(prod, svc, release, 5432)
        assert bool(dev_pg) == bool(prod_pg) == database, svc
        if database:
            assert dev_pg[0]["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "postgresql"
            assert prod_pg[0]["to"] == [{"ipBlock": {"cidr": "10.20.0.5/32"}}]
        # Object storage (s3 in production only), the OTLP collector, Redis (the gateway's limiter).
        assert bool(egress_to(prod, svc, release, 443)) == (blobs or svc == "billing"), svc
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
        ({"blobs": {"backend": "s3", "s3": {"bucket": "b"}}}, "objectStorage"),
        ({"otel": {"exporter": "otlp", "endpoint": "http://collector:4317"}}, "otlp"),
        ({"redis": {"url": "redis://cache:6379/0"}}, "redis"),
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
            assert health["from"] == [{"ipBlock": {"cidr": "10.0.0.0/16"}}]
        else:
            assert "from" not in health  # no node CIDR given: the health-only port is open to probes from anywhere
