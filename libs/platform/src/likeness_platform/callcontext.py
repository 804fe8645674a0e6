"""Per-call context: request id and subject (carried across services in gRPC metadata) and the caller.

The caller is the identity in the peer's client certificate (set by the authorisation interceptor);
no header names it: a self-declared caller would be trusted by nothing."""

from __future__ import annotations

import contextvars
import uuid

REQUEST_ID_KEY = "x-request-id"
SUBJECT_KEY = "x-likeness-subject"
# Set by a service on the calls it makes while serving an operator: the operator's certificate identity,
# so the access log names the person behind a read (privacy trusts it only from mesh services).
ON_BEHALF_OF_KEY = "x-likeness-on-behalf-of"
# Sent by a delegator (the admin API, `policy.DELEGATORS`) beside ON_BEHALF_OF_KEY: the operator's certificate
# roles, comma-separated. Believed only from a delegator's certificate; from anyone else it is ignored.
OPERATOR_ROLES_KEY = "x-likeness-operator-roles"
# Why an operator makes a call (written to the access log with the read), e.g. "ticket 1234".
PURPOSE_KEY = "x-likeness-purpose"
# The client program of a direct gRPC call ("likeness-cli/0.1.0"), for usage statistics only.
CLIENT_KEY = "x-likeness-client"
# The app version of the device a gateway call serves, for usage statistics only (believed from the gateway).
APP_VERSION_KEY = "x-likeness-app-version"

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("likeness_request_id", default="")
subject_var: contextvars.ContextVar[str] = contextvars.ContextVar("likeness_subject", default="")
caller_var: contextvars.ContextVar[str] = contextvars.ContextVar("likeness_caller", default="")
# The app version of the device a gateway call serves (usage statistics), sent on as APP_VERSION_KEY.
app_version_var: contextvars.ContextVar[str] = contextvars.ContextVar("likeness_app_version", default="")
# The delegator (the admin API) that made the call for the operator in caller_var; '' for direct calls.
via_var: contextvars.ContextVar[str] = contextvars.ContextVar("likeness_via", default="")


def new_request_id() -> str:
    """A fresh random request id."""
    return uuid.uuid4().hex


def current_request_id() -> str:
    """The request id of the call being served, or a new one."""
    return request_id_var.get() or new_request_id()


def current_subject() -> str:
    """The subject the gateway says this call is for ('' when none)."""
    return subject_var.get()


def current_caller() -> str:
    """The certificate identity of the service or operator that made the call being served ('' outside a call).

    For a delegated call (the admin API acting for an operator) it is the operator's identity."""
    return caller_var.get()


def current_actor() -> str:
    """Who to name in the access log: the caller, and the delegator it came through ('operator/alice via admin')."""
    via = via_var.get()
    return f"{caller_var.get()} via {via}" if via else caller_var.get()
