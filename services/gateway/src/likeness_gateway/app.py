"""FastAPI application: routes, the one error shape, health and metrics."""

from __future__ import annotations

import asyncio

import structlog
import swagger_ui_bundle
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from likeness_gateway.deps import Gateway
from likeness_gateway.errors import ApiError, error_response, from_domain_error
from likeness_gateway.guards import RequestGuard
from likeness_gateway.routes import account, billing, catalog, demo, devices, idphotos, me, portraits, profile, rights, uploads
from likeness_platform.errors import DomainError

log = structlog.get_logger("likeness.gateway")

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


def _serve_docs(app: FastAPI) -> None:
    """Swagger UI from the assets installed with the swagger-ui-bundle package: nothing is loaded from another host."""
    app.mount("/docs/assets", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Likeness API",
            swagger_js_url="/docs/assets/swagger-ui-bundle.js",
            swagger_css_url="/docs/assets/swagger-ui.css",
            swagger_favicon_url="/docs/assets/favicon-32x32.png",
        )


def create_app(gw: Gateway) -> FastAPI:
    app = FastAPI(
        docs_url=None,
        redoc_url=None,
        # No 307 to the path without its trailing slash: behind a TLS-terminating proxy it would name http://, and a
        # client following it would send its token in clear.
        redirect_slashes=False,
        title="Likeness API",
        version="1.0.0",
        description="Privacy-first backend for ID-photo and AI-portrait apps. Send the device token as `Authorization: Bearer <token>`.",
        responses={"default": {"description": "Error", "content": {"application/json": {"schema": ERROR_SCHEMA}}}},
        # FastAPI's own OpenTelemetry support makes the one SERVER span per request, named "<METHOD> <route template>"
        # from the route the router matched, and records http.server.request.duration when a meter provider is set.
        # No spans for dependencies, endpoint or serialization, and no log records (they would carry exception
        # messages, which telemetry must not export). It replaces OpenTelemetry's FastAPIInstrumentor: with both,
        # every request went through two middlewares, and the instrumentor matched the route a second time to name
        # its span.
        telemetry={"tracing": True, "metrics": True, "logs": False, "operation_spans": False},
    )
    app.state.gateway = gw

    @app.exception_handler(ApiError)
    async def apierror_response(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)

    @app.exception_handler(DomainError)
    async def domainerror_response(_: Request, exc: DomainError) -> JSONResponse:
        error = from_domain_error(exc)
        return error_response(error.status, error.code, error.message)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [{"field": ".".join(str(p) for p in e.get("loc", ())), "problem": e.get("msg", "")} for e in exc.errors()]
        return error_response(400, "INVALID_REQUEST", "the request is not valid", {"problems": problems})

    @app.exception_handler(StarletteHTTPException)
    async def httperror_response(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        # 400 here is a body FastAPI could not parse (not UTF-8, JSON nested too deep): as invalid as any other bad body.
        code = {400: "INVALID_REQUEST", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 408: "REQUEST_TIMEOUT", 413: "TOO_LARGE"}.get(
            exc.status_code, "HTTP_ERROR"
        )
        return error_response(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled", error=type(exc).__name__, path=request.url.path)
        return error_response(500, "INTERNAL", "internal error")

    @app.get("/healthz", tags=["ops"], summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], summary="Readiness: every upstream is healthy")
    async def readyz() -> JSONResponse:
        names = list(gw.upstreams)
        results = await asyncio.gather(*(gw.upstreams[n].healthy() for n in names))
        upstreams = dict(zip(names, results, strict=True))
        ready = all(results)
        return JSONResponse({"ready": ready, "upstreams": upstreams}, status_code=200 if ready else 503)

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics", response_class=PlainTextResponse)
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest().decode(), media_type=CONTENT_TYPE_LATEST)

    if gw.settings.docs_enabled:
        _serve_docs(app)
    app.include_router(devices.router)
    app.include_router(me.router)
    app.include_router(profile.router)
    if gw.accounts is not None:
        # Off (no account key or no mail server): the routes do not exist, and the API description says so.
        app.include_router(account.router)
    app.include_router(rights.router)
    app.include_router(uploads.router)
    app.include_router(billing.router)
    app.include_router(catalog.router)
    app.include_router(idphotos.router)
    app.include_router(portraits.router)
    app.include_router(demo.router)
    if gw.settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=gw.settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    # Outermost: it must see the raw byte stream and every response.
    app.add_middleware(RequestGuard, gw=gw)
    return app
