"""structlog JSON logging with a redaction processor that keeps secrets, images and IPs out."""

from __future__ import annotations

import ipaddress
import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from functools import lru_cache
from typing import Any

import structlog
from opentelemetry import trace

REDACTED = "[REDACTED]"
# Keys whose values are secrets or personal data whatever they look like.
_SECRET_KEY = re.compile(
    r"(token|secret|password|passwd|authorization|cookie|credential|api[_-]?key|private|"
    r"data[_-]?key|kek|signature|signed|receipt|^key$|_key$|^ip$|_ip$|ip_address|image|"
    r"payload|chunk|^data$)",
    re.IGNORECASE,
)
# Candidates are checked with `ipaddress`, so version numbers and times are left alone.
_IP_CANDIDATE = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{0,4}|\d{1,3}(?:\.\d{1,3}){3})(?![\w:])|(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?![\w.])"
)
_BEARER = re.compile(r"(?i)bearer\s+[A-Za-z0-9._~+/=-]+")
# Long opaque strings (JWTs, base64 blobs, raw tokens) are treated as secrets.
_OPAQUE = re.compile(r"[A-Za-z0-9_\-+/=.]{40,}")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# A gRPC method's full name (/package.Service/Method): logged under `rpc`, it names a method the
# server registered (or a client's constant), never request data. Many are 40 characters or more,
# which the opaque-string rule would otherwise take for a secret.
_RPC_KEY = "rpc"
_GRPC_METHOD = re.compile(r"^/[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+/[A-Z][A-Za-z0-9_]*$")


def _cannot_hold_secrets(text: str) -> bool:
    """True when none of the patterns below can match: short ASCII text with too few ':' and '.' for an address, no 'bearer'."""
    return len(text) < 40 and text.isascii() and text.count(":") < 2 and text.count(".") < 3 and "bearer" not in text.lower()


def redact_text(text: str) -> str:
    """Remove bearer tokens, opaque secrets and IP addresses from free text."""
    if _cannot_hold_secrets(text):
        return text
    text = _BEARER.sub("Bearer " + REDACTED, text)
    text = _OPAQUE.sub(REDACTED, text)
    return _IP_CANDIDATE.sub(_ip_or_keep, text)


def _ip_or_keep(match: re.Match[str]) -> str:
    try:
        ipaddress.ip_address(match.group(0))
    except ValueError:
        return match.group(0)
    return "[IP]"


@lru_cache(maxsize=1024)
def _secret_key(key: str) -> bool:
    # Log keys are mostly the literal names in logging calls: a few dozen, matched once each.
    return _SECRET_KEY.search(key) is not None


def redact_value(key: str, value: Any) -> Any:
    """Redact one logged value according to its key and type."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(value)} bytes redacted>"
    if key and _secret_key(key) and value not in (None, "", 0):
        if isinstance(value, (bool, int, float)):
            return value
        return REDACTED
    if isinstance(value, str):
        if _UUID.match(value) or (key == _RPC_KEY and _GRPC_METHOD.match(value)):
            return value
        return redact_text(value)
    if isinstance(value, Mapping):
        return {k: redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [redact_value(key, v) for v in value]
    if isinstance(value, BaseException):
        return redact_text(f"{type(value).__name__}: {value}")
    return value


def redaction_processor(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> dict[str, Any]:
    """structlog processor: the last line of defence before anything is written."""
    return {key: (redact_text(v) if key == "event" and isinstance(v, str) else redact_value(key, v)) for key, v in event_dict.items()}


def _add_trace_ids(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        event_dict["trace_id"] = format(ctx.trace_id, "032x")
        event_dict["span_id"] = format(ctx.span_id, "016x")
    return event_dict


def configure_logging(service: str, level: str = "info", stream: Any = None) -> None:
    """Configure structlog (and stdlib logging) to emit redacted JSON lines."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    out = stream or sys.stdout
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.format_exc_info,
            redaction_processor,
            # Added after redaction: the time and the trace ids are made here, hold no request data, and the
            # redaction's IP and opaque-string patterns would only be run over them on every line.
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _add_trace_ids,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    structlog.contextvars.bind_contextvars(service=service)
    # Libraries log through stdlib; route them through the same redaction.
    handler = logging.StreamHandler(out)
    handler.setFormatter(_RedactingFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(numeric, logging.WARNING))


class _RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))


def get_logger(name: str | None = None) -> Any:
    """A structlog logger."""
    return structlog.get_logger(name)
