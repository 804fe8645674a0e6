"""The admin HTTP API: FastAPI routes over the mesh's gRPC, one policy-checked operator per request.

Every route names the gRPC method it forwards to; the operator in the client certificate must be allowed
that method by `likeness_platform.policy` (else 401/403 with a code), and the call is then made for them
(see `mesh`). Every call allowed is logged (`operator_call`: operator, roles, method, purpose, outcome) and
counted; reads of a subject's data are also in privacy's hash-chained access log, written by privacy.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import structlog
from fastapi import Depends, FastAPI, File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from google.protobuf.json_format import MessageToDict
from google.protobuf.timestamp_pb2 import Timestamp
from prometheus_client import Counter
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from likeness.privacy.v1 import privacy_pb2
from likeness.render.v1 import render_pb2
from likeness_admin.https import client_cert_pem
from likeness_admin.mesh import Mesh, UpstreamError
from likeness_admin.operators import Operator, Refused, authorise, operator_of

log = structlog.get_logger("likeness.admin")

ADMIN_CALLS = Counter("likeness_admin_calls_total", "Admin API calls by route and outcome", ["route", "outcome"])

_PRIVACY = "/likeness.privacy.v1.Privacy/"
_RENDER = "/likeness.render.v1.Render/"
# Every gRPC method a route forwards to (the chart's NetworkPolicy lets the admin API reach their servers only).
FORWARDED = tuple(
    _PRIVACY + m
    for m in ("GetErasure", "GetSubjectInventory", "VerifyLedger", "ListSecurityEvents", "GetUsageStats", "GetSettings", "RewrapKeys")
) + tuple(_RENDER + m for m in ("ListTemplates", "RegisterTemplate", "ListOutfits", "RegisterOutfit"))

ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "details": {"type": "object"}},
            "required": ["code", "message", "details"],
        }
    },
}
MAX_TEMPLATE_BYTES = 20 * 1024 * 1024


def problem(status: int, code: str, message: str, details: dict[str, Any] | None = None) -> JSONResponse:
    """The one error shape (as the public API's): {"error": {"code", "message", "details"}}."""
    return JSONResponse({"error": {"code": code, "message": message, "details": details or {}}}, status_code=status)


def as_dict(message: Any) -> dict[str, Any]:
    return MessageToDict(message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)


class Call:
    """The operator behind a request, allowed one gRPC method; logs the call's outcome when it ends."""

    def __init__(self, operator: Operator, method: str, purpose: str) -> None:
        self.operator, self.method, self.purpose = operator, method, purpose


def operator_for(method: str) -> Any:
    """Dependency: the request's operator, allowed `method` by the policy (Refused otherwise)."""
    assert method in FORWARDED, f"add {method} to FORWARDED"

    async def dependency(request: Request, purpose: Annotated[str, Query(max_length=200, description="Why (access log)")] = "") -> Call:
        operator = operator_of(client_cert_pem(request.scope))
        authorise(operator, method)
        call = Call(operator, method, purpose)
        request.state.call = call
        return call

    return Depends(dependency)


class Erasure(BaseModel):
    erasure_id: str
    subject_id: str = ""
    status: str
    requested_at: str | None = None
    deadline: str | None = None
    completed_at: str | None = None
    ledger_hash: str = ""
    receipts: list[dict[str, Any]] = []


class Inventory(BaseModel):
    subject: dict[str, Any]
    holders: list[dict[str, Any]]


class Verification(BaseModel):
    ok: bool
    erasure_entries: int = Field(description="Entries of the erasure ledger checked")
    access_entries: int = Field(description="Entries of the access log checked")
    problem: str = ""


class SecurityEvents(BaseModel):
    events: list[dict[str, Any]]


class Templates(BaseModel):
    templates: list[dict[str, Any]]


class Outfits(BaseModel):
    outfits: list[dict[str, Any]]


def _point(text: str, name: str) -> render_pb2.ImagePoint:
    x, sep, y = text.partition(",")
    try:
        if not sep:
            raise ValueError
        return render_pb2.ImagePoint(x=float(x), y=float(y))
    except ValueError:
        raise Refused(400, "INVALID_OUTFIT", f"{name} is X,Y in the image's pixels, e.g. 512,140") from None


class UsageCell(BaseModel):
    dimensions: dict[str, str]
    count: int


class Usage(BaseModel):
    from_day: str
    to_day: str
    min_count: int = Field(description="Cells (day x every dimension) counting fewer calls were withheld before summing")
    cells: list[UsageCell]


class Settings(BaseModel):
    retention: list[dict[str, Any]]
    kek_id: str
    retired_keks: list[dict[str, Any]]
    kek_backup_window_days: int
    kek_rewrap_interval: str
    erasure_reverify_after: str
    stats_min_count: int


class Rewrapped(BaseModel):
    moved: int = Field(description="Data keys moved from retired KEKs to the current one")


class Whoami(BaseModel):
    operator: str
    roles: list[str]


def create_app(mesh: Mesh, docs_enabled: bool = True, refusals: Callable[[Refused, str, str, str], None] | None = None) -> FastAPI:
    """The app; `refusals(refusal, caller URI, method, client address)` reports each refused call (security events)."""
    app = FastAPI(
        title="Likeness admin API",
        version="1.0.0",
        description=(
            "Operator API over mutual TLS: present an operator certificate of the mesh CA "
            "(spiffe://likeness/operator/<name>, roles in its Subject OU `likeness-role:<role>`). "
            "Each route needs the role the mesh policy gives its gRPC method: support, auditor or admin."
        ),
        docs_url="/docs" if docs_enabled else None,
        redoc_url=None,
        responses={"default": {"description": "Error", "content": {"application/json": {"schema": ERROR_SCHEMA}}}},
    )

    @app.middleware("http")
    async def audit(request: Request, call_next: Any) -> Any:
        started = time.perf_counter()
        response = await call_next(request)
        call: Call | None = getattr(request.state, "call", None)
        route = request.scope.get("route")
        # The route's template, never the raw path: paths carry ids, and unmatched ones would make a label each.
        name = getattr(route, "path", "unmatched")
        ADMIN_CALLS.labels(name, str(response.status_code)).inc()
        if call is not None:
            # Every call an operator was allowed: who, with which roles, what, why, and how it ended.
            log.info(
                "operator_call",
                operator=call.operator.identity,
                roles=sorted(call.operator.roles),
                # Service/Method: the full gRPC path is long enough to look like a secret to the redactor.
                rpc=call.method.rsplit(".", 1)[-1],
                route=name,
                purpose=call.purpose,
                status=response.status_code,
                ms=round((time.perf_counter() - started) * 1000, 1),
            )
        return response

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> JSONResponse:
        # The route template, never the path: a path names the subject or erasure looked up.
        route = getattr(request.scope.get("route"), "path", "")
        log.warning("operator_refused", code=exc.code, route=route)
        # A certificate of the mesh CA that was refused is a security event, as refused gRPC calls are; a request
        # with no certificate at all is only logged (anyone who reaches the port could fill the log with those).
        if refusals is not None and exc.status == 403:
            caller = exc.details.get("caller", "")
            client = request.scope.get("client") or ("", 0)
            refusals(exc, str(caller), str(exc.details.get("method", route)), str(client[0]))
        return problem(exc.status, exc.code, exc.message, {k: v for k, v in exc.details.items() if k != "caller"})

    @app.exception_handler(UpstreamError)
    async def upstream(_: Request, exc: UpstreamError) -> JSONResponse:
        return problem(exc.status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [{"field": ".".join(str(p) for p in e.get("loc", ())), "problem": e.get("msg", "")} for e in exc.errors()]
        return problem(400, "INVALID_REQUEST", "the request is not valid", {"problems": problems})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "HTTP_ERROR")
        return problem(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled", error=type(exc).__name__, path=request.url.path)
        return problem(500, "INTERNAL", "internal error")

    @app.get("/healthz", tags=["ops"], summary="Liveness (no certificate needed)")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/whoami", response_model=Whoami, tags=["operators"], summary="The operator and roles of your certificate")
    async def whoami(request: Request) -> Whoami:
        operator = operator_of(client_cert_pem(request.scope))
        return Whoami(operator=operator.identity, roles=sorted(operator.roles))

    @app.get("/v1/erasures/{erasure_id}", response_model=Erasure, tags=["support"], summary="Progress and receipts of an erasure")
    async def erasure_status(erasure_id: str, call: Call = operator_for(_PRIVACY + "GetErasure")) -> Erasure:
        reply = await mesh.call(mesh.privacy.GetErasure, privacy_pb2.GetErasureRequest(erasure_id=erasure_id), call.operator, call.purpose)
        data = as_dict(reply.erasure)
        data["status"] = privacy_pb2.ErasureStatus.Name(reply.erasure.status).removeprefix("ERASURE_STATUS_").lower()
        return Erasure(**data)

    @app.get(
        "/v1/subjects/{subject_id}/inventory",
        response_model=Inventory,
        tags=["support"],
        summary="A subject's state and every holder's counts per category (no content); written to the access log",
    )
    async def subject_inventory(subject_id: str, call: Call = operator_for(_PRIVACY + "GetSubjectInventory")) -> Inventory:
        if not call.purpose.strip():
            raise Refused(400, "PURPOSE_REQUIRED", "say why you look (?purpose=...): it goes in the access log")
        reply = await mesh.call(
            mesh.privacy.GetSubjectInventory,
            privacy_pb2.GetSubjectInventoryRequest(subject_id=subject_id, purpose=call.purpose),
            call.operator,
            call.purpose,
        )
        return Inventory(subject=as_dict(reply.subject), holders=[as_dict(h) for h in reply.holders])

    @app.post(
        "/v1/ledger/verify",
        response_model=Verification,
        tags=["auditor"],
        summary="Check the hash chains of the erasure ledger and of the access log (and their signed checkpoints)",
    )
    async def ledger_verify(call: Call = operator_for(_PRIVACY + "VerifyLedger")) -> Verification:
        reply = await mesh.call(mesh.privacy.VerifyLedger, privacy_pb2.VerifyLedgerRequest(), call.operator, call.purpose)
        return Verification(**as_dict(reply))

    @app.post(
        "/v1/access-log/verify",
        response_model=Verification,
        tags=["auditor"],
        summary="Check the access log's hash chain (verified together with the erasure ledger: one call checks both)",
    )
    async def access_log_verify(call: Call = operator_for(_PRIVACY + "VerifyLedger")) -> Verification:
        reply = await mesh.call(mesh.privacy.VerifyLedger, privacy_pb2.VerifyLedgerRequest(), call.operator, call.purpose)
        return Verification(**as_dict(reply))

    @app.get("/v1/security-events", response_model=SecurityEvents, tags=["auditor"], summary="The newest security events")
    async def security_events(
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        since: datetime | None = None,
        call: Call = operator_for(_PRIVACY + "ListSecurityEvents"),
    ) -> SecurityEvents:
        request = privacy_pb2.ListSecurityEventsRequest(limit=limit)
        if since is not None:
            ts = Timestamp()
            ts.FromDatetime(since if since.tzinfo else since.replace(tzinfo=UTC))
            request.since.CopyFrom(ts)
        reply = await mesh.call(mesh.privacy.ListSecurityEvents, request, call.operator, call.purpose)
        return SecurityEvents(events=[as_dict(e) for e in reply.events])

    @app.get("/v1/templates", response_model=Templates, tags=["admin"], summary="Portrait templates")
    async def list_templates(call: Call = operator_for(_RENDER + "ListTemplates")) -> Templates:
        reply = await mesh.call(mesh.render.ListTemplates, render_pb2.ListTemplatesRequest(), call.operator, call.purpose)
        return Templates(templates=[as_dict(t) for t in reply.templates])

    @app.post("/v1/templates", status_code=201, tags=["admin"], summary="Register a portrait template (JPEG or PNG with one face)")
    async def add_template(
        name: Annotated[str, Form(min_length=1, max_length=100)],
        image: Annotated[UploadFile, File(description="JPEG or PNG")],
        style: Annotated[str, Form(max_length=100)] = "",
        call: Call = operator_for(_RENDER + "RegisterTemplate"),
    ) -> dict[str, Any]:
        data = await image.read(MAX_TEMPLATE_BYTES + 1)
        if len(data) > MAX_TEMPLATE_BYTES:
            raise Refused(413, "TOO_LARGE", f"template images are at most {MAX_TEMPLATE_BYTES} bytes")
        reply = await mesh.call(
            mesh.render.RegisterTemplate,
            render_pb2.RegisterTemplateRequest(name=name, style=style, image=data),
            call.operator,
            call.purpose,
        )
        return as_dict(reply.template)

    @app.get("/v1/outfits", response_model=Outfits, tags=["admin"], summary="Outfit materials for ID photos")
    async def list_outfits(call: Call = operator_for(_RENDER + "ListOutfits")) -> Outfits:
        reply = await mesh.call(mesh.render.ListOutfits, render_pb2.ListOutfitsRequest(), call.operator, call.purpose)
        return Outfits(outfits=[as_dict(o) for o in reply.outfits])

    @app.post(
        "/v1/outfits", status_code=201, tags=["admin"], summary="Register a garment material (RGBA PNG with neck and shoulder anchors)"
    )
    async def add_outfit(
        name: Annotated[str, Form(min_length=1, max_length=100)],
        image: Annotated[UploadFile, File(description="PNG with transparency: the garment, transparent around it")],
        neck: Annotated[str, Form(description="X,Y of the middle of the neck opening")],
        left_shoulder: Annotated[str, Form(description="X,Y of the wearer's left shoulder joint (the image's right)")],
        right_shoulder: Annotated[str, Form(description="X,Y of the wearer's right shoulder joint")],
        description: Annotated[str, Form(max_length=500)] = "",
        call: Call = operator_for(_RENDER + "RegisterOutfit"),
    ) -> dict[str, Any]:
        data = await image.read(MAX_TEMPLATE_BYTES + 1)
        if len(data) > MAX_TEMPLATE_BYTES:
            raise Refused(413, "TOO_LARGE", f"outfit images are at most {MAX_TEMPLATE_BYTES} bytes")
        request = render_pb2.RegisterOutfitRequest(
            name=name,
            image=data,
            neck=_point(neck, "neck"),
            left_shoulder=_point(left_shoulder, "left_shoulder"),
            right_shoulder=_point(right_shoulder, "right_shoulder"),
            description=description,
        )
        reply = await mesh.call(mesh.render.RegisterOutfit, request, call.operator, call.purpose)
        return as_dict(reply.outfit)

    @app.get(
        "/v1/usage",
        response_model=Usage,
        tags=["auditor", "admin"],
        summary="Daily usage aggregates; cells under the threshold withheld before anything is summed",
    )
    async def usage(
        from_day: Annotated[str, Query(alias="from", description="First UTC day, YYYY-MM-DD")] = "",
        to_day: Annotated[str, Query(alias="to", description="Last UTC day (at most yesterday)")] = "",
        group_by: Annotated[
            list[str] | None, Query(description="day, interface, operation, spec_id, country, outcome, app_version")
        ] = None,
        where: Annotated[list[str] | None, Query(description="DIM=VALUE filters, e.g. country=JP")] = None,
        call: Call = operator_for(_PRIVACY + "GetUsageStats"),
    ) -> Usage:
        filters: dict[str, str] = {}
        for item in where or []:
            name, sep, value = item.partition("=")
            if not sep:
                raise Refused(400, "INVALID_FILTER", f"where takes DIM=VALUE, not {item!r}")
            filters[name] = value
        request = privacy_pb2.GetUsageStatsRequest(from_day=from_day, to_day=to_day, group_by=group_by or [], filters=filters)
        reply = await mesh.call(mesh.privacy.GetUsageStats, request, call.operator, call.purpose)
        return Usage(
            from_day=reply.from_day,
            to_day=reply.to_day,
            min_count=reply.min_count,
            cells=[UsageCell(dimensions=dict(c.dimensions), count=c.count) for c in reply.cells],
        )

    @app.get("/v1/settings", response_model=Settings, tags=["admin"], summary="Retention periods and key-rotation state in force")
    async def settings(call: Call = operator_for(_PRIVACY + "GetSettings")) -> Settings:
        reply = await mesh.call(mesh.privacy.GetSettings, privacy_pb2.GetSettingsRequest(), call.operator, call.purpose)
        return Settings(**as_dict(reply))

    @app.post(
        "/v1/keys/rewrap",
        response_model=Rewrapped,
        tags=["admin"],
        summary="After a KEK rotation: move every data key off retired KEKs now (then the old KEK can be destroyed)",
    )
    async def rewrap(call: Call = operator_for(_PRIVACY + "RewrapKeys")) -> Rewrapped:
        reply = await mesh.call(mesh.privacy.RewrapKeys, privacy_pb2.RewrapKeysRequest(), call.operator, call.purpose)
        return Rewrapped(moved=reply.moved)

    return app
