"""Row -> dataclass, dataclass -> protobuf and the service runner: the helpers every service's adapters share."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from likeness_platform.dataholder import message_from, timestamp
from likeness_platform.db import fetch_row, from_row, open_pool, open_service_pool
from likeness_platform.devpki import DevPki
from likeness_platform.server import Wiring, run_service
from likeness_platform.settings import ServiceSettings

WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@dataclass
class Thing:
    thing_id: str
    size: int
    created_at: datetime
    persisted: bool = True
    tags: dict[str, Any] = field(default_factory=dict)


def test_from_row_maps_columns_by_name_and_uuids_to_text() -> None:
    tid = uuid.uuid4()
    thing = from_row(Thing, {"thing_id": tid, "size": 3, "created_at": WHEN, "tags": {"a": 1}, "other": "ignored"})
    assert thing == Thing(str(tid), 3, WHEN, True, {"a": 1})


def test_from_row_values_override_columns() -> None:
    assert from_row(Thing, {"thing_id": "x", "size": 3, "created_at": WHEN, "persisted": False}, persisted=True).persisted


def test_from_row_names_a_missing_required_column() -> None:
    with pytest.raises(TypeError, match="created_at"):
        from_row(Thing, {"thing_id": "x", "size": 3})


def test_message_from_copies_same_named_fields_and_converts_datetimes() -> None:
    @dataclass
    class Source:
        seconds: int
        nanos: int
        extra: str

    from google.protobuf.timestamp_pb2 import Timestamp

    out = message_from(Timestamp, Source(seconds=5, nanos=7, extra="not a field"))
    assert (out.seconds, out.nanos) == (5, 7)
    assert message_from(Timestamp, Source(seconds=5, nanos=7, extra=""), nanos=9).nanos == 9


def test_message_from_turns_datetimes_into_timestamps() -> None:
    from likeness.ingestion.v1 import ingestion_pb2

    @dataclass
    class Row:
        upload_id: str
        created_at: datetime
        subject_id: str  # not a field of UploadInfo: left out

    out = message_from(ingestion_pb2.UploadInfo, Row("u1", WHEN, "s1"), persisted=True)
    assert (out.upload_id, out.created_at, out.persisted) == ("u1", timestamp(WHEN), True)


async def test_fetch_row_returns_a_dict_or_none(database_url: str) -> None:
    pool = await open_pool(database_url, "public")
    try:
        assert await fetch_row(pool, "SELECT 1 AS one, %s::text AS two", ("b",)) == {"one": 1, "two": "b"}
        assert await fetch_row(pool, "SELECT 1 WHERE false", ()) is None
    finally:
        await pool.close()


async def test_open_service_pool_without_a_database_exits_with_a_clear_message(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="LIKENESS_DATABASE_URL is not set"):
        await open_service_pool(ServiceSettings(database_url=""), "nothing", tmp_path)


class _Boom(Exception):
    pass


@pytest.fixture
def tls_env(pki: DevPki, monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment of a service with its certificate (run_service refuses to start without one)."""
    for name, value in pki.ensure("render").env().items():
        monkeypatch.setenv(name, value)


@pytest.mark.usefixtures("tls_env")
async def test_run_service_builds_with_the_settings_and_serves_the_wiring() -> None:
    served: list[tuple[str, Wiring[ServiceSettings]]] = []

    async def build(settings: ServiceSettings) -> Wiring[ServiceSettings]:
        return Wiring(settings=settings, register=lambda server: [])

    async def serve(name: str, wiring: Wiring[ServiceSettings]) -> None:
        served.append((name, wiring))

    await run_service("demo", ServiceSettings, build, serve=serve)
    assert [name for name, _ in served] == ["demo"]
    assert isinstance(served[0][1].settings, ServiceSettings)


@pytest.mark.usefixtures("tls_env")
async def test_run_service_turns_startup_errors_into_a_one_line_exit() -> None:
    async def build(settings: ServiceSettings) -> Wiring[ServiceSettings]:
        raise _Boom("model files missing")

    async def serve(name: str, wiring: Wiring[ServiceSettings]) -> None:
        raise AssertionError("must not serve")

    with pytest.raises(SystemExit, match="demo cannot start: model files missing"):
        await run_service("demo", ServiceSettings, build, serve=serve, startup_errors=(_Boom,))
    with pytest.raises(_Boom):
        await run_service("demo", ServiceSettings, build, serve=serve)
