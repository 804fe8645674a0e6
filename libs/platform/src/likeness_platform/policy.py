"""Who may call what inside the mesh: the one declarative policy every server enforces.

Keys are full method names (`/package.Service/Method`) or a whole service (`/package.Service/*`);
an exact entry wins over the service's. Values are the identities allowed: a service name
(`gateway`, ...) for `spiffe://likeness/<service>`, `OPERATOR` for any `spiffe://likeness/operator/<name>`,
`ANY_IDENTITY` for any certificate of the mesh CA, `ANYONE` for callers without one (health only).
A method with no entry is refused: adding an RPC means adding its line here (a test checks every
method of protos/ has one). ARCHITECTURE.md "Trust inside the mesh" is the prose of this table.
"""

from __future__ import annotations

from collections.abc import Mapping

GATEWAY = "gateway"
INGESTION = "ingestion"
FACES = "faces"
RENDER = "render"
BILLING = "billing"
PRIVACY = "privacy"
SERVICES = frozenset({GATEWAY, INGESTION, FACES, RENDER, BILLING, PRIVACY})
OPERATOR = "operator/*"
ANY_IDENTITY = "*"
ANYONE = ""

_PRIVACY = "/likeness.privacy.v1.Privacy/"
_INGESTION = "/likeness.ingestion.v1.Ingestion/"
_RENDER = "/likeness.render.v1.Render/"

POLICY: Mapping[str, frozenset[str]] = {
    # Holders give out and delete a person's data only when privacy orchestrates it.
    "/likeness.privacy.v1.DataHolder/*": frozenset({PRIVACY}),
    # Raw data keys: only the services that encrypt at rest.
    _PRIVACY + "GetDataKey": frozenset({INGESTION, RENDER}),
    # Subject life cycle and rights requests: the public edge and support operators.
    _PRIVACY + "RegisterSubject": frozenset({GATEWAY, OPERATOR}),
    _PRIVACY + "GetSubject": frozenset({GATEWAY, OPERATOR}),
    _PRIVACY + "RequestErasure": frozenset({GATEWAY, OPERATOR}),
    _PRIVACY + "GetErasure": frozenset({GATEWAY, OPERATOR}),
    _PRIVACY + "RequestExport": frozenset({GATEWAY, OPERATOR}),
    _PRIVACY + "DownloadExport": frozenset({GATEWAY, OPERATOR}),
    _PRIVACY + "VerifyLedger": frozenset({GATEWAY, OPERATOR}),
    # Records are written by the services that did the work: generations at the gateway,
    # reads of stored data by the holders that keep it.
    _PRIVACY + "RecordGeneration": frozenset({GATEWAY}),
    _PRIVACY + "RecordAccess": frozenset({GATEWAY, INGESTION, RENDER, BILLING}),
    # Every service reports refused calls and other security events.
    _PRIVACY + "RecordSecurityEvent": SERVICES,
    _INGESTION + "Upload": frozenset({GATEWAY}),
    _INGESTION + "Describe": frozenset({GATEWAY}),
    _INGESTION + "Delete": frozenset({GATEWAY}),
    _INGESTION + "Open": frozenset({RENDER, FACES}),
    "/likeness.faces.v1.Faces/*": frozenset({RENDER, OPERATOR}),
    "/likeness.render.v1.Render/*": frozenset({GATEWAY, OPERATOR}),
    # Catalog writes: operators (admin) only.
    _RENDER + "RegisterTemplate": frozenset({OPERATOR}),
    # Payments: the gateway (App Store webhooks come in through it).
    "/likeness.billing.v1.Billing/*": frozenset({GATEWAY}),
    # The gateway's operator view of devices.
    "/likeness.gateway.v1.Devices/*": frozenset({OPERATOR}),
    # Probes: anyone (also on the plaintext health-only port).
    "/grpc.health.v1.Health/*": frozenset({ANYONE}),
    # Reflection (only served when enabled): any identity of the mesh.
    "/grpc.reflection.v1alpha.ServerReflection/*": frozenset({ANY_IDENTITY}),
    "/grpc.reflection.v1.ServerReflection/*": frozenset({ANY_IDENTITY}),
}


def allowed_for(method: str, policy: Mapping[str, frozenset[str]] = POLICY) -> frozenset[str] | None:
    """The identities allowed to call `method`, None when the policy has no entry for it."""
    found = policy.get(method)
    if found is None:
        service, _, _ = method.rpartition("/")
        found = policy.get(service + "/*")
    return found


def has_entry(method: str, policy: Mapping[str, frozenset[str]] = POLICY) -> bool:
    return allowed_for(method, policy) is not None


def is_allowed(identity: str, method: str, policy: Mapping[str, frozenset[str]] = POLICY) -> bool:
    """May `identity` ('' for no certificate, `render`, `operator/alice`) call `method`? Unknown methods: no."""
    allowed = allowed_for(method, policy)
    if not allowed:
        return False
    if ANYONE in allowed:
        return True
    if not identity:
        return False
    if ANY_IDENTITY in allowed or identity in allowed:
        return True
    return identity.startswith("operator/") and len(identity) > len("operator/") and OPERATOR in allowed
