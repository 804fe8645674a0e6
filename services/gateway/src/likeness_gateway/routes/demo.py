"""The demo web page: GET / and its static files, kept out of the OpenAPI schema."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from likeness_gateway.errors import ApiError

router = APIRouter(include_in_schema=False)

STATIC_DIR = (Path(__file__).resolve().parent.parent / "static").resolve()

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
}

# One flat folder: a plain file name, no separators, no leading dot, no "..".
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9]+)+")

# The page loads only its own files and talks only to this origin; images are shown from blob: URLs.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _static(name: str) -> FileResponse:
    suffix = Path(name).suffix.lower()
    if not SAFE_NAME.fullmatch(name) or suffix not in CONTENT_TYPES:
        raise ApiError(404, "NOT_FOUND", "no such file")
    path = (STATIC_DIR / name).resolve()
    if path.parent != STATIC_DIR or not path.is_file():
        raise ApiError(404, "NOT_FOUND", "no such file")
    return FileResponse(path, media_type=CONTENT_TYPES[suffix], headers=SECURITY_HEADERS)


@router.get("/")
async def index() -> FileResponse:
    return _static("index.html")


@router.get("/static/{file}")
async def static_file(file: str) -> FileResponse:
    return _static(file)
