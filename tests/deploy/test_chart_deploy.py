"""Deployment mechanics of the chart: blobs that one replica cannot share, the migrations Job,
topology spread, the gateway's HTTP liveness, Ingress and HTTPRoute, `helm test`, PostgreSQL 18's
data layout, images pinned by digest, and NOTES.txt."""

from __future__ import annotations

import base64
import copy
from typing import Any

import helm_python as helm
import pytest

from tests.deploy.rendering import CHART, NAMESPACE, RELEASE, SCHEMA_SERVICES, SERVICES, merge

DIGEST = "sha256:" + "ab" * 32
HOOK = "helm.sh/hook"


def job(rendered: Any) -> dict[str, Any]:
    return rendered.get("Job", f"{RELEASE}-migrations")


# ------------------------------------------------------------------------ local blobs


@pytest.mark.parametrize(
    "service_values",
    [
        {"replicas": 2, "autoscaling": {"enabled": False}},
        {"replicas": 1, "autoscaling": {"enabled": True, "maxReplicas": 3}},
    ],
)
def test_local_blobs_refuse_more_than_one_replica(
    render_chart: Any, minimal_values: dict[str, Any], service_values: dict[str, Any]
) -> None:
    values = merge(minimal_values, {"blobs": {"backend": "local"}})
    for svc in ("ingestion", "render"):
        values = merge(values, {"services": {svc: {"replicas": 1, "autoscaling": {"enabled": False}}}})
    values = merge(values, {"services": {"render": service_values}})
    with pytest.raises(helm.HelmError, match=r"blobs\.backend=local keeps render's blobs .*services\.render\.replicas=1"):
        render_chart(values)


def test_local_blobs_with_one_replica_each(render_chart: Any, minimal_values: dict[str, Any]) -> None:
    values = merge(minimal_values, {"blobs": {"backend": "local"}})
    for svc in ("ingestion", "render"):
        values = merge(values, {"services": {svc: {"replicas": 1, "autoscaling": {"enabled": False}}}})
    rendered = render_chart(values)
    for svc in ("ingestion", "render"):
        assert rendered.deployment(svc)["spec"]["replicas"] == 1
    # Services that store no blobs keep their replicas.
    assert rendered.deployment("gateway")["spec"].get("replicas", 2) >= 1


# ----------------------------------------------------------------------- migrations


def test_migrations_job_runs_before_pods_change(prod_render: Any, dev_render: Any) -> None:
    annotations = job(prod_render)["metadata"]["annotations"]
    assert annotations[HOOK] == "pre-install,pre-upgrade"
    assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"]
    # The in-cluster PostgreSQL only exists after install: there the Job follows it.
    assert job(dev_render)["metadata"]["annotations"][HOOK] == "post-install,pre-upgrade"


def test_migrations_job_migrates_each_schema_in_its_own_image_as_the_owner(prod_render: Any) -> None:
    spec = job(prod_render)["spec"]["template"]["spec"]
    containers = {c["name"]: c for c in spec["containers"]}
    assert set(containers) == set(SCHEMA_SERVICES)
    assert spec["restartPolicy"] == "Never" and spec["automountServiceAccountToken"] is False
    for svc, container in containers.items():
        assert container["image"] == prod_render.container(svc)["image"]
        assert container["command"] == ["python", "-m", "likeness_platform.migrate"] and container["args"] == [svc]
        env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
        # The owner role applies; the runtime role's URL names who gets the grants.
        assert env["LIKENESS_MIGRATION_DATABASE_URL"] == {"name": "likeness-db", "key": "migration-url"}
        assert env["LIKENESS_DATABASE_URL"] == {"name": "likeness-db", "key": f"url-{svc}"}
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    # Existing Secrets exist before the hook: no copy is made.
    assert f"{RELEASE}-migrations" not in prod_render.of_kind("Secret")


def test_migrations_job_gets_chart_stored_urls_through_a_hook_secret(render_chart: Any, minimal_values: dict[str, Any]) -> None:
    urls = {svc: f"postgresql://{svc}:pw@db:5432/likeness" for svc in SCHEMA_SERVICES}
    owner = "postgresql://owner:pw@db:5432/likeness"
    rendered = render_chart(merge(minimal_values, {"database": {"urls": urls, "migrationUrl": owner}}))
    secret = rendered.get("Secret", f"{RELEASE}-migrations")
    # Made before the Job (lower weight), deleted after the hooks whatever their outcome.
    annotations = secret["metadata"]["annotations"]
    assert annotations[HOOK] == "pre-install,pre-upgrade" and int(annotations["helm.sh/hook-weight"]) < 0
    assert set(annotations["helm.sh/hook-delete-policy"].split(",")) >= {"hook-succeeded", "hook-failed"}
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data == {"migration-database-url": owner, **{f"database-url-{svc}": url for svc, url in urls.items()}}
    # The same values as the chart's own Secret, which the pods read.
    main = {k: base64.b64decode(v).decode() for k, v in rendered.get("Secret", RELEASE)["data"].items()}
    assert all(main[k] == v for k, v in data.items())
    for container in job(rendered)["spec"]["template"]["spec"]["containers"]:
        refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
        assert refs["LIKENESS_DATABASE_URL"] == {"name": f"{RELEASE}-migrations", "key": f"database-url-{container['name']}"}
        assert refs["LIKENESS_MIGRATION_DATABASE_URL"] == {"name": f"{RELEASE}-migrations", "key": "migration-database-url"}


def test_migrations_job_reaches_the_database_under_the_network_policy(prod_render: Any, dev_render: Any) -> None:
    policy = prod_render.get("NetworkPolicy", f"{RELEASE}-migrations")["spec"]
    assert policy["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "migrations"
    assert "ingress" not in policy, "nothing may connect to the Job"
    assert {"to": [{"ipBlock": {"cidr": "10.20.0.5/32"}}], "ports": [{"port": 5432, "protocol": "TCP"}]} in policy["egress"]
    dev = dev_render.get("NetworkPolicy", f"{RELEASE}-migrations")["spec"]["egress"]
    assert any(r["to"][0].get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/component") == "postgresql" for r in dev)


def test_migrations_job_can_be_turned_off(render_chart: Any, minimal_values: dict[str, Any]) -> None:
    rendered = render_chart(merge(minimal_values, {"migrations": {"enabled": False}}))
    assert rendered.of_kind("Job") == {} and f"{RELEASE}-migrations" not in rendered.of_kind("NetworkPolicy")


# ------------------------------------------------------------------- scheduling, probes


def test_replicas_spread_over_zones_and_nodes_by_default(renders: dict[str, Any]) -> None:
    for values_name, rendered in renders.items():
        for svc in SERVICES:
            pod = rendered.deployment(svc)["spec"]["template"]
            constraints = pod["spec"]["topologySpreadConstraints"]
            assert [c["topologyKey"] for c in constraints] == ["topology.kubernetes.io/zone", "kubernetes.io/hostname"], values_name
            for constraint in constraints:
                assert constraint["whenUnsatisfiable"] == "ScheduleAnyway"
                selector = constraint["labelSelector"]["matchLabels"]
                assert selector.items() <= pod["metadata"]["labels"].items(), "the constraint must select the pods it spreads"
                assert constraint["matchLabelKeys"] == ["pod-template-hash"]


def test_a_services_own_spread_replaces_the_default(render_chart: Any, minimal_values: dict[str, Any]) -> None:
    own = [
        {
            "maxSkew": 2,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"a": "b"}},
        }
    ]
    rendered = render_chart(merge(minimal_values, {"services": {"faces": {"topologySpreadConstraints": own}}}))
    assert rendered.deployment("faces")["spec"]["template"]["spec"]["topologySpreadConstraints"] == own
    off = render_chart(merge(minimal_values, {"topologySpread": {"enabled": False}}))
    assert "topologySpreadConstraints" not in off.deployment("render")["spec"]["template"]["spec"]


def test_gateway_liveness_is_its_http_server(renders: dict[str, Any]) -> None:
    for rendered in renders.values():
        container = rendered.container("gateway")
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert {"name": "http", "containerPort": 8080, "protocol": "TCP"} in container["ports"]
        # Readiness stays on gRPC health: the mesh's view of the gateway.
        assert "grpc" in container["readinessProbe"]


# ------------------------------------------------------------------ ingress, HTTPRoute


def test_ingress_routes_to_the_gateway_http_service(render_chart: Any, minimal_values: dict[str, Any]) -> None:
    ingress_values = {
        "enabled": True,
        "className": "nginx",
        "annotations": {"cert-manager.io/cluster-issuer": "letsencrypt"},
        "hosts": ["api.example.com"],
        "tls": [{"hosts": ["api.example.com"], "secretName": "api-tls"}],
    }
    rendered = render_chart(merge(minimal_values, {"ingress": ingress_values}))
    ingress = rendered.get("Ingress", f"{RELEASE}-gateway")
    spec = ingress["spec"]
    assert spec["ingressClassName"] == "nginx" and spec["tls"] == ingress_values["tls"]
    assert ingress["metadata"]["annotations"] == ingress_values["annotations"]
    (rule,) = spec["rules"]
    (path,) = rule["http"]["paths"]
    assert rule["host"] == "api.example.com" and path["path"] == "/" and path["pathType"] == "Prefix"
    service = rendered.get("Service", f"{RELEASE}-gateway-http")
    assert path["backend"]["service"] == {"name": service["metadata"]["name"], "port": {"number": service["spec"]["ports"][0]["port"]}}
    assert render_chart(minimal_values).of_kind("Ingress") == {}


def test_httproute_routes_to_the_gateway_http_service(render_chart: Any, minimal_values: dict[str, Any]) -> None:
    parents = [{"name": "public", "namespace": "gateways", "sectionName": "https"}]
    rendered = render_chart(
        merge(minimal_values, {"httpRoute": {"enabled": True, "parentRefs": parents, "hostnames": ["api.example.com"]}})
    )
    (route,) = [d for d in rendered.documents if d["kind"] == "HTTPRoute"]
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert route["spec"]["parentRefs"] == parents and route["spec"]["hostnames"] == ["api.example.com"]
    (rule,) = route["spec"]["rules"]
    assert rule["backendRefs"] == [{"name": f"{RELEASE}-gateway-http", "port": 80}]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"ingress": {"enabled": True}}, r"ingress\.hosts is required"),
        ({"httpRoute": {"enabled": True}}, r"httpRoute\.parentRefs is required"),
    ],
)
def test_routes_need_their_addresses(render_chart: Any, minimal_values: dict[str, Any], values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm.HelmError, match=message):
        render_chart(merge(minimal_values, values))


# ------------------------------------------------------------------------ helm test


def test_helm_test_checks_every_health_port_and_the_gateway(prod_render: Any) -> None:
    import json

    pod = prod_render.get("Pod", f"{RELEASE}-test-health")
    assert pod["metadata"]["annotations"][HOOK] == "test"
    assert pod["metadata"]["labels"]["app.kubernetes.io/component"] == "test"
    (container,) = pod["spec"]["containers"]
    assert container["image"] == prod_render.container("gateway")["image"]
    env = {e["name"]: e["value"] for e in container["env"]}
    targets = json.loads(env["HEALTH_TARGETS"])
    assert set(targets) == set(SERVICES)
    for svc, target in targets.items():
        port = prod_render.container(svc)["ports"]
        health = next(p["containerPort"] for p in port if p["name"] == "health")
        assert target == f"{RELEASE}-{svc}.{NAMESPACE}.svc.cluster.local:{health}"
    assert env["GATEWAY_URL"] == f"http://{RELEASE}-gateway-http.{NAMESPACE}.svc.cluster.local:80"
    assert "/readyz" in container["args"][0] and "SERVING" in container["args"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    # Its own policy lets it out to exactly those ports.
    egress = prod_render.get("NetworkPolicy", f"{RELEASE}-test")["spec"]["egress"]
    ports = {p["port"] for rule in egress[1:] for p in rule["ports"]}
    assert ports == {int(t.rsplit(":", 1)[1]) for t in targets.values()} | {8080}


def test_helm_test_can_be_turned_off(render_chart: Any, minimal_values: dict[str, Any]) -> None:
    rendered = render_chart(merge(minimal_values, {"tests": {"enabled": False}}))
    assert rendered.of_kind("Pod") == {} and f"{RELEASE}-test" not in rendered.of_kind("NetworkPolicy")


# ------------------------------------------------------------------- postgres, images


def test_postgresql_uses_the_18_data_layout(dev_render: Any) -> None:
    (container,) = dev_render.get("StatefulSet", f"{RELEASE}-postgresql")["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["PGDATA"] == "/var/lib/postgresql/18/docker"
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["data"] == "/var/lib/postgresql"


def test_postgresql_before_18_is_refused(render_chart: Any, dev_values: dict[str, Any]) -> None:
    values = copy.deepcopy(dev_values)
    values["postgresql"]["image"] = {"repository": "postgres", "tag": "17", "pullPolicy": "IfNotPresent"}
    with pytest.raises(helm.HelmError, match=r"values don't meet the specifications|18 or later"):
        render_chart(values)


def test_images_can_be_pinned_by_digest(render_chart: Any, dev_values: dict[str, Any]) -> None:
    values = merge(dev_values, {"image": {"digests": {"faces": DIGEST}}, "postgresql": {"image": {"digest": DIGEST}}})
    rendered = render_chart(values)
    assert rendered.container("faces")["image"] == f"likeness-faces:dev@{DIGEST}"
    assert rendered.container("render")["image"] == "likeness-render:dev"
    (pg,) = rendered.get("StatefulSet", f"{RELEASE}-postgresql")["spec"]["template"]["spec"]["containers"]
    assert pg["image"] == f"postgres:18@{DIGEST}"
    with pytest.raises(helm.HelmError):
        render_chart(merge(dev_values, {"image": {"digests": {"faces": "latest"}}}))


# --------------------------------------------------------------------------- NOTES


def test_notes_explain_tls_and_keys(dev_values: dict[str, Any], minimal_values: dict[str, Any]) -> None:
    for values in (dev_values, minimal_values):
        with helm.Chart.load(CHART) as chart:
            notes = chart.render(copy.deepcopy(values), name=RELEASE, namespace=NAMESPACE)["likeness/templates/NOTES.txt"]
        for phrase in ("mutual TLS", "privacyKeys", "billingKeys", "helm test"):
            assert phrase in notes, phrase
    assert "cert-manager" in notes or "existingSecret" in notes
