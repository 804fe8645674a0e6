"""The whole mesh as `make run` starts it: processes, embedded PostgreSQL, mTLS, health, reflection."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
from pathlib import Path

import grpc
import httpx
import psutil
import psycopg
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from likeness_platform.db_roles import role_names
from tests.support.mesh import Mesh

EXPECTED = {
    "gateway": {"likeness.gateway.v1.Devices", "likeness.privacy.v1.DataHolder"},
    "ingestion": {"likeness.ingestion.v1.Ingestion", "likeness.privacy.v1.DataHolder"},
    "faces": {"likeness.faces.v1.Faces", "likeness.privacy.v1.DataHolder"},
    "render": {"likeness.render.v1.Render", "likeness.privacy.v1.DataHolder"},
    "billing": {"likeness.billing.v1.Billing", "likeness.privacy.v1.DataHolder"},
    "privacy": {"likeness.privacy.v1.Privacy", "likeness.privacy.v1.Rights", "likeness.privacy.v1.DataHolder"},
    # The admin API's gRPC port serves health only (its API is HTTPS).
    "admin": set(),
}


def _list(channel: grpc.Channel) -> set[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    replies = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10)
    return {s.name for reply in replies for s in reply.list_services_response.service}


def _listed_services(address: str, credentials: grpc.ChannelCredentials) -> set[str]:
    with grpc.secure_channel(address, credentials) as channel:
        return _list(channel)


def _health_port_serves_only_health(address: str) -> None:
    with grpc.insecure_channel(address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        try:
            _list(channel)
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.UNIMPLEMENTED
        else:
            raise AssertionError("the health-only port served reflection")


def _refuses_plaintext(address: str) -> None:
    with grpc.insecure_channel(address) as channel:
        try:
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.UNAVAILABLE
        else:
            raise AssertionError(f"{address} answered plaintext")


def _stopped(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_mesh_starts_with_embedded_postgres_serves_reflection_and_stops(tmp_path: Path) -> None:
    mesh = Mesh(tmp_path / "run", database_url="", free_ports=True, quiet=True, reflection=True)
    try:
        mesh.up()
        assert mesh.db is not None
        pg_pid = mesh.db.pid
        assert pg_pid is not None and psutil.pid_exists(pg_pid)
        # Each service is connected under its own runtime role (migrations ran as the owner role).
        with psycopg.connect(mesh.database_url) as conn:
            users = {row[0] for row in conn.execute("SELECT usename FROM pg_stat_activity WHERE datname = current_database()")}
        assert set(role_names("likeness")[1].values()) <= users, users
        for service, names in EXPECTED.items():
            listed = _listed_services(mesh.addr(service), mesh.credentials())
            assert names <= listed, (service, listed)
            assert "grpc.health.v1.Health" in listed
            _health_port_serves_only_health(mesh.health_addr(service))
            _refuses_plaintext(mesh.addr(service))
        assert (tmp_path / "run" / "tls" / "privacy" / "tls.crt").is_file()
        admin_ca = str(tmp_path / "run" / "tls" / "admin" / "ca.crt")
        assert httpx.get(mesh.admin_url + "/healthz", verify=ssl.create_default_context(cafile=admin_ca), timeout=10).status_code == 200
        ready = httpx.get(mesh.http_url + "/readyz", timeout=10)
        assert ready.status_code == 200 and ready.json()["ready"] is True
        device = httpx.post(
            mesh.http_url + "/v1/devices",
            json={
                "platform": "ios",
                "model": "iPhone15,2",
                "os_version": "18.1",
                "app_version": "1.0",
                "language": "en",
                "age_confirmed": True,
            },
            timeout=30,
        )
        assert device.status_code == 201
        assert device.json()["token"].startswith("lk_")
        # The `likeness` CLI needs nothing but the development operator identity the mesh made (addresses come with it).
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LIKENESS_CLIENT", "LIKENESS_RENDER", "LIKENESS_PRIVACY"))}
        env["LIKENESS_CLIENT_TLS_DIR"] = str(tmp_path / "run" / "tls" / "operator-dev")
        cli = subprocess.run(
            [sys.executable, "-m", "likeness_client.cli", "specs", "search", "passport", "--country", "JP", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert cli.returncode == 0 and '"jp-passport"' in cli.stdout, cli.stderr
        ledger = subprocess.run(
            [sys.executable, "-m", "likeness_client.cli", "ledger", "verify"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert ledger.returncode == 0 and ledger.stdout.startswith("ok"), ledger.stdout + ledger.stderr
        codes = {name: proc.pid for name, proc in mesh.procs.items()}
    finally:
        mesh.down()
    # A stopped process may linger as a zombie where nothing reaps orphans (containers without an init).
    assert _stopped(pg_pid)
    assert all(_stopped(pid) for pid in codes.values())
    logs = "".join(p.read_text() for p in (tmp_path / "run").glob("*.log"))
    # Invariant 1: the token never reaches a log line.
    assert device.json()["token"] not in logs
