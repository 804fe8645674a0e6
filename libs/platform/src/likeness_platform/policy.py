"""Who may call what inside the mesh: the one declarative policy every server enforces.

Keys are full method names (`/package.Service/Method`) or a whole service (`/package.Service/*`);
an exact entry wins over the service's. Values are the identities allowed: a service name
(`gateway`, ...) for `spiffe://likeness/<service>`, `OPERATOR` for any `spiffe://likeness/operator/<name>`,
`ANY_IDENTITY` for any certificate of the mesh CA, `ANYONE` for callers without one (health only),
and an operator role (`SUPPORT`, `AUDITOR`, `ADMIN`) for an operator whose certificate carries that role
(`tls.roles_from_auth_context`: Subject OU `likeness-role:<role>`, signed by the mesh CA like the identity).
The admin HTTP API (`admin`) holds no rights of its own: it is a *delegator*. Its calls name the operator it
serves (`x-likeness-on-behalf-of`, with the roles of that operator's certificate) and the policy is applied
to that operator, exactly as if the operator had called over gRPC; without an operator it may call nothing.
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
# The admin HTTP API: authenticates operators by their certificates and calls the mesh on their behalf.
ADMIN_API = "admin"
SERVICES = frozenset({GATEWAY, INGESTION, FACES, RENDER, BILLING, PRIVACY, ADMIN_API})
# Identities whose calls are judged as the operator they name (see the module docstring).
DELEGATORS = frozenset({ADMIN_API})
OPERATOR = "operator/*"
# Operator roles (issue #20): support sees erasures and a subject's state, never content; auditor
# verifies the ledger and the access log; admin manages the catalog (templates, outfits, settings).
SUPPORT = "role:support"
AUDITOR = "role:auditor"
ADMIN = "role:admin"
ROLES = frozenset({"support", "auditor", "admin"})
ANY_IDENTITY = "*"
ANYONE = ""

_PRIVACY = "/likeness.privacy.v1.Privacy/"
_RIGHTS = "/likeness.privacy.v1.Rights/"
_INGESTION = "/likeness.ingestion.v1.Ingestion/"
_RENDER = "/likeness.render.v1.Render/"

POLICY: Mapping[str, frozenset[str]] = {
    # Holders give out and delete a person's data only when privacy orchestrates it.
    "/likeness.privacy.v1.DataHolder/*": frozenset({PRIVACY}),
    # Raw data keys: only the services that encrypt at rest (the gateway seals account email addresses).
    _PRIVACY + "GetDataKey": frozenset({GATEWAY, INGESTION, RENDER}),
    # Subject life cycle and rights requests: the public edge and support operators (an operator's batch
    # registers a subject of its own); exports carry content: the subject's own device only.
    _PRIVACY + "RegisterSubject": frozenset({GATEWAY, OPERATOR}),
    _PRIVACY + "GetSubject": frozenset({GATEWAY, SUPPORT}),
    _PRIVACY + "RequestErasure": frozenset({GATEWAY, SUPPORT}),
    _PRIVACY + "GetErasure": frozenset({GATEWAY, SUPPORT}),
    _PRIVACY + "RequestExport": frozenset({GATEWAY}),
    _PRIVACY + "DownloadExport": frozenset({GATEWAY}),
    _PRIVACY + "GetExport": frozenset({GATEWAY}),
    _PRIVACY + "VerifyLedger": frozenset({GATEWAY, AUDITOR}),
    # What is kept about one subject, as counts (no content): support; the read is access-logged.
    _PRIVACY + "GetSubjectInventory": frozenset({SUPPORT}),
    _PRIVACY + "ListSecurityEvents": frozenset({AUDITOR}),
    # Usage statistics: render counts every generation it serves; aggregates (small cells withheld) for
    # auditors and admins.
    _PRIVACY + "RecordUsage": frozenset({RENDER}),
    _PRIVACY + "GetUsageStats": frozenset({AUDITOR, ADMIN}),
    # Retention and key-rotation state, and rewrapping data keys after a KEK rotation: admins.
    _PRIVACY + "GetSettings": frozenset({ADMIN}),
    _PRIVACY + "RewrapKeys": frozenset({ADMIN}),
    # Records are written by the services that did the work: generations at the gateway,
    # reads of stored data by the holders that keep it.
    _PRIVACY + "RecordGeneration": frozenset({GATEWAY}),
    _PRIVACY + "RecordAccess": frozenset({GATEWAY, INGESTION, RENDER, BILLING}),
    # A person's rights (issue #22): the subject's own device through the gateway; render asks for consent at the
    # moment it would hand data to an AI provider; support reads and answers inquiries (each read in the access
    # log); admins publish notices to every affected subject.
    _RIGHTS + "SetConsents": frozenset({GATEWAY}),
    _RIGHTS + "GetConsents": frozenset({GATEWAY}),
    _RIGHTS + "CheckConsent": frozenset({GATEWAY, RENDER}),
    _RIGHTS + "CreateInquiry": frozenset({GATEWAY}),
    _RIGHTS + "ListMyInquiries": frozenset({GATEWAY}),
    _RIGHTS + "ListInquiries": frozenset({SUPPORT}),
    _RIGHTS + "AnswerInquiry": frozenset({SUPPORT}),
    _RIGHTS + "SetNoticeContact": frozenset({GATEWAY}),
    _RIGHTS + "PublishNotice": frozenset({ADMIN}),
    _RIGHTS + "ListNotices": frozenset({GATEWAY}),
    _RIGHTS + "AcceptPolicy": frozenset({GATEWAY}),
    # Every service reports refused calls and other security events.
    _PRIVACY + "RecordSecurityEvent": SERVICES,
    _INGESTION + "Upload": frozenset({GATEWAY}),
    _INGESTION + "Describe": frozenset({GATEWAY}),
    _INGESTION + "Delete": frozenset({GATEWAY}),
    _INGESTION + "Open": frozenset({RENDER, FACES}),
    "/likeness.faces.v1.Faces/*": frozenset({RENDER, OPERATOR}),
    "/likeness.render.v1.Render/*": frozenset({GATEWAY, OPERATOR}),
    # Catalog writes: admin operators only.
    _RENDER + "RegisterTemplate": frozenset({ADMIN}),
    _RENDER + "RegisterOutfit": frozenset({ADMIN}),
    # Payments: the gateway (App Store webhooks come in through it).
    "/likeness.billing.v1.Billing/*": frozenset({GATEWAY}),
    # The gateway's operator view of devices: support.
    "/likeness.gateway.v1.Devices/*": frozenset({SUPPORT}),
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


def delegated(identity: str, on_behalf_of: str, claimed_roles: str) -> tuple[str, frozenset[str]] | None:
    """For a delegator's call: the operator it names and that operator's roles; None when it names none.

    `claimed_roles` is the comma-separated roles header the delegator sends; unknown roles are dropped."""
    if identity not in DELEGATORS or not (on_behalf_of.startswith("operator/") and len(on_behalf_of) > len("operator/")):
        return None
    roles = frozenset(r.strip() for r in claimed_roles.split(",")) & ROLES
    return on_behalf_of, roles


def is_allowed(identity: str, method: str, policy: Mapping[str, frozenset[str]] = POLICY, roles: frozenset[str] = frozenset()) -> bool:
    """May `identity` ('' for no certificate, `render`, `operator/alice`) with operator `roles` call `method`? Unknown methods: no."""
    allowed = allowed_for(method, policy)
    if not allowed:
        return False
    if ANYONE in allowed:
        return True
    if not identity:
        return False
    if ANY_IDENTITY in allowed or identity in allowed:
        return True
    if not (identity.startswith("operator/") and len(identity) > len("operator/")):
        return False
    return OPERATOR in allowed or any(f"role:{role}" in allowed for role in roles & ROLES)
