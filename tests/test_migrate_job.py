"""`python -m likeness_platform.migrate SERVICE`, the chart's migrations Job: applies a service's migrations as the
owner role, grants its runtime role, and finds nothing to do the second time (nor does the service at start)."""

from __future__ import annotations

import sys
import types
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import conninfo

from likeness_platform import migrate
from likeness_platform.db_roles import drop_roles, provision_roles
from likeness_platform.migrate import main, service_migrations


@pytest.fixture
def empty_database(database_url: str) -> Iterator[str]:
    """A database of its own on the suite's server: the session's database has long been migrated by other tests."""
    name = f"likeness_migrate_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    params = conninfo.conninfo_to_dict(database_url)
    try:
        yield conninfo.make_conninfo(**{**params, "dbname": name})
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        drop_roles(database_url, name)


def test_job_migrates_once_as_the_owner_and_grants_the_runtime_role(
    empty_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # main() sends logs to stdout; capsys's stream closes after this test, so leave logging as the suite set it.
    monkeypatch.setattr(migrate, "configure_logging", lambda *args, **kwargs: None)
    roles = provision_roles(empty_database)
    monkeypatch.setenv("LIKENESS_DATABASE_URL", roles.runtime_urls["privacy"])
    monkeypatch.setenv("LIKENESS_MIGRATION_DATABASE_URL", roles.owner_url)
    main(["privacy"])
    first = capsys.readouterr().out
    assert "\nprivacy: " in f"\n{first}" and "migration(s) applied: 001_" in first, first
    main(["privacy"])
    assert "none (up to date)" in capsys.readouterr().out
    with psycopg.connect(roles.runtime_urls["privacy"], autocommit=True) as conn:
        conn.execute("SELECT count(*) FROM privacy.data_keys")
        # Append-only for the runtime role: the Job granted what the service's own start would.
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM privacy.access_log")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE privacy.intruder (x int)")


def test_every_schema_service_names_its_migrations() -> None:
    for service in ("gateway", "ingestion", "render", "billing", "privacy"):
        folder, _ = service_migrations(service)
        assert sorted(folder.glob("*.sql")), service
    assert service_migrations("privacy")[1], "privacy's append-only tables"


def test_job_refuses_a_service_it_cannot_migrate(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SystemExit, match="no service 'nosuch'"):
        service_migrations("nosuch")
    monkeypatch.setitem(sys.modules, "likeness_schemaless", types.ModuleType("likeness_schemaless"))
    monkeypatch.setitem(sys.modules, "likeness_schemaless.main", types.ModuleType("likeness_schemaless.main"))
    with pytest.raises(SystemExit, match="schemaless has no schema"):
        service_migrations("schemaless")
