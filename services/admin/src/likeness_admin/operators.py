"""Who is calling the admin API: the operator in the verified client certificate, and whether the policy lets them.

The certificate is the only source: its URI SAN names the operator (`spiffe://likeness/operator/<name>`), its
Subject OUs carry the roles (`likeness-role:<role>`), both vouched for by the mesh CA the TLS handshake checked.
Whether an operator may do something is `likeness_platform.policy` for the gRPC method the route forwards to:
the same table every gRPC server enforces, so the HTTP API can never allow what gRPC would refuse.
"""

from __future__ import annotations

from dataclasses import dataclass

from likeness_platform import policy
from likeness_platform.tls import SPIFFE_PREFIX, identity_from_auth_context, roles_from_auth_context


@dataclass(frozen=True)
class Operator:
    identity: str  # operator/<name>
    roles: frozenset[str]

    @property
    def uri(self) -> str:
        return SPIFFE_PREFIX + self.identity


class Refused(Exception):
    """The caller may not make this call: HTTP status, stable code, message, details."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details or {}


def operator_of(cert_pem: bytes | None) -> Operator:
    """The operator a verified client certificate names; Refused (401/403) without one."""
    if not cert_pem:
        raise Refused(401, "CERTIFICATE_REQUIRED", "present an operator certificate of the mesh CA (mutual TLS)")
    auth = {"x509_pem_cert": [cert_pem]}
    identity = identity_from_auth_context(auth)
    if not (identity.startswith("operator/") and len(identity) > len("operator/")):
        raise Refused(
            403,
            "NOT_AN_OPERATOR",
            f"{identity or 'this certificate'} is not an operator identity (spiffe://likeness/operator/<name>)",
            # Who was refused, for the security-event log (not sent back).
            {"caller": SPIFFE_PREFIX + identity if identity else ""},
        )
    return Operator(identity, roles_from_auth_context(auth) & policy.ROLES)


def roles_for(method: str) -> list[str]:
    """The roles the policy names for a method (for the refusal's details)."""
    allowed = policy.allowed_for(method) or frozenset()
    return sorted(entry.removeprefix("role:") for entry in allowed if entry.startswith("role:"))


def authorise(operator: Operator, method: str) -> None:
    """Refused (403 ROLE_REQUIRED) unless the policy lets this operator call `method`."""
    if not policy.is_allowed(operator.identity, method, roles=operator.roles):
        needed = roles_for(method)
        raise Refused(
            403,
            "ROLE_REQUIRED",
            f"{operator.identity} may not call {method}" + (f": it needs the role {' or '.join(needed)}" if needed else ""),
            {"method": method, "roles_needed": needed, "roles_held": sorted(operator.roles), "caller": operator.uri},
        )
