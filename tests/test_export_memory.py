"""A 500 MB export holds privacy under its memory limit: real processes (privacy, ingestion, gateway), real sealed
uploads, the export built in the background, its progress polled, and the zip downloaded through the gateway,
while privacy's peak resident memory is read from /proc."""

from __future__ import annotations

import base64
import os
import tempfile
import time
import uuid
import zipfile
from pathlib import Path

import grpc
import httpx
import psycopg
import yaml

from likeness.privacy.v1 import privacy_pb2, privacy_pb2_grpc
from likeness_gateway.domain.tokens import token_hash
from likeness_platform.blobs import SubjectNames, _valid
from likeness_platform.crypto import seal
from tests.support.mesh import Mesh

MiB = 1024 * 1024
PHOTO_BYTES = 5 * MiB
PHOTOS = 100  # 500 MiB of photos, about what 20 uploads of 25 MB make
DEVICE = {"platform": "ios", "model": "iPhone15,2", "os_version": "18.1", "app_version": "1.0", "language": "en", "age_confirmed": True}
CHART_VALUES = Path(__file__).resolve().parents[1] / "k8s" / "likeness" / "values.yaml"


def _memory_limit_bytes() -> int:
    """Privacy's memory limit in the Helm chart (e.g. 512Mi)."""
    limit = yaml.safe_load(CHART_VALUES.read_text())["services"]["privacy"]["resources"]["limits"]["memory"]
    assert limit.endswith("Mi"), limit
    return int(limit[:-2]) * MiB


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for {pid}")


def _plant_photos(mesh: Mesh, database_url: str, subject: str) -> None:
    """Sealed uploads as ingestion stores them (its blob folder and rows, the subject's data key and keyed blob
    names), made without decoding 500 MB of images: each is 5 MiB of random bytes, sealed once."""
    with grpc.secure_channel(mesh.addr("privacy"), mesh.credentials("ingestion")) as channel:
        key = privacy_pb2_grpc.PrivacyStub(channel).GetDataKey(privacy_pb2.GetDataKeyRequest(subject_id=subject), timeout=10)
    names = SubjectNames(base64.b64decode(mesh.dev_secret("dev-blob-name-key")))
    blob_root = mesh.run_dir / "blobs" / "ingestion"
    base = os.urandom(PHOTO_BYTES)
    rows = []
    for i in range(PHOTOS):
        name = names.blob_name(subject)
        path = blob_root / name[:2] / _valid(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(seal(key.key, i.to_bytes(4, "big") + base[4:], key.key_id, name.encode()))
        rows.append((uuid.uuid4(), subject, name, f"{i:064x}", PHOTO_BYTES))
    with psycopg.connect(database_url) as conn:
        conn.cursor().executemany(
            "INSERT INTO ingestion.uploads (upload_id, subject_id, blob_name, sha256, size_bytes, format, width, height, purpose,"
            " retention_class, expires_at) VALUES (%s, %s, %s, %s, %s, 'jpeg', 4000, 3000, 'test', 'default', now() + interval '1 hour')",
            rows,
        )


def test_a_500_mb_export_holds_privacy_under_its_memory_limit(tmp_path: Path, database_url: str) -> None:
    mesh = Mesh(tmp_path / "run", database_url=database_url, free_ports=True, quiet=True, services=("privacy", "ingestion", "gateway"))
    try:
        mesh.up()
        with httpx.Client(base_url=mesh.http_url, timeout=120) as client:
            token = client.post("/v1/devices", json=DEVICE).json()["token"]
            auth = {"Authorization": f"Bearer {token}"}
            with psycopg.connect(database_url) as conn:
                (subject,) = conn.execute(
                    "SELECT subject_id::text FROM gateway.devices WHERE token_hash = %s", (token_hash(token),)
                ).fetchone()
            _plant_photos(mesh, database_url, subject)
            pid = mesh.procs["privacy"].pid
            Path(f"/proc/{pid}/clear_refs").write_text("5")  # the peak so far was start-up's: count from here
            before = _status_kib(pid, "VmRSS")
            started = time.monotonic()
            reply = client.get("/v1/me/export", headers={**auth, "Prefer": "respond-async"})
            assert reply.status_code == 202, reply.text
            percents = [reply.json()["percent"]]
            while (progress := client.get("/v1/me/export", headers={**auth, "Accept": "application/json"}).json())["state"] == "building":
                percents.append(progress["percent"])
                assert time.monotonic() - started < 600, progress
                time.sleep(0.5)
            assert progress["state"] == "ready", progress
            assert progress["bytes_expected"] >= PHOTOS * PHOTO_BYTES and progress["bytes_gathered"] >= PHOTOS * PHOTO_BYTES
            built = time.monotonic() - started
            size = 0
            with tempfile.TemporaryFile() as out, client.stream("GET", "/v1/me/export", headers=auth) as download:
                assert download.status_code == 200
                for chunk in download.iter_bytes(MiB):
                    out.write(chunk)
                    size += len(chunk)
                out.seek(0)
                with zipfile.ZipFile(out) as archive:
                    photos = [i for i in archive.infolist() if i.filename.startswith("ingestion/uploads/")]
            peak = _status_kib(pid, "VmHWM")
        elapsed = time.monotonic() - started
        print(
            f"export of {size / MiB:.0f} MiB: built in {built:.1f} s, downloaded by {elapsed:.1f} s; privacy resident "
            f"{before / MiB:.0f} MiB before, peak {peak / MiB:.0f} MiB (limit {_memory_limit_bytes() / MiB:.0f} MiB)"
        )
        assert len(photos) == PHOTOS and all(i.file_size == PHOTO_BYTES for i in photos)
        assert size == progress["bytes_written"] >= PHOTOS * PHOTO_BYTES
        assert percents == sorted(percents) and max(percents) < 100  # visible, and only moving forwards
        # Under the chart's limit with room to spare, and growing by a small fraction of the export while building it.
        assert peak < _memory_limit_bytes() * 0.6, peak
        assert peak - before < 96 * MiB, (before, peak)
    finally:
        mesh.down()
