"""The public API driven as a mobile app would, on the local mesh (every service its own process)."""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Iterator

import httpx
import pytest
from matplotlib import cbook
from PIL import Image
from skimage import data

from tests.support.mesh import Mesh

DEVICE = {"platform": "android", "model": "Pixel 9", "os_version": "15", "app_version": "3.1.0", "language": "fr-FR", "age_confirmed": True}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[httpx.Client]:
    mesh = Mesh(
        tmp_path_factory.mktemp("app"),
        database_url=database_url,
        free_ports=True,
        quiet=True,
        extra_env={"LIKENESS_FREE_DAILY_GENERATIONS": "3"},
    )
    try:
        mesh.up()
        with httpx.Client(base_url=mesh.http_url, timeout=120) as client:
            yield client
    finally:
        mesh.down()


def _photo() -> bytes:
    with cbook.get_sample_data("grace_hopper.jpg") as fh:
        return fh.read()


def _bare_head() -> bytes:
    """Eileen Collins (NASA, public domain): hair a hairstyle may replace."""
    out = io.BytesIO()
    Image.fromarray(data.astronaut()).save(out, format="PNG")
    return out.getvalue()


def test_register_upload_photo_sheet_export_portrait_quota_delete(app: httpx.Client) -> None:
    registered = app.post("/v1/devices", json=DEVICE)
    assert registered.status_code == 201
    auth = {"Authorization": f"Bearer {registered.json()['token']}"}

    upload = app.post("/v1/uploads", files={"file": ("me.jpg", _photo(), "image/jpeg")}, headers=auth)
    assert upload.status_code == 201, upload.text
    upload_id = upload.json()["upload_id"]

    specs = app.get("/v1/specs", params={"country": "DE"}, headers=auth).json()["specs"]
    assert any(s["id"] == "de-passport" for s in specs)

    made = app.post(
        "/v1/id-photos",
        json={"upload_id": upload_id, "spec_id": "schengen-visa", "layout": {"paper_id": "4r", "margin_mm": 3, "gap_mm": 2}},
        headers=auth,
    )
    assert made.status_code == 201, made.text
    photo = made.json()
    assert photo["report"]["passed"] and photo["sheet_photo_count"] == 8
    assert 32 <= photo["report"]["measurements"]["head_height_mm"] <= 36
    image = app.get(photo["image_url"], headers=auth)
    assert image.status_code == 200 and Image.open(io.BytesIO(image.content)).size == (413, 531)
    sheet = app.get(photo["sheet_url"], headers=auth)
    assert sheet.status_code == 200 and sorted(Image.open(io.BytesIO(sheet.content)).size) == [1200, 1800]
    assert app.get(f"/v1/id-photos/{photo['id']}", headers=auth).json()["report"]["passed"]

    templates = app.get("/v1/templates", headers=auth).json()["templates"]
    portrait = app.post("/v1/portraits", json={"upload_id": upload_id, "template_id": templates[0]["id"], "strength": 70}, headers=auth)
    assert portrait.status_code == 201, portrait.text
    assert app.get(portrait.json()["image_url"], headers=auth).status_code == 200
    hairstyle_id = app.get("/v1/hairstyles", headers=auth).json()["hairstyles"][0]["id"]
    # Grace Hopper wears her cap: no hairstyle erases it (refused, and a refusal costs no credit).
    hat = app.post("/v1/hairstyles", json={"upload_id": upload_id, "hairstyle_id": hairstyle_id}, headers=auth)
    assert hat.status_code == 409 and hat.json()["error"]["code"] == "HAT_PRESENT", hat.text
    bare = app.post("/v1/uploads", files={"file": ("bare.png", _bare_head(), "image/png")}, headers=auth)
    assert bare.status_code == 201, bare.text
    bare_id = bare.json()["upload_id"]
    assert app.post("/v1/hairstyles", json={"upload_id": bare_id, "hairstyle_id": hairstyle_id}, headers=auth).status_code == 201

    # Three free generations a day: the fourth asks the user to subscribe. A check makes no photo and stays free.
    check = app.post("/v1/id-photos/check", json={"upload_id": upload_id, "spec_id": "us-passport"}, headers=auth)
    assert check.status_code == 200, check.text
    refused = app.post("/v1/hairstyles", json={"upload_id": bare_id, "hairstyle_id": hairstyle_id}, headers=auth)
    assert refused.status_code == 402 and refused.json()["error"]["code"] == "QUOTA_EXCEEDED"
    assert app.get("/v1/entitlements", headers=auth).json()["free_remaining_today"] == 0

    export = app.get("/v1/me/export", headers=auth)
    assert export.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(export.content)).namelist()
    assert "manifest.json" in names
    assert any(n.startswith("ingestion/uploads/") for n in names)
    assert any(n.startswith("render/results/id_photo-") for n in names)
    assert any(n.startswith("privacy/") for n in names) and any(n.startswith("gateway/") for n in names)

    deleted = app.delete("/v1/me", headers=auth)
    assert deleted.status_code == 202
    assert app.get("/v1/entitlements", headers=auth).status_code == 401
    assert app.get("/v1/me/export", headers=auth).status_code == 401
    erasure_id = deleted.json()["erasure_id"]
    deadline = time.monotonic() + 60
    while (status := app.get(f"/v1/me/erasures/{erasure_id}").json())["status"] != "completed":
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
    holders = {r["holder"]: r for r in status["receipts"]}
    assert set(holders) == {"privacy", "gateway", "ingestion", "faces", "render", "billing"}
    assert all(not any(r["remaining"].values()) for r in holders.values())
    assert holders["ingestion"]["erased"]["uploads"] == 2 and holders["render"]["erased"]["results"] >= 3  # two photos
    assert status["ledger_hash"]
    assert app.get(photo["image_url"], headers=auth).status_code == 401
