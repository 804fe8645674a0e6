"""The `likeness` CLI as an operator runs it (a separate process, mTLS as an operator certificate) against
the real privacy, ingestion, faces and render services: batch ID photos with a summary, resume, refusals."""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psycopg
import pytest
from matplotlib import cbook
from PIL import Image
from skimage import data

from likeness.privacy.v1 import privacy_pb2, privacy_pb2_grpc
from tests.support.pki import channel, files, pki
from tests.support.services import Started, free_port, start_faces, start_ingestion, start_privacy, start_render

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Ran:
    rc: int
    out: str
    err: str


def _jpeg(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=92)
    return buf.getvalue()


@pytest.fixture(scope="module")
async def mesh(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> AsyncIterator[dict[str, str]]:
    started = Started()
    tmp = tmp_path_factory.mktemp("cli")
    ingestion_port, faces_port, render_port = free_port(), free_port(), free_port()
    privacy, privacy_addr = await start_privacy(database_url, {"render": f"127.0.0.1:{render_port}"}, started)
    await start_ingestion(database_url, privacy_addr, tmp / "uploads", started, port=ingestion_port)
    await start_faces(started, f"127.0.0.1:{ingestion_port}", port=faces_port)
    addrs = {"privacy": privacy_addr, "ingestion": f"127.0.0.1:{ingestion_port}", "faces": f"127.0.0.1:{faces_port}"}
    await start_render(database_url, addrs, tmp / "results", started, port=render_port)
    try:
        yield {**addrs, "render": f"127.0.0.1:{render_port}"}
        # The erasures the CLI asked for (each batch's subject) complete across the holders: nothing is left behind.
        for _ in range(50):
            if not await privacy.erasures.drive_open():
                break
            await asyncio.sleep(0.2)
        assert await privacy.erasures.drive_open() == []
    finally:
        await started.close()


async def likeness(mesh: dict[str, str], *args: str, identity: str = "operator/cli-test") -> Ran:
    """Run the CLI in its own process (the services keep serving on this event loop meanwhile).
    An identity a test issued with some roles is used as it is; others are issued on first use."""
    issued = pki().files(identity)
    tls = issued if issued.cert.is_file() else files(identity)
    env = {
        **os.environ,
        "LIKENESS_CLIENT_TLS_DIR": str(tls.cert.parent),
        "LIKENESS_RENDER_ADDR": mesh["render"],
        "LIKENESS_PRIVACY_ADDR": mesh["privacy"],
        "LIKENESS_FACES_ADDR": mesh["faces"],
        "COLUMNS": "200",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "likeness_client.cli",
        *args,
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=400)
    assert proc.returncode is not None
    return Ran(proc.returncode, out.decode(), err.decode())


async def test_specs_search_by_text_and_country(mesh: dict[str, str]) -> None:
    ran = await likeness(mesh, "specs", "search", "passport", "--country", "JP", "--json")
    assert ran.rc == 0, ran.err
    found = [json.loads(line) for line in ran.out.splitlines()]
    assert [s["id"] for s in found] == ["jp-passport"]
    table = await likeness(mesh, "specs", "search", "passport")
    assert table.rc == 0 and "us-passport" in table.out and "gb-passport" in table.out


async def test_id_photo_batch_summarises_rejects_and_resumes(mesh: dict[str, str], tmp_path: Path, database_url: str) -> None:
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    with cbook.get_sample_data("grace_hopper.jpg") as fh:
        (folder / "grace.jpg").write_bytes(_jpeg(np.asarray(Image.open(fh).convert("RGB"))))
    (folder / "astronaut.jpg").write_bytes(_jpeg(np.asarray(data.astronaut())))
    (folder / "coffee.jpg").write_bytes(_jpeg(np.asarray(data.coffee())))  # no face
    (folder / "notes.txt").write_text("not an image")

    first = await likeness(mesh, "id-photo", str(folder), "--spec", "us-passport", "--out", str(out), "--sheet", "4r", "--concurrency", "2")
    assert first.rc == 1, first.out + first.err
    rows = {line.split("│")[1].strip(): line for line in first.out.splitlines() if line.count("│") >= 4}
    assert "ok" in rows["grace.jpg"] and "ok" in rows["astronaut.jpg"]
    assert "rejected" in rows["coffee.jpg"] and "NO_FACE" in rows["coffee.jpg"]
    assert "ok=2 skipped=0 rejected=1 failed=0" in first.out
    # The progress bar went to stderr; the batch's subject is erased once the photos are downloaded.
    assert "3/3" in first.err and "erasure" in first.err
    for name in ("grace.jpg", "grace-sheet.jpg", "astronaut.jpg", "astronaut-sheet.jpg"):
        assert (out / name).stat().st_size > 10_000, name
    assert Image.open(out / "grace.jpg").size == (600, 600)
    assert sorted(Image.open(out / "grace-sheet.jpg").size) == [1200, 1800]
    assert not (out / "coffee.jpg").exists()
    made = {name: (out / name).stat().st_mtime_ns for name in ("grace.jpg", "astronaut.jpg")}
    # Every download of the batch is in the access log under the operator who asked (through render), with the purpose.
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cur = await conn.execute("SELECT actor, resource FROM privacy.access_log WHERE purpose = 'operator_batch'")
        reads = await cur.fetchall()
    assert len(reads) == 4 and {actor for actor, _ in reads} == {"operator/cli-test via render"}, reads

    # Again: the done files are skipped (not remade), the face-less one is tried and refused again.
    second = await likeness(mesh, "id-photo", str(folder), "--spec", "us-passport", "--out", str(out), "--sheet", "4r")
    assert second.rc == 1
    assert "ok=0 skipped=2 rejected=1 failed=0" in second.out
    assert {name: (out / name).stat().st_mtime_ns for name in made} == made

    # Once the bad input is gone, a rerun has nothing left to do and succeeds.
    (folder / "coffee.jpg").unlink()
    third = await likeness(mesh, "id-photo", str(folder), "--spec", "us-passport", "--out", str(out), "--sheet", "4r")
    assert third.rc == 0 and "ok=0 skipped=2 rejected=0 failed=0" in third.out

    # A changed input is made again; another spec is a new batch.
    (folder / "grace.jpg").write_bytes((folder / "grace.jpg").read_bytes() + b"\0")
    fourth = await likeness(mesh, "id-photo", str(folder), "--spec", "us-passport", "--out", str(out), "--sheet", "4r")
    assert fourth.rc == 0 and "ok=1 skipped=1" in fourth.out


async def test_check_erasure_status_and_ledger(mesh: dict[str, str], tmp_path: Path) -> None:
    tilted = tmp_path / "tilted.jpg"
    with cbook.get_sample_data("grace_hopper.jpg") as fh:
        img = Image.open(fh).convert("RGB").rotate(20, fillcolor=(255, 255, 255))
    img.save(tilted, format="JPEG", quality=92)
    check = await likeness(mesh, "check", str(tilted), "--spec", "us-passport")
    assert check.rc == 1 and "HEAD_TILTED" in check.out and "not passed" in check.out

    # An erasure started by an operator, then looked at from the CLI.
    from likeness_client import AsyncClient, Endpoints, Identity

    tls = files("operator/cli-test")
    async with AsyncClient(
        Identity(tls.cert, tls.key, tls.ca), Endpoints.from_env(env={}, **{k: mesh[k] for k in ("render", "privacy")})
    ) as client:
        subject = (await client.register_subject(privacy_pb2.SUBJECT_KIND_DEVICE)).subject_id
        erasure = await client.request_erasure(subject)
    status = await likeness(mesh, "erasure", "status", erasure.erasure_id)
    assert status.rc == 0, status.err
    assert erasure.erasure_id in status.out and ("in_progress" in status.out or "completed" in status.out)
    unknown = await likeness(mesh, "erasure", "status", "no-such-erasure")
    assert unknown.rc == 1 and "error" in unknown.err

    ledger = await likeness(mesh, "ledger", "verify")
    assert ledger.rc == 0 and ledger.out.startswith("ok"), ledger.out + ledger.err


async def test_templates_add_needs_an_operator_identity(mesh: dict[str, str], tmp_path: Path) -> None:
    image = tmp_path / "template.jpg"
    image.write_bytes(_jpeg(np.asarray(data.astronaut())))
    refused = await likeness(mesh, "templates", "add", str(image), "--name", "CLI test", "--style", "business", identity="faces")
    assert refused.rc == 1 and "CALLER_NOT_ALLOWED" in refused.err
    added = await likeness(mesh, "templates", "add", str(image), "--name", "CLI test", "--style", "business")
    assert added.rc == 0, added.err
    listed = await likeness(mesh, "templates", "list")
    assert listed.rc == 0 and "CLI test" in listed.out


async def test_outfits_add_registers_a_garment_with_its_anchors(mesh: dict[str, str], tmp_path: Path) -> None:
    from likeness_render.domain import outfit_demo

    shirt = {g.id: g for g in outfit_demo.demo_garments()}["white-shirt"]
    image = tmp_path / "shirt.png"
    Image.fromarray(np.asarray(shirt.rgba)).save(image, format="PNG")

    def at(p: tuple[float, float]) -> str:
        return f"{p[0]:.1f},{p[1]:.1f}"

    anchors = ["--neck", at(shirt.neck), "--left-shoulder", at(shirt.left_shoulder), "--right-shoulder", at(shirt.right_shoulder)]
    refused = await likeness(mesh, "outfits", "add", str(image), "--name", "CLI shirt", *anchors, identity="faces")
    assert refused.rc == 1 and "CALLER_NOT_ALLOWED" in refused.err
    swapped = ["--neck", at(shirt.neck), "--left-shoulder", at(shirt.right_shoulder), "--right-shoulder", at(shirt.left_shoulder)]
    bad = await likeness(mesh, "outfits", "add", str(image), "--name", "CLI shirt", *swapped)
    assert bad.rc == 1 and "INVALID_OUTFIT" in bad.err
    added = await likeness(mesh, "outfits", "add", str(image), "--name", "CLI shirt", *anchors)
    assert added.rc == 0 and "cli-shirt" in added.out, added.err
    listed = await likeness(mesh, "outfits", "list")
    assert listed.rc == 0 and "cli-shirt" in listed.out


async def test_a_missing_identity_is_a_clear_error(tmp_path: Path) -> None:
    env = {**os.environ, "LIKENESS_CLIENT_TLS_DIR": str(tmp_path / "nowhere")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "likeness_client.cli", "ledger", "verify", env=env, cwd=tmp_path, stderr=asyncio.subprocess.PIPE
    )
    _, err = await proc.communicate()
    assert proc.returncode == 2 and b"does not exist" in err


async def test_roles_decide_what_an_operator_may_do(mesh: dict[str, str], tmp_path: Path) -> None:
    pki().ensure("operator/cli-support", roles=("support",))
    pki().ensure("operator/cli-auditor", roles=("auditor",))
    image = tmp_path / "template.jpg"
    image.write_bytes(_jpeg(np.asarray(data.astronaut())))

    # support: erasure status yes; the ledger and the catalog no.
    support = await likeness(mesh, "erasure", "status", "no-such-erasure", identity="operator/cli-support")
    assert support.rc == 1 and "CALLER_NOT_ALLOWED" not in support.err
    refused = await likeness(mesh, "ledger", "verify", identity="operator/cli-support")
    assert refused.rc == 1 and "CALLER_NOT_ALLOWED" in refused.err
    refused = await likeness(mesh, "templates", "add", str(image), "--name", "nope", identity="operator/cli-support")
    assert refused.rc == 1 and "CALLER_NOT_ALLOWED" in refused.err
    # auditor: the ledger yes, erasures no.
    audit = await likeness(mesh, "ledger", "verify", identity="operator/cli-auditor")
    assert audit.rc == 0, audit.err
    refused = await likeness(mesh, "erasure", "status", "no-such-erasure", identity="operator/cli-auditor")
    assert refused.rc == 1 and "CALLER_NOT_ALLOWED" in refused.err


async def test_inventory_security_events_and_key_settings_by_role(mesh: dict[str, str], database_url: str) -> None:
    pki().ensure("operator/cli-support", roles=("support",))
    pki().ensure("operator/cli-auditor", roles=("auditor",))
    pki().ensure("operator/cli-admin", roles=("admin",))
    async with channel(mesh["privacy"], "gateway") as ch:
        subject = (await privacy_pb2_grpc.PrivacyStub(ch).RegisterSubject(privacy_pb2.RegisterSubjectRequest(kind=1))).subject.subject_id
    try:
        looked = await likeness(mesh, "subjects", "inventory", subject, "--purpose", "ticket 77", identity="operator/cli-support")
        assert looked.rc == 0, looked.err
        assert "active" in looked.out and "render" in looked.out and "results=0" in looked.out
        with psycopg.connect(database_url) as conn:
            logged = conn.execute("SELECT actor, purpose FROM privacy.access_log WHERE subject_id = %s", (subject,)).fetchall()
        assert logged == [("operator/cli-support", "ticket 77")]
        refused = await likeness(mesh, "subjects", "inventory", subject, "--purpose", "x", identity="operator/cli-auditor")
        assert refused.rc == 1 and "CALLER_NOT_ALLOWED" in refused.err
        events = await likeness(mesh, "security-events", "--limit", "200", identity="operator/cli-auditor")
        assert events.rc == 0, events.err
        # The auditor's own refusal a moment ago is among them.
        assert "caller_not_allowed" in events.out
        settings = await likeness(mesh, "keys", "settings", identity="operator/cli-admin")
        assert settings.rc == 0 and "uploads" in settings.out and "1 day" in settings.out, settings.out + settings.err
        rewrap = await likeness(mesh, "keys", "rewrap", identity="operator/cli-admin")
        assert rewrap.rc == 0 and "0 data key(s) moved" in rewrap.out, rewrap.err
        refused = await likeness(mesh, "keys", "rewrap", identity="operator/cli-support")
        assert refused.rc == 1 and "CALLER_NOT_ALLOWED" in refused.err
    finally:
        async with channel(mesh["privacy"], "gateway") as ch:
            await privacy_pb2_grpc.PrivacyStub(ch).RequestErasure(privacy_pb2.RequestErasureRequest(subject_id=subject, reason="test"))
