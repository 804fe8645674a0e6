"""Fixtures shared by every test suite: a real PostgreSQL database for the session."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import conninfo

os.environ.setdefault("LIKENESS_MODEL_DIR", str(Path.home() / ".cache" / "likeness" / "models"))


def _with_dbname(url: str, dbname: str) -> str:
    params = conninfo.conninfo_to_dict(url)
    params["dbname"] = dbname
    return conninfo.make_conninfo(**params)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A throwaway database on the server from LIKENESS_DATABASE_URL, else on an embedded server (an admin URL).

    Services under test log in as their own runtime roles on it (likeness_platform.db_roles, provisioned
    on first use); those roles are dropped with the database.
    """
    server = None
    base = os.environ.get("LIKENESS_DATABASE_URL", "")
    if not base:
        from likeness_platform.embedded_db import EmbeddedPostgres

        server = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="likeness-pg-")), delete_on_stop=True)
        base = server.start()
    name = f"likeness_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _with_dbname(base, name)
    finally:
        from likeness_platform.db_roles import drop_roles

        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        drop_roles(base, name)
        if server is not None:
            server.stop()
