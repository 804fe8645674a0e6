"""The admin app without the mesh: who gets in (the certificate the TLS layer verified), what is refused with
which code, what a call forwards (the operator and roles, the purpose), and that refusals are reported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest
from fastapi.testclient import TestClient
from likeness_admin.app import FORWARDED, create_app
from likeness_admin.https import TLS_EXTENSION, client_cert_pem
from likeness_admin.mesh import Mesh, UpstreamError, _error
from likeness_admin.operators import Operator, Refused

from likeness.privacy.v1 import privacy_pb2
from likeness_platform import policy
from likeness_platform.devpki import DevPki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    return DevPki(Path(tmp_path_factory.mktemp("pki")))


class FakeMesh:
    """Stands in for the channels: records what each call would carry, answers like privacy."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any, tuple[tuple[str, str], ...]]] = []
        self.privacy = self
        self.render = self

    def __getattr__(self, name: str) -> str:
        return name  # mesh.privacy.GetErasure -> "GetErasure"

    async def call(self, method: str, request: Any, operator: Operator, purpose: str = "") -> Any:
        self.calls.append((method, request, Mesh.metadata(operator, purpose)))
        if method == "GetErasure":
            if request.erasure_id == "missing":
                raise UpstreamError(404, "ERASURE_NOT_FOUND", "no such erasure")
            return privacy_pb2.GetErasureResponse(
                erasure=privacy_pb2.Erasure(erasure_id=request.erasure_id, status=privacy_pb2.ERASURE_STATUS_COMPLETED)
            )
        if method == "VerifyLedger":
            return privacy_pb2.VerifyLedgerResponse(ok=True, erasure_entries=3, access_entries=7)
        raise AssertionError(method)


def client_with(app: Any, pem: bytes | None) -> TestClient:
    """What ClientCertProtocol does on a real connection: the verified certificate in the ASGI TLS extension."""

    async def with_cert(scope: Any, receive: Any, send: Any) -> None:
        scope.setdefault("extensions", {})[TLS_EXTENSION] = {"client_cert_chain": [pem.decode()] if pem else []}
        await app(scope, receive, send)

    return TestClient(with_cert)


def test_refusals_have_codes_and_are_reported(pki: DevPki) -> None:
    reported: list[tuple[str, str, str]] = []
    mesh = FakeMesh()
    app = create_app(mesh, refusals=lambda r, caller, method, ip: reported.append((r.code, caller, method)))  # type: ignore[arg-type]

    anonymous = client_with(app, None).get("/v1/erasures/e1")
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "CERTIFICATE_REQUIRED"
    service = client_with(app, pki.ensure("render").cert.read_bytes()).get("/v1/erasures/e1")
    assert service.status_code == 403 and service.json()["error"]["code"] == "NOT_AN_OPERATOR"
    auditor = client_with(app, pki.issue("operator/ann", roles=("auditor",)).cert.read_bytes())
    refused = auditor.get("/v1/erasures/e1")
    assert refused.status_code == 403
    assert refused.json()["error"] == {
        "code": "ROLE_REQUIRED",
        "message": "operator/ann may not call /likeness.privacy.v1.Privacy/GetErasure: it needs the role support",
        "details": {"method": "/likeness.privacy.v1.Privacy/GetErasure", "roles_needed": ["support"], "roles_held": ["auditor"]},
    }
    assert mesh.calls == []  # nothing refused reached the mesh
    # Refused certificates are reported; a request without one is not (anyone reaching the port could send those).
    assert reported == [
        ("NOT_AN_OPERATOR", "spiffe://likeness/render", "/v1/erasures/{erasure_id}"),
        ("ROLE_REQUIRED", "spiffe://likeness/operator/ann", "/likeness.privacy.v1.Privacy/GetErasure"),
    ]


def test_an_allowed_call_names_the_operator_roles_and_purpose(pki: DevPki) -> None:
    mesh = FakeMesh()
    app = create_app(mesh)  # type: ignore[arg-type]
    support = client_with(app, pki.issue("operator/sam", roles=("support", "auditor")).cert.read_bytes())
    done = support.get("/v1/erasures/e1", params={"purpose": "ticket 9"})
    assert done.status_code == 200 and done.json()["status"] == "completed"
    ((method, request, metadata),) = mesh.calls
    assert method == "GetErasure" and request.erasure_id == "e1"
    assert dict(metadata) == {
        "x-likeness-on-behalf-of": "operator/sam",
        "x-likeness-operator-roles": "auditor,support",
        "x-likeness-client": "likeness-admin/0.1.0",
        "x-likeness-purpose": "ticket 9",
    }
    assert support.post("/v1/ledger/verify").json() == {"ok": True, "erasure_entries": 3, "access_entries": 7, "problem": ""}
    assert support.post("/v1/access-log/verify").json()["access_entries"] == 7
    missing = support.get("/v1/erasures/missing")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "ERASURE_NOT_FOUND"


def test_every_forwarded_method_is_operator_reachable_by_some_role() -> None:
    # A route whose method no operator role may call would refuse everyone; one open to services would be a leak.
    for method in FORWARDED:
        allowed = policy.allowed_for(method) or frozenset()
        assert any(a == policy.OPERATOR or a.startswith("role:") for a in allowed), method
        assert not (allowed & {policy.ANYONE, policy.ANY_IDENTITY}), method


def test_upstream_errors_keep_the_service_code() -> None:
    class Failed(grpc.aio.AioRpcError):
        def __init__(self) -> None:
            super().__init__(
                grpc.StatusCode.INVALID_ARGUMENT, grpc.aio.Metadata(), grpc.aio.Metadata(("likeness-error-code", "INVALID_DAY")), "bad day"
            )

    error = _error(Failed())
    assert (error.status, error.code, error.message) == (400, "INVALID_DAY", "bad day")


def test_the_certificate_comes_only_from_the_tls_extension() -> None:
    assert client_cert_pem({"extensions": {"tls": {"client_cert_chain": ["PEM"]}}}) == b"PEM"
    assert client_cert_pem({"headers": [(b"x-client-cert", b"PEM")]}) is None
    with pytest.raises(Refused):
        from likeness_admin.operators import operator_of

        operator_of(b"")


def test_metrics_name_routes_not_paths() -> None:
    from likeness_admin.app import ADMIN_CALLS

    app = create_app(FakeMesh())  # type: ignore[arg-type]
    lost = client_with(app, None).get("/v1/nope/4f1c2a")
    assert lost.status_code == 404 and lost.json()["error"]["code"] == "NOT_FOUND"
    client_with(app, None).get("/v1/erasures/4f1c2a")
    labels = {tuple(s.labels.values()) for m in ADMIN_CALLS.collect() for s in m.samples}
    pairs = {label[:2] for label in labels}
    assert ("unmatched", "404") in pairs and ("/v1/erasures/{erasure_id}", "401") in pairs
    assert not [label for label in labels if "4f1c2a" in "".join(label)]
