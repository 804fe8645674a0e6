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

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("likeness_request_id", default="")
subject_var: contextvars.ContextVar[str] = contextvars.ContextVar("likeness_subject", default="")
caller_var: contextvars.ContextVar[str] = contextvars.ContextVar("likeness_caller", default="")


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
    """The certificate identity of the service or operator that made the call being served ('' outside a call)."""
    return caller_var.get()
