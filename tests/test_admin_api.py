"""The admin HTTP API on the `make run` mesh (every service its own process): operators by mTLS certificate,
refusals without a certificate or the role, allowed calls logged, and usage statistics counted from real
ID-photo calls with small counts withheld."""

from __future__ import annotations

import io
import json
import os
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import psycopg
import pytest
from matplotlib import cbook
from PIL import Image

from likeness_platform.devpki import DevPki
from tests.support.mesh import Mesh

K = 3
APP_VERSION = f"7.{uuid.uuid4().int % 10_000}.0"
OUTFIT_TAG = uuid.uuid4().hex[:8]
DEVICE = {
    "platform": "ios",
    "model": "iPhone15,2",
    "os_version": "18.1",
    "app_version": APP_VERSION,
    "language": "en",
    "age_confirmed": True,
}


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[Mesh]:
    mesh = Mesh(
        tmp_path_factory.mktemp("admin"),
        database_url=database_url,
        free_ports=True,
        quiet=True,
        # A generous deadline for the gateway's calls: this checks behaviour, not speed, on a shared machine.
        extra_env={
            "LIKENESS_STATS_MIN_COUNT": str(K),
            "LIKENESS_FREE_DAILY_GENERATIONS": "10",
            "LIKENESS_UPSTREAM_DEADLINE_SECONDS": "120",
        },
    )
    try:
        mesh.up()
        yield mesh
    finally:
        mesh.down()
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("DELETE FROM privacy.usage_stats WHERE app_version = %s", (APP_VERSION,))
            conn.execute("DELETE FROM render.outfits WHERE outfit_id = %s", (f"admin-test-{OUTFIT_TAG}",))


def admin(mesh: Mesh, identity: str | None, roles: list[str] | None = None) -> httpx.Client:
    """An HTTPS client of the admin API presenting `identity`'s certificate (none for None)."""
    ca = mesh.tls_files("admin").ca
    context = ssl.create_default_context(cafile=str(ca))
    if identity is not None:
        issued = mesh.pki.issue(identity, roles=roles) if roles is not None else mesh.tls_files(identity)
        context.load_cert_chain(str(issued.cert), str(issued.key))
    return httpx.Client(base_url=mesh.admin_url, verify=context, timeout=60)


def test_refuses_without_certificate_or_role_and_serves_openapi(mesh: Mesh, tmp_path: Path) -> None:
    with admin(mesh, None) as anonymous:
        assert anonymous.get("/healthz").status_code == 200
        spec = anonymous.get("/openapi.json")
        assert spec.status_code == 200
        assert {"/v1/ledger/verify", "/v1/usage", "/v1/subjects/{subject_id}/inventory", "/v1/erasures/{erasure_id}"} <= set(
            spec.json()["paths"]
        )
        refused = anonymous.post("/v1/ledger/verify")
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "CERTIFICATE_REQUIRED"
    # An operator certificate from another CA does not get through the handshake.
    rogue = DevPki(tmp_path / "rogue", ca_name="Not the mesh CA").ensure("operator/eve")
    context = ssl.create_default_context(cafile=str(mesh.tls_files("admin").ca))
    context.load_cert_chain(str(rogue.cert), str(rogue.key))
    with pytest.raises(httpx.TransportError):
        httpx.get(mesh.admin_url + "/v1/whoami", verify=context, timeout=10)
    # A service's certificate is not an operator's.
    with admin(mesh, "render") as service:
        refused = service.post("/v1/ledger/verify")
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "NOT_AN_OPERATOR"
    with admin(mesh, "operator/sam", roles=["support"]) as support:
        assert support.get("/v1/whoami").json() == {"operator": "operator/sam", "roles": ["support"]}
        refused = support.post("/v1/ledger/verify")
        assert refused.status_code == 403
        error = refused.json()["error"]
        assert error["code"] == "ROLE_REQUIRED" and error["details"]["roles_needed"] == ["auditor"]
        assert support.get("/v1/usage").status_code == 403
        assert support.post("/v1/templates", data={"name": "x"}, files={"image": ("t.png", b"png", "image/png")}).status_code == 403
    with admin(mesh, "operator/ann", roles=["auditor"]) as auditor:
        verified = auditor.post("/v1/ledger/verify")
        assert verified.status_code == 200 and verified.json()["ok"] is True, verified.text
        assert auditor.get("/v1/security-events", params={"limit": 5}).status_code == 200
        assert auditor.get("/v1/subjects/00000000-0000-0000-0000-000000000000/inventory", params={"purpose": "x"}).status_code == 403
        assert auditor.get("/v1/settings").status_code == 403
    with admin(mesh, "operator/ada", roles=["admin"]) as admin_role:
        settings = admin_role.get("/v1/settings")
        assert settings.status_code == 200, settings.text
        retention = {r["category"]: r["period"] for r in settings.json()["retention"]}
        assert retention["uploads"] == "86400s" and retention["access_log"] == "31536000s"
        assert settings.json()["stats_min_count"] == K and "kek" not in settings.json()
        rewrapped = admin_role.post("/v1/keys/rewrap")
        assert rewrapped.status_code == 200 and rewrapped.json()["moved"] == 0  # no KEK was retired
    # Admins register garment materials (the multipart form carries the anchors); support may only look.
    from likeness_render.domain import outfit_demo

    blazer = {g.id: g for g in outfit_demo.demo_garments()}["blazer"]
    png = io.BytesIO()
    Image.fromarray(np.array(blazer.rgba)).save(png, format="PNG")
    form = {
        "name": f"Admin test {OUTFIT_TAG}",
        "neck": "{},{}".format(*blazer.neck),
        "left_shoulder": "{},{}".format(*blazer.left_shoulder),
        "right_shoulder": "{},{}".format(*blazer.right_shoulder),
    }
    with admin(mesh, "operator/ada", roles=["admin"]) as admin_role:
        added = admin_role.post("/v1/outfits", data=form, files={"image": ("blazer.png", png.getvalue(), "image/png")})
        assert added.status_code == 201, added.text
        assert added.json()["outfit_id"] == f"admin-test-{OUTFIT_TAG}"
        swapped = {**form, "left_shoulder": form["right_shoulder"], "right_shoulder": form["left_shoulder"]}
        bad = admin_role.post("/v1/outfits", data=swapped, files={"image": ("blazer.png", png.getvalue(), "image/png")})
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "INVALID_OUTFIT"  # render's own check, through
        unparsable = admin_role.post(
            "/v1/outfits", data={**form, "neck": "middle"}, files={"image": ("b.png", png.getvalue(), "image/png")}
        )
        assert unparsable.status_code == 400 and unparsable.json()["error"]["code"] == "INVALID_OUTFIT"
    with admin(mesh, "operator/sam", roles=["support"]) as support:
        assert f"admin-test-{OUTFIT_TAG}" in {o["outfit_id"] for o in support.get("/v1/outfits").json()["outfits"]}
        refused = support.post("/v1/outfits", data=form, files={"image": ("blazer.png", png.getvalue(), "image/png")})
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "ROLE_REQUIRED"
    # Refusals are security events (who, what, the address only as privacy keeps it), as refused gRPC calls are.
    with admin(mesh, "operator/ann", roles=["auditor"]) as auditor:
        deadline = time.monotonic() + 20
        while not [
            e
            for e in auditor.get("/v1/security-events", params={"limit": 1000}).json()["events"]
            if e["event_type"] == "operator_refused"
            and e["caller"] == "spiffe://likeness/operator/sam"
            and e["method"] == "/likeness.privacy.v1.Privacy/VerifyLedger"
        ]:
            assert time.monotonic() < deadline, "the refusal never reached the security-event log"
            time.sleep(0.2)
    # The refusals reached no service; the allowed calls are in the admin API's log with operator and method.
    log = (mesh.run_dir / "admin.log").read_text()
    calls = [json.loads(line) for line in log.splitlines() if '"operator_call"' in line]
    assert any(c["operator"] == "operator/ann" and c["rpc"] == "Privacy/VerifyLedger" and c["status"] == 200 for c in calls)
    assert not any(c["operator"] == "operator/sam" and c["rpc"] == "Privacy/VerifyLedger" for c in calls)


def _photo() -> bytes:
    with cbook.get_sample_data("grace_hopper.jpg") as fh:
        return fh.read()


def _usage_rows(database_url: str) -> dict[tuple[str, str, str, str], int]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT interface, operation, spec_id, outcome, count FROM privacy.usage_stats WHERE app_version = %s", (APP_VERSION,)
        ).fetchall()
    return {(r[0], r[1], r[2], r[3]): int(r[4]) for r in rows}


def test_inventory_is_access_logged_and_usage_counts_real_calls_with_small_cells_withheld(mesh: Mesh, database_url: str) -> None:
    app = httpx.Client(base_url=mesh.http_url, timeout=180)
    registered = app.post("/v1/devices", json=DEVICE)
    assert registered.status_code == 201, registered.text
    auth = {"Authorization": f"Bearer {registered.json()['token']}"}
    upload = app.post("/v1/uploads", files={"file": ("me.jpg", _photo(), "image/jpeg")}, headers=auth)
    assert upload.status_code == 201, upload.text
    upload_id = upload.json()["upload_id"]
    # K checks against one spec (a cell of K), one against another and one ID photo (cells of 1).
    for _ in range(K):
        check = app.post("/v1/id-photos/check", json={"upload_id": upload_id, "spec_id": "us-passport"}, headers=auth)
        assert check.status_code == 200, check.text
    assert app.post("/v1/id-photos/check", json={"upload_id": upload_id, "spec_id": "jp-passport"}, headers=auth).status_code == 200
    made = app.post("/v1/id-photos", json={"upload_id": upload_id, "spec_id": "schengen-visa"}, headers=auth)
    assert made.status_code == 201, made.text

    expected = {
        ("http", "id_photo_check", "us-passport", "ok"): K,
        ("http", "id_photo_check", "jp-passport", "ok"): 1,
        ("http", "id_photo", "schengen-visa", "ok"): 1,
    }
    deadline = time.monotonic() + 30
    while (rows := _usage_rows(database_url)) != expected:
        assert time.monotonic() < deadline, rows
        time.sleep(0.2)
    with psycopg.connect(database_url) as conn:
        columns = {
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'privacy' AND table_name = 'usage_stats'"
            )
        }
        subject_id = str(
            conn.execute("SELECT subject_id FROM gateway.devices WHERE device_id = %s", (registered.json()["device_id"],)).fetchone()[0]
        )
    # Only the dimensions and the count: nothing that says who, from where, or when within the day.
    assert columns == {"day", "interface", "operation", "spec_id", "country", "outcome", "app_version", "count"}

    with admin(mesh, "operator/ann", roles=["auditor"]) as auditor:
        # Today's counts are never shown (two reads an hour apart would give the calls in between).
        today = auditor.get("/v1/usage", params={"where": f"app_version={APP_VERSION}"})
        assert today.status_code == 200 and today.json()["cells"] == [], today.text
        # A day later (the rows moved back a day):
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("UPDATE privacy.usage_stats SET day = day - 1 WHERE app_version = %s", (APP_VERSION,))
        by_spec = auditor.get("/v1/usage", params={"where": f"app_version={APP_VERSION}", "group_by": ["operation", "spec_id", "country"]})
        assert by_spec.status_code == 200, by_spec.text
        body = by_spec.json()
        assert body["min_count"] == K
        assert body["cells"] == [{"dimensions": {"operation": "id_photo_check", "spec_id": "us-passport", "country": "US"}, "count": K}]
        # Totals are sums of the shown cells: the total by operation does not give the withheld ones away by difference.
        by_operation = auditor.get("/v1/usage", params={"where": f"app_version={APP_VERSION}", "group_by": ["interface"]}).json()
        assert by_operation["cells"] == [{"dimensions": {"interface": "http"}, "count": K}]

    # `likeness stats` with make run's development operator (every role) shows the same.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIKENESS_CLIENT", "LIKENESS_RENDER", "LIKENESS_PRIVACY"))}
    env["LIKENESS_CLIENT_TLS_DIR"] = str(Path(mesh.tls_files("operator/dev").cert).parent)
    ran = subprocess.run(
        [sys.executable, "-m", "likeness_client.cli", "stats", "--where", f"app_version={APP_VERSION}", "--by", "spec_id", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["cells"] == [{"spec_id": "us-passport", "count": K}]

    # Support looks at the subject (counts, no content): the look is in the access log under the operator, via admin.
    with admin(mesh, "operator/sam", roles=["support"]) as support:
        assert support.get(f"/v1/subjects/{subject_id}/inventory").json()["error"]["code"] == "PURPOSE_REQUIRED"
        looked = support.get(f"/v1/subjects/{subject_id}/inventory", params={"purpose": "ticket 4711"})
        assert looked.status_code == 200, looked.text
        holders = {h["holder"]: {c["category"]: int(c["count"]) for c in h["counts"]} for h in looked.json()["holders"]}
        assert holders["ingestion"]["uploads"] == 1 and holders["render"]["results"] >= 1
        assert looked.json()["subject"]["state"] == "SUBJECT_STATE_ACTIVE"
    with psycopg.connect(database_url) as conn:
        logged = conn.execute(
            "SELECT actor, resource, purpose FROM privacy.access_log WHERE subject_id = %s AND resource = 'privacy/inventory'",
            (subject_id,),
        ).fetchall()
    assert logged == [("operator/sam via admin", "privacy/inventory", "ticket 4711")]

    deleted = app.delete("/v1/me", headers=auth)
    assert deleted.status_code == 202
    app.close()
    # Support follows the erasure (the service's stable code comes through on a miss).
    with admin(mesh, "operator/sam", roles=["support"]) as support:
        deadline = time.monotonic() + 60
        while (status := support.get(f"/v1/erasures/{deleted.json()['erasure_id']}")).json().get("status") != "completed":
            assert status.status_code == 200, status.text
            assert time.monotonic() < deadline, status.text
            time.sleep(0.2)
        assert {r["holder"] for r in status.json()["receipts"]} >= {"privacy", "ingestion", "render"}
        missing = support.get(f"/v1/erasures/{uuid.uuid4()}")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "ERASURE_NOT_FOUND"
        assert support.get("/v1/templates").status_code == 200  # any operator may list the catalog
