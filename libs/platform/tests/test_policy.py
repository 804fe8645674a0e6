"""The mesh policy, table-driven over every RPC in protos/: who gets past authorisation and who does not.

Every method is served by a stand-in handler behind the real server bootstrap (mTLS, the
authorisation interceptor): an allowed identity's call gets the handler's answer, another service's
certificate gets PERMISSION_DENIED, no certificate or a certificate from another CA cannot connect.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from likeness_platform import policy
from likeness_platform.devpki import DevPki
from likeness_platform.errors import ERROR_CODE_KEY
from likeness_platform.metrics import AUTHZ_DENIED
from likeness_platform.server import RunningServer, start_server
from likeness_platform.settings import ServiceSettings

PROTOS = Path(__file__).resolve().parents[3] / "protos"
ALL = ("gateway", "ingestion", "faces", "render", "billing", "privacy", "operator/alice")


@dataclass(frozen=True)
class Rpc:
    name: str  # /package.Service/Method
    client_streaming: bool
    server_streaming: bool


def rpcs_in_protos() -> list[Rpc]:
    found = []
    for path in sorted(PROTOS.rglob("*.proto")):
        text = path.read_text()
        package = re.search(r"^package\s+([\w.]+);", text, re.M)
        assert package, path
        for service, body in re.findall(r"^service\s+(\w+)\s*\{(.*?)^\}", text, re.M | re.S):
            for method, cstream, sstream in re.findall(r"rpc\s+(\w+)\s*\(\s*(stream\s+)?[\w.]+\s*\)\s*returns\s*\(\s*(stream\s+)?", body):
                found.append(Rpc(f"/{package.group(1)}.{service}/{method}", bool(cstream), bool(sstream)))
    return found


RPCS = rpcs_in_protos()


def test_every_rpc_in_protos_has_a_policy_entry() -> None:
    assert len(RPCS) >= 38, RPCS  # the parser found the services
    missing = [rpc.name for rpc in RPCS if not policy.has_entry(rpc.name)]
    assert not missing, f"add these methods to likeness_platform.policy.POLICY: {missing}"


def test_the_issue_minimum_holds() -> None:
    rule = policy.is_allowed
    for method in ("Inventory", "Export", "Erase", "Sweep", "RetentionStatus"):
        name = f"/likeness.privacy.v1.DataHolder/{method}"
        assert [c for c in ALL if rule(c, name)] == ["privacy"]
    # The gateway seals account email addresses under the subject's key (#22).
    assert {c for c in ALL if rule(c, "/likeness.privacy.v1.Privacy/GetDataKey")} == {"gateway", "ingestion", "render"}
    for method in ("ConsumeCredit", "GetEntitlements", "VerifyAppleTransaction", "HandleAppleNotification"):
        assert {c for c in ALL if rule(c, f"/likeness.billing.v1.Billing/{method}")} == {"gateway"}
    # Catalog writes need the admin role; an operator without it is refused like a service.
    assert {c for c in ALL if rule(c, "/likeness.render.v1.Render/RegisterTemplate")} == set()
    assert rule("operator/alice", "/likeness.render.v1.Render/RegisterTemplate", roles=frozenset({"admin"}))
    assert {c for c in ALL if rule(c, "/likeness.privacy.v1.Privacy/RecordGeneration")} == {"gateway"}
    assert not rule("faces", "/likeness.privacy.v1.Privacy/RecordAccess")
    assert {c for c in ALL if rule(c, "/likeness.privacy.v1.Privacy/RecordSecurityEvent")} == set(ALL) - {"operator/alice"}
    # Nothing but health is open to a caller without a certificate; an unknown method to nobody.
    assert [r.name for r in RPCS if rule("", r.name)] == []
    assert rule("", "/grpc.health.v1.Health/Check")
    assert not any(rule(c, "/likeness.privacy.v1.Privacy/NotInTheTable") for c in ALL)
    # `operator/` alone is not an operator; a look-alike service name is not a service.
    assert not rule("operator/", "/likeness.render.v1.Render/RegisterTemplate")
    assert not rule("privacy/x", "/likeness.privacy.v1.DataHolder/Export")


def test_operator_roles() -> None:
    rule = policy.is_allowed
    privacy = "/likeness.privacy.v1.Privacy/"
    support, auditor, admin = frozenset({"support"}), frozenset({"auditor"}), frozenset({"admin"})
    # support: erasures and a subject's state, no content (exports stay with the subject's own device).
    for method in ("GetErasure", "RequestErasure", "GetSubject"):
        assert rule("operator/sue", privacy + method, roles=support)
        assert not rule("operator/sue", privacy + method, roles=auditor | admin)
    assert rule("operator/sue", "/likeness.gateway.v1.Devices/GetDevice", roles=support)
    for method in ("RequestExport", "DownloadExport"):
        assert not rule("operator/sue", privacy + method, roles=policy.ROLES)
    # auditor: the ledger and the access log.
    assert rule("operator/aud", privacy + "VerifyLedger", roles=auditor)
    assert not rule("operator/aud", privacy + "VerifyLedger", roles=support | admin)
    # Roles mean nothing on a service certificate, unknown roles nothing anywhere, and no role nothing role-gated.
    assert not rule("render", "/likeness.render.v1.Render/RegisterTemplate", roles=admin)
    assert not rule("operator/x", privacy + "VerifyLedger", roles=frozenset({"root", "auditors"}))
    gated = [r.name for r in RPCS if any(a.startswith("role:") for a in policy.allowed_for(r.name) or ())]
    assert len(gated) >= 5 and not [m for m in gated if rule("operator/norole", m)]
    # Any operator, whatever its roles, may use the batch tools (render, faces, its own batch subject).
    assert rule("operator/norole", "/likeness.render.v1.Render/CreateIdPhoto")
    assert rule("operator/norole", privacy + "RegisterSubject")


def test_roles_travel_in_the_certificate(pki: DevPki) -> None:
    from likeness_platform.tls import identity_from_auth_context, roles_from_auth_context

    def auth(identity: str, roles: tuple[str, ...] | None) -> dict[str, list[bytes]]:
        return {"x509_pem_cert": [pki.issue(identity, roles=roles).cert.read_bytes()]}

    assert roles_from_auth_context(auth("operator/sue", ("support",))) == {"support"}
    assert roles_from_auth_context(auth("operator/dev", None)) == policy.ROLES
    assert roles_from_auth_context(auth("operator/none", ())) == frozenset()
    # A service certificate is issued without roles even when asked.
    assert roles_from_auth_context(auth("render", ("admin",))) == frozenset()
    assert identity_from_auth_context(auth("operator/sue", ("support",))) == "operator/sue"
    assert roles_from_auth_context({}) == frozenset()
    # A development operator made before roles existed (or with other roles) is re-issued on ensure; one that matches is kept.
    old = pki.issue("operator/legacy", roles=())
    assert roles_from_auth_context({"x509_pem_cert": [pki.ensure("operator/legacy").cert.read_bytes()]}) == policy.ROLES
    kept = old.cert.read_bytes()
    assert pki.ensure("operator/legacy").cert.read_bytes() == kept
    assert pki.ensure("operator/legacy", roles=("support",)).cert.read_bytes() != kept


def _handlers(rpcs: list[Rpc]) -> list[grpc.GenericRpcHandler]:
    """A stand-in for every method: answers b'ok' (per message for streams), raw bytes both ways."""

    async def unary(request: Any, context: Any) -> bytes:
        return b"ok"

    async def client_stream(requests: AsyncIterator[bytes], context: Any) -> bytes:
        async for _ in requests:
            pass
        return b"ok"

    async def server_stream(request: Any, context: Any) -> AsyncIterator[bytes]:
        yield b"ok"

    async def both(requests: AsyncIterator[bytes], context: Any) -> AsyncIterator[bytes]:
        async for _ in requests:
            yield b"ok"

    by_service: dict[str, dict[str, grpc.RpcMethodHandler]] = {}
    for rpc in rpcs:
        service, method = rpc.name[1:].rsplit("/", 1)
        if rpc.client_streaming and rpc.server_streaming:
            handler = grpc.stream_stream_rpc_method_handler(both)
        elif rpc.client_streaming:
            handler = grpc.stream_unary_rpc_method_handler(client_stream)
        elif rpc.server_streaming:
            handler = grpc.unary_stream_rpc_method_handler(server_stream)
        else:
            handler = grpc.unary_unary_rpc_method_handler(unary)
        by_service.setdefault(service, {})[method] = handler
    return [grpc.method_handlers_generic_handler(service, methods) for service, methods in by_service.items()]


async def _call(channel: grpc.aio.Channel, rpc: Rpc) -> bytes:
    if rpc.client_streaming and rpc.server_streaming:
        return b"".join([m async for m in channel.stream_stream(rpc.name)(iter([b"x"]), timeout=10)])
    if rpc.client_streaming:
        return bytes(await channel.stream_unary(rpc.name)(iter([b"x"]), timeout=10))
    if rpc.server_streaming:
        return b"".join([m async for m in channel.unary_stream(rpc.name)(b"x", timeout=10)])
    return bytes(await channel.unary_unary(rpc.name)(b"x", timeout=10))


# Operators the wire test plays: one per role, and ones with no role at all.
ROLES_OF: dict[str, tuple[str, ...]] = {
    "operator/wire-norole": (),
    "operator/mallory": (),
    **{f"operator/{role}-only": (role,) for role in policy.ROLES},
}


def _caller(entry: str) -> str:
    """A certificate identity that a policy entry names: an operator without roles for `OPERATOR`, one with only that role for a role."""
    if entry == policy.OPERATOR:
        return "operator/wire-norole"
    if entry.startswith("role:"):
        return f"operator/{entry.removeprefix('role:')}-only"
    return entry


def _credentials(pki: DevPki, identity: str | None) -> grpc.ChannelCredentials:
    files = pki.ensure("privacy")
    if identity is None:
        return grpc.ssl_channel_credentials(root_certificates=files.ca.read_bytes())
    cert, key, ca = pki.ensure(identity, roles=ROLES_OF.get(identity)).read()
    return grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)


@pytest.fixture
async def everything(pki: DevPki) -> AsyncIterator[tuple[RunningServer, list[tuple[str, str, str, str]]]]:
    """One server answering every RPC of protos/, behind the real bootstrap; refusals are collected."""
    events: list[tuple[str, str, str, str]] = []

    async def record(event_type: str, caller: str, method: str, ip: str) -> None:
        events.append((event_type, caller, method, ip))

    def register(server: grpc.aio.Server) -> list[str]:
        server.add_generic_rpc_handlers(_handlers(RPCS))
        return []

    settings = ServiceSettings(grpc_port=0, metrics_port=-1, health_port=-1, **pki.ensure("render").settings())
    running = await start_server("everything", settings, register, security_events=record)
    try:
        yield running, events
    finally:
        await running.stop(0)


def _denied_identity(method: str) -> str:
    """Another service's identity the rule does not name (an operator where every service is allowed)."""
    for candidate in ("gateway", "privacy", "faces", "billing", "render", "ingestion", "operator/mallory"):
        if not policy.is_allowed(candidate, method, roles=frozenset(ROLES_OF.get(candidate, ()))):
            return candidate
    raise AssertionError(f"every identity may call {method}")


@pytest.mark.parametrize("rpc", [pytest.param(rpc, id=rpc.name) for rpc in RPCS])
async def test_policy_over_the_wire(rpc: Rpc, everything: tuple[RunningServer, list[Any]], pki: DevPki) -> None:
    running, events = everything
    address = f"127.0.0.1:{running.port}"
    allowed = policy.allowed_for(rpc.name)
    assert allowed
    # Every identity the rule names gets through (an operator pattern stands for any operator).
    for identity in sorted(allowed):
        caller = _caller(identity)
        async with grpc.aio.secure_channel(address, _credentials(pki, caller)) as channel:
            assert await _call(channel, rpc) == b"ok", (rpc.name, caller)
    # Another service's (or an operator's) certificate: PERMISSION_DENIED, counted, reported.
    intruder = _denied_identity(rpc.name)
    label = AUTHZ_DENIED.labels("everything", rpc.name, intruder)
    before = label._value.get()
    async with grpc.aio.secure_channel(address, _credentials(pki, intruder)) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _call(channel, rpc)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert (ERROR_CODE_KEY, "CALLER_NOT_ALLOWED") in tuple(refused.value.trailing_metadata() or ())
    assert label._value.get() == before + 1
    await running.events.flush()
    assert ("caller_not_allowed", f"spiffe://likeness/{intruder}", rpc.name, "127.0.0.1") in events
    # No certificate: the handshake fails, nothing is called.
    async with grpc.aio.secure_channel(address, _credentials(pki, None)) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as anonymous:
            await _call(channel, rpc)
    assert anonymous.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_certificate_from_another_ca_is_refused(everything: tuple[RunningServer, list[Any]], pki: DevPki, tmp_path: Path) -> None:
    running, events = everything
    rogue = DevPki(tmp_path / "rogue", ca_name="Not the mesh CA").ensure("privacy")
    cert, key, _ = rogue.read()
    # It trusts the real CA (so the server is verified) but presents a privacy certificate the mesh never issued.
    credentials = grpc.ssl_channel_credentials(root_certificates=pki.ca_file.read_bytes(), private_key=key, certificate_chain=cert)
    async with grpc.aio.secure_channel(f"127.0.0.1:{running.port}", credentials) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await channel.unary_unary("/likeness.privacy.v1.DataHolder/Inventory")(b"x", timeout=10)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    # A client that trusts only the rogue CA does not accept the mesh's server either.
    credentials = grpc.ssl_channel_credentials(root_certificates=rogue.ca.read_bytes(), private_key=key, certificate_chain=cert)
    async with grpc.aio.secure_channel(f"127.0.0.1:{running.port}", credentials) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as distrusted:
            await channel.unary_unary("/likeness.privacy.v1.DataHolder/Inventory")(b"x", timeout=10)
    assert distrusted.value.code() == grpc.StatusCode.UNAVAILABLE
    assert events == []


async def test_a_plaintext_client_cannot_call(everything: tuple[RunningServer, list[Any]]) -> None:
    running, _ = everything
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await channel.unary_unary("/grpc.health.v1.Health/Check")(b"", timeout=5)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


def test_only_a_delegator_speaks_for_an_operator() -> None:
    assert policy.delegated("admin", "operator/ann", "auditor, support,root") == ("operator/ann", frozenset({"auditor", "support"}))
    assert policy.delegated("admin", "", "auditor") is None
    assert policy.delegated("admin", "operator/", "auditor") is None
    assert policy.delegated("admin", "render", "auditor") is None
    assert policy.delegated("gateway", "operator/ann", "auditor") is None
    # The admin API holds no rights of its own: every entry naming it is one every service has.
    assert [m for m, allowed in policy.POLICY.items() if policy.ADMIN_API in allowed] == [
        "/likeness.privacy.v1.Privacy/RecordSecurityEvent"
    ]


async def test_the_admin_api_is_judged_as_the_operator_it_names(everything: tuple[RunningServer, list[Any]], pki: DevPki) -> None:
    running, events = everything
    address = f"127.0.0.1:{running.port}"
    verify = "/likeness.privacy.v1.Privacy/VerifyLedger"
    register = "/likeness.render.v1.Render/RegisterTemplate"

    async def call(identity: str, method: str, metadata: tuple[tuple[str, str], ...]) -> bytes:
        cert, key, ca = pki.ensure(identity, roles=ROLES_OF.get(identity)).read()
        credentials = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)
        async with grpc.aio.secure_channel(address, credentials) as channel:
            return bytes(await channel.unary_unary(method)(b"x", timeout=10, metadata=metadata))

    def naming(operator: str, roles: str) -> tuple[tuple[str, str], ...]:
        return (("x-likeness-on-behalf-of", operator), ("x-likeness-operator-roles", roles))

    assert await call("admin", verify, naming("operator/ann", "auditor")) == b"ok"
    assert await call("admin", register, naming("operator/ann", "admin")) == b"ok"
    for identity, method, metadata in (
        ("admin", verify, ()),  # naming nobody: the admin API alone may call nothing
        ("admin", verify, naming("operator/sam", "support")),  # the operator lacks the role
        ("admin", verify, naming("render", "auditor")),  # only operators are spoken for
        ("gateway", register, naming("operator/ann", "admin")),  # only a delegator's word counts
        ("operator/wire-norole", register, naming("operator/ann", "admin")),  # not an operator's about another
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call(identity, method, metadata)
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED, (identity, metadata)
    await running.events.flush()
    # The refusal names the operator the admin API spoke for.
    assert ("caller_not_allowed", "spiffe://likeness/operator/sam", verify, "127.0.0.1") in events
