"""Per-call context carried across services in gRPC metadata: request id, subject, caller."""

from __future__ import annotations

import contextvars
import uuid

REQUEST_ID_KEY = "x-request-id"
SUBJECT_KEY = "x-likeness-subject"
CALLER_KEY = "x-likeness-caller"

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
