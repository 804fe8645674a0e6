"""Erasure converges across real process failures: a holder down, then privacy killed (SIGKILL) mid-erasure."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import psycopg

from tests.support.mesh import Mesh

DEVICE = {"platform": "ios", "model": "iPhone15,2", "os_version": "18.1", "app_version": "1.0", "language": "en", "age_confirmed": True}


def _status(client: httpx.Client, erasure_id: str) -> dict:
    reply = client.get(f"/v1/me/erasures/{erasure_id}")
    # While privacy restarts the gateway answers 503; that is a state to wait through, not a failure.
    return reply.json() if reply.status_code == 200 else {"status": f"http {reply.status_code}", "receipts": []}


def test_privacy_killed_mid_erasure_resumes_and_completes(tmp_path: Path, database_url: str) -> None:
    mesh = Mesh(
        tmp_path / "run",
        database_url=database_url,
        free_ports=True,
        quiet=True,
        services=("privacy", "ingestion", "gateway"),
        extra_env={
            "LIKENESS_ERASURE_RETRY_BASE_SECONDS": "0.2",
            "LIKENESS_ERASURE_RETRY_CAP_SECONDS": "1",
            "LIKENESS_ERASURE_POLL_SECONDS": "0.5",
        },
    )
    try:
        mesh.up()
        with httpx.Client(base_url=mesh.http_url, timeout=30) as client:
            token = client.post("/v1/devices", json=DEVICE).json()["token"]
            auth = {"Authorization": f"Bearer {token}"}
            assert client.post("/v1/uploads", content=_jpeg(), headers={**auth, "Content-Type": "image/jpeg"}).status_code == 201
            mesh.stop("ingestion")  # a holder is down when the erasure starts
            erasure_id = client.delete("/v1/me", headers=auth).json()["erasure_id"]
            deadline = time.monotonic() + 20
            while not any(r["holder"] == "ingestion" and r["attempts"] >= 1 for r in _status(client, erasure_id)["receipts"]):
                assert time.monotonic() < deadline
                time.sleep(0.1)
            assert _status(client, erasure_id)["status"] == "in_progress"
            mesh.kill("privacy")  # no graceful stop: the process dies mid-erasure
            mesh.start("ingestion")
            mesh.wait_healthy("ingestion")
            mesh.start("privacy")
            mesh.wait_healthy("privacy")
            deadline = time.monotonic() + 60
            while (status := _status(client, erasure_id))["status"] != "completed":
                assert time.monotonic() < deadline, status
                time.sleep(0.2)
            ingestion = next(r for r in status["receipts"] if r["holder"] == "ingestion")
            assert ingestion["erased"] == {"uploads": 1, "blobs": 1} and ingestion["attempts"] >= 2
        with psycopg.connect(database_url) as conn:
            assert conn.execute(
                "SELECT count(*) FROM privacy.erasures WHERE erasure_id = %s AND status = 'completed'", (erasure_id,)
            ).fetchone() == (1,)
    finally:
        mesh.down()


def _jpeg() -> bytes:
    import io

    import numpy as np
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(np.random.default_rng(5).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(out, format="JPEG")
    return out.getvalue()
