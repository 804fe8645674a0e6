"""The client library against a real mTLS gRPC server: retries with jitter on UNAVAILABLE only, deadlines,
the stable error code, the sync wrapper, and where the identity comes from."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from likeness.render.v1 import render_pb2, render_pb2_grpc
from likeness_client import AsyncClient, Client, ConfigError, Endpoints, Identity, LikenessError, RetryPolicy
from tests.support.pki import files


class FlakyRender(render_pb2_grpc.RenderServicer):
    """ListSpecs fails `failures` times with `status` before answering; GetSpec sleeps; ListPapers is refused with a code."""

    def __init__(self) -> None:
        self.failures, self.status, self.calls = 0, grpc.StatusCode.UNAVAILABLE, 0
        self.times: list[float] = []
        self.metadata: list[dict[str, str]] = []

    async def ListSpecs(self, request: render_pb2.ListSpecsRequest, context: grpc.aio.ServicerContext) -> render_pb2.ListSpecsResponse:
        self.calls += 1
        self.times.append(time.monotonic())
        self.metadata.append({k: v for k, v in context.invocation_metadata() or ()})
        if self.calls <= self.failures:
            await context.abort(self.status, "not now")
        return render_pb2.ListSpecsResponse(specs=[render_pb2.Spec(id=f"{request.country.lower()}-passport", country_code=request.country)])

    async def GetSpec(self, request: render_pb2.GetSpecRequest, context: grpc.aio.ServicerContext) -> render_pb2.GetSpecResponse:
        await asyncio.sleep(5)
        return render_pb2.GetSpecResponse()

    async def ListPapers(self, request: render_pb2.ListPapersRequest, context: grpc.aio.ServicerContext) -> render_pb2.ListPapersResponse:
        context.set_trailing_metadata((("likeness-error-code", "NO_FACE"),))
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "no face in the image")
        raise AssertionError("unreachable")


@pytest.fixture
async def server() -> AsyncIterator[tuple[FlakyRender, str]]:
    cert, key, ca = files("render").read()
    srv = grpc.aio.server()
    servicer = FlakyRender()
    render_pb2_grpc.add_RenderServicer_to_server(servicer, srv)
    creds = grpc.ssl_server_credentials([(key, cert)], root_certificates=ca, require_client_auth=True)
    port = srv.add_secure_port("127.0.0.1:0", creds)
    await srv.start()
    yield servicer, f"127.0.0.1:{port}"
    await srv.stop(0)


def _identity() -> Identity:
    tls = files("operator/client-test")
    return Identity(tls.cert, tls.key, tls.ca)


def _client(addr: str, **kwargs: object) -> AsyncClient:
    policy = RetryPolicy(attempts=4, base_seconds=0.05, cap_seconds=0.2, rng=random.Random(7))
    return AsyncClient(_identity(), Endpoints.from_env(env={}, render=addr), **{"retry": policy, **kwargs})  # type: ignore[arg-type]


async def test_unavailable_is_retried_with_pauses_then_answers(server: tuple[FlakyRender, str]) -> None:
    servicer, addr = server
    servicer.failures = 2
    async with _client(addr) as client:
        specs = await client.list_specs(country="JP")
    assert [s.id for s in specs] == ["jp-passport"]
    assert servicer.calls == 3
    # One request id for all tries of the call.
    assert len({m["x-request-id"] for m in servicer.metadata}) == 1


async def test_retries_stop_after_the_attempts(server: tuple[FlakyRender, str]) -> None:
    servicer, addr = server
    servicer.failures = 10
    async with _client(addr) as client:
        with pytest.raises(LikenessError) as info:
            await client.list_specs(country="JP")
    assert info.value.status == grpc.StatusCode.UNAVAILABLE
    assert servicer.calls == 4


async def test_other_errors_are_not_retried_and_carry_the_stable_code(server: tuple[FlakyRender, str]) -> None:
    servicer, addr = server
    servicer.failures, servicer.status = 3, grpc.StatusCode.PERMISSION_DENIED
    async with _client(addr) as client:
        with pytest.raises(LikenessError) as denied:
            await client.list_specs()
        with pytest.raises(LikenessError) as no_face:
            await client.list_papers()
    assert servicer.calls == 1 and denied.value.status == grpc.StatusCode.PERMISSION_DENIED
    assert no_face.value.code == "NO_FACE" and no_face.value.status == grpc.StatusCode.INVALID_ARGUMENT
    assert "no face" in no_face.value.message


async def test_the_deadline_bounds_the_call(server: tuple[FlakyRender, str]) -> None:
    _, addr = server
    async with _client(addr, deadline=0.5) as client:
        started = time.monotonic()
        with pytest.raises(LikenessError) as info:
            await client.get_spec("us-passport")
    assert info.value.status == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 3


async def test_no_retry_starts_after_the_deadline(server: tuple[FlakyRender, str]) -> None:
    servicer, addr = server
    servicer.failures = 100
    slow = RetryPolicy(attempts=50, base_seconds=0.3, cap_seconds=0.3, rng=random.Random(1))
    async with AsyncClient(_identity(), Endpoints.from_env(env={}, render=addr), deadline=1.0, retry=slow) as client:
        started = time.monotonic()
        with pytest.raises(LikenessError):
            await client.list_specs()
    assert time.monotonic() - started < 2.5
    assert 1 < servicer.calls < 50


def test_jitter_is_bounded_and_varies() -> None:
    policy = RetryPolicy(attempts=5, base_seconds=0.1, cap_seconds=0.5, rng=random.Random(3))
    pauses = [policy.pause(n) for n in (0, 1, 2, 3, 4) for _ in range(50)]
    assert all(0 <= p <= 0.5 for p in pauses)
    assert max(policy.pause(0) for _ in range(100)) <= 0.1
    assert len({round(p, 6) for p in pauses}) > 200
    assert policy.should_retry(grpc.StatusCode.UNAVAILABLE, 3) and not policy.should_retry(grpc.StatusCode.UNAVAILABLE, 4)
    assert not policy.should_retry(grpc.StatusCode.INTERNAL, 0)
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)


async def test_a_server_of_another_ca_is_refused(server: tuple[FlakyRender, str], tmp_path: Path) -> None:
    from likeness_platform.devpki import DevPki

    _, addr = server
    other = DevPki(tmp_path).ensure("operator/stranger")
    no_retry = RetryPolicy(attempts=1)
    async with AsyncClient(
        Identity(other.cert, other.key, other.ca), Endpoints.from_env(env={}, render=addr), deadline=3, retry=no_retry
    ) as client:
        with pytest.raises(LikenessError) as info:
            await client.list_specs()
    assert info.value.status == grpc.StatusCode.UNAVAILABLE


async def test_sync_client_works_from_any_thread(server: tuple[FlakyRender, str]) -> None:
    servicer, addr = server
    servicer.failures = 1

    def blocking() -> list[str]:
        with Client(_identity(), Endpoints.from_env(env={}, render=addr), retry=RetryPolicy(base_seconds=0.01)) as client:
            return [s.id for s in client.list_specs(country="GB")]

    assert await asyncio.to_thread(blocking) == ["gb-passport"]


def test_identity_is_found_in_flags_env_and_the_dev_run_folder(tmp_path: Path) -> None:
    tls = files("operator/dev")
    assert Identity.discover(tls.cert, tls.key, tls.ca, env={}).name == "operator/dev"
    assert Identity.discover(tls.cert, tls.key, tls.ca, env={}).roles == {"admin", "auditor", "support"}
    with pytest.raises(ConfigError, match="all three"):
        Identity.discover(tls.cert, None, None, env={})
    assert Identity.discover(env={"LIKENESS_CLIENT_TLS_DIR": str(tls.cert.parent)}, start=tmp_path).cert == tls.cert
    env = {"LIKENESS_CLIENT_CERT": str(tls.cert), "LIKENESS_CLIENT_KEY": str(tls.key), "LIKENESS_CLIENT_CA": str(tls.ca)}
    assert Identity.discover(env=env).key == tls.key
    with pytest.raises(ConfigError, match="does not exist"):
        Identity.discover(env={"LIKENESS_CLIENT_TLS_DIR": str(tmp_path / "nothing")})
    # `make run`'s development identity, found from a folder below the run folder's parent.
    dev = tmp_path / ".run" / "tls" / "operator-dev"
    dev.mkdir(parents=True)
    for src, name in ((tls.cert, "tls.crt"), (tls.key, "tls.key"), (tls.ca, "ca.crt")):
        (dev / name).write_bytes(src.read_bytes())
    (tmp_path / "a" / "b").mkdir(parents=True)
    found = Identity.discover(env={}, start=tmp_path / "a" / "b")
    assert found.cert == dev / "tls.crt" and found.run_dir == tmp_path / ".run"
    # The run folder's endpoints.json (written by scripts/mesh.py) gives the addresses; env and flags still win.
    (tmp_path / ".run" / "endpoints.json").write_text('{"render": "127.0.0.1:41001", "privacy": "127.0.0.1:41002"}')
    endpoints = Endpoints.from_env(env={"LIKENESS_PRIVACY_ADDR": "p:1"}, run_dir=found.run_dir)
    assert (endpoints["render"], endpoints["privacy"], endpoints["faces"]) == ("127.0.0.1:41001", "p:1", "127.0.0.1:50052")
    assert Identity(tmp_path / "x.crt", tmp_path / "x.key", tmp_path / "ca.crt").run_dir is None


def test_endpoints_default_to_make_run_and_follow_env_and_overrides() -> None:
    assert Endpoints.from_env(env={})["render"] == "127.0.0.1:50053"
    assert Endpoints.from_env(env={"LIKENESS_PRIVACY_ADDR": "privacy:50055"})["privacy"] == "privacy:50055"
    assert Endpoints.from_env(env={"LIKENESS_RENDER_ADDR": "a:1"}, render="b:2")["render"] == "b:2"
    with pytest.raises(ConfigError):
        Endpoints.from_env(env={}, nowhere="x:1")
