"""The owner/runtime role split of likeness_platform.db and db_roles, on a scratch schema."""

import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import errors
from psycopg.conninfo import conninfo_to_dict

from likeness_platform.db import apply_migrations
from likeness_platform.db_roles import provision_roles, role_names


def _fails(url: str, query: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn, pytest.raises(errors.InsufficientPrivilege):
        conn.execute(query)


async def test_grants_follow_new_migrations_and_append_only_tables_take_no_update_or_delete(database_url: str, tmp_path: Path) -> None:
    roles = provision_roles(database_url)
    runtime_url = roles.runtime_urls["gateway"]
    runtime = str(conninfo_to_dict(runtime_url)["user"])
    schema = f"roles_{uuid.uuid4().hex[:8]}"
    (tmp_path / "001_first.sql").write_text(
        "CREATE TABLE items (id bigserial PRIMARY KEY, note text); CREATE TABLE audit (id bigserial PRIMARY KEY, note text);"
    )
    try:
        assert await apply_migrations(roles.owner_url, schema, tmp_path, runtime_role=runtime, append_only=["audit"])
        with psycopg.connect(runtime_url, autocommit=True) as conn:
            conn.execute(f"INSERT INTO {schema}.items (note) VALUES ('a')")
            conn.execute(f"UPDATE {schema}.items SET note = 'b'")
            conn.execute(f"DELETE FROM {schema}.items")
            conn.execute(f"INSERT INTO {schema}.audit (note) VALUES ('a')")
            assert conn.execute(f"SELECT note FROM {schema}.audit").fetchall() == [("a",)]
        _fails(runtime_url, f"UPDATE {schema}.audit SET note = 'forged'")
        _fails(runtime_url, f"DELETE FROM {schema}.audit")
        _fails(runtime_url, f"TRUNCATE {schema}.audit")
        _fails(runtime_url, f"SELECT * FROM {schema}.schema_migrations")
        _fails(runtime_url, f"CREATE TABLE {schema}.mine (id int)")
        _fails(runtime_url, f"SELECT setval('{schema}.items_id_seq', 1)")
        # A table a later migration adds is granted on the next run, without touching the earlier grants.
        (tmp_path / "002_later.sql").write_text("CREATE TABLE later (id int);")
        assert await apply_migrations(roles.owner_url, schema, tmp_path, runtime_role=runtime, append_only=["audit"]) == ["002_later.sql"]
        with psycopg.connect(runtime_url, autocommit=True) as conn:
            conn.execute(f"INSERT INTO {schema}.later VALUES (1)")
            conn.execute(f"DELETE FROM {schema}.later")
        _fails(runtime_url, f"DELETE FROM {schema}.audit")
        # Another service's role gets nothing of it.
        _fails(roles.runtime_urls["privacy"], f"SELECT * FROM {schema}.items")
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


async def test_an_unknown_append_only_table_is_a_clear_error(database_url: str, tmp_path: Path) -> None:
    roles = provision_roles(database_url)
    runtime = str(conninfo_to_dict(roles.runtime_urls["gateway"])["user"])
    schema = f"roles_{uuid.uuid4().hex[:8]}"
    (tmp_path / "001_first.sql").write_text("CREATE TABLE items (id int);")
    try:
        with pytest.raises(ValueError, match="append-only tables \\['ledger'\\] are not in schema"):
            await apply_migrations(roles.owner_url, schema, tmp_path, runtime_role=runtime, append_only=["ledger"])
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def test_roles_are_named_per_database_and_provisioned_once_per_process(database_url: str) -> None:
    dbname = str(conninfo_to_dict(database_url)["dbname"])
    owner, runtime = role_names(dbname)
    assert owner == f"{dbname}_owner" and runtime["privacy"] == f"{dbname}_privacy"
    roles = provision_roles(database_url)
    assert provision_roles(database_url) is roles
    assert conninfo_to_dict(roles.owner_url)["user"] == owner
    assert roles.env_for("billing") == {
        "LIKENESS_DATABASE_URL": roles.runtime_urls["billing"],
        "LIKENESS_MIGRATION_DATABASE_URL": roles.owner_url,
    }
    # Long database names still give distinct names within PostgreSQL's 63 bytes.
    long_a, long_b = "d" * 60 + "a", "d" * 60 + "b"
    assert role_names(long_a)[0] != role_names(long_b)[0]
    assert all(len(name) <= 63 for name in (role_names(long_a)[0], *role_names(long_a)[1].values()))
    with psycopg.connect(roles.owner_url, autocommit=True) as conn:
        assert conn.execute("SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = current_user").fetchone() == (
            False,
            False,
            False,
        )
    # A runtime role may not create schemas in the database; the owner may.
    _fails(roles.runtime_urls["render"], "CREATE SCHEMA render_intruder")


async def test_schemas_made_before_the_role_split_are_handed_to_the_owner_and_migrate(database_url: str, tmp_path: Path) -> None:
    """An installation whose migrations ran as the admin keeps working once the mesh switches to roles."""
    dbname = f"likeness_adopt_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{dbname}"')
    admin_url = psycopg.conninfo.make_conninfo(database_url, dbname=dbname)
    try:
        (tmp_path / "001_first.sql").write_text("CREATE TABLE items (id bigserial PRIMARY KEY, note text);")
        # Before the split: the admin itself ran the migrations.
        assert await apply_migrations(admin_url, "gateway", tmp_path) == ["001_first.sql"]
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute("INSERT INTO gateway.items (note) VALUES ('kept')")
        roles = provision_roles(admin_url)
        owner = str(conninfo_to_dict(roles.owner_url)["user"])
        runtime = str(conninfo_to_dict(roles.runtime_urls["gateway"])["user"])
        (tmp_path / "002_next.sql").write_text("ALTER TABLE items ADD COLUMN extra int;")
        assert await apply_migrations(roles.owner_url, "gateway", tmp_path, runtime_role=runtime) == ["002_next.sql"]
        with psycopg.connect(admin_url, autocommit=True) as conn:
            owners = conn.execute(
                "SELECT DISTINCT pg_get_userbyid(c.relowner) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'gateway'"
            ).fetchall()
        assert owners == [(owner,)]
        with psycopg.connect(roles.runtime_urls["gateway"], autocommit=True) as conn:
            assert conn.execute("SELECT note FROM gateway.items").fetchall() == [("kept",)]
            conn.execute("INSERT INTO gateway.items (note, extra) VALUES ('new', 1)")
    finally:
        from likeness_platform.db_roles import drop_roles

        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        drop_roles(database_url, dbname)
