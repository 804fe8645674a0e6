"""The chart rendered by Helm's engine: valid Kubernetes objects, and the properties the
deployment promises (hardening, probes, balancing, certificates, scaling, GPU). Network
policies are in test_chart_network.py, secrets and settings in test_chart_config.py."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
from kubernetes_validate import utils as kv_utils

# Oldest version the chart supports (Chart.yaml kubeVersion: native gRPC probes are GA
# from 1.27) and the newest kubernetes-validate ships schemas for.
K8S_VERSIONS = ("1.27", kv_utils.latest_version())

PROBES = ("startupProbe", "readinessProbe", "livenessProbe")
SERVICES = ("gateway", "ingestion", "faces", "render", "billing", "privacy", "admin")
TLS_DIR = "/etc/likeness/tls"
CERT_MANAGER_KINDS = {"Certificate", "Issuer", "ClusterIssuer"}


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
    given = {"database": database, "networkPolicy": egress, "services": tls, "billingKeys": {"existingSecret": "b"}}
    with pytest.raises(helm.HelmError, match=r"blobs\.nameKey|blobs\.backend=local keeps"):
        render_chart(given)
    with pytest.raises(helm.HelmError, match=r"blobs\.backend=local keeps \w+'s blobs on each pod's own emptyDir"):
        render_chart({**given, "blobs": {"backend": "local", "nameKeyExistingSecret": "n"}})
    egress["egress"]["objectStorage"] = {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [443]}
    with pytest.raises(helm.HelmError, match=r"blobs\.nameKey"):
        render_chart({**given, "blobs": {"backend": "s3", "s3": {"bucket": "b"}}})
    with pytest.raises(helm.HelmError, match="kek"):
        render_chart({**given, "blobs": {"backend": "s3", "s3": {"bucket": "b"}, "nameKeyExistingSecret": "n"}})


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
    values = {**minimal_values, "privacyKeys": {**minimal_values["privacyKeys"], "kek": base64.b64encode(b"0" * 16).decode()}}
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
            if svc == "gateway" and probe == "livenessProbe":
                # The HTTP server is what clients reach: its liveness is /healthz (no upstream in it).
                assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
                continue
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
    other = {**minimal_values, "privacyKeys": {**minimal_values["privacyKeys"], "kek": base64.b64encode(bytes(32)).decode()}}
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
