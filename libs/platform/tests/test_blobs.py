"""The same blob-store contract, on the local filesystem and on an S3-compatible server."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from likeness_platform.blobs import BlobNotFound, BlobStore, LocalBlobStore, S3BlobStore, new_blob_name


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(params=["local", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[BlobStore]:
    if request.param == "local":
        yield LocalBlobStore(tmp_path / "blobs")
        return
    endpoint = request.getfixturevalue("s3_endpoint")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    bucket = "likeness-" + new_blob_name()[:12]
    client.create_bucket(Bucket=bucket)
    yield S3BlobStore(bucket, prefix="uploads", client=client)


async def test_put_get_delete_roundtrip(store: BlobStore) -> None:
    name = new_blob_name()
    await store.put(name, b"sealed bytes")
    assert await store.exists(name)
    assert await store.get(name) == b"sealed bytes"
    assert await store.delete(name) is True
    assert await store.exists(name) is False
    assert await store.delete(name) is False
    with pytest.raises(BlobNotFound):
        await store.get(name)


async def test_listing_shows_every_blob_with_size(store: BlobStore) -> None:
    names = {new_blob_name(): bytes(i + 1) for i in range(3)}
    for name, data in names.items():
        await store.put(name, data)
    listed = {entry.name: entry.size async for entry in store.entries()}
    assert {n: len(d) for n, d in names.items()}.items() <= listed.items()


async def test_names_must_be_opaque_hex(store: BlobStore) -> None:
    with pytest.raises(ValueError):
        await store.put("../etc/passwd", b"x")
    with pytest.raises(ValueError):
        await store.put("subject-1234", b"x")
