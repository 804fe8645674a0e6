"""Least-privilege PostgreSQL roles for one Likeness database, as `make run` and the tests set them up.

One owner role runs every service's migrations (it may create schemas in the database and owns what they
hold); one runtime role per service with a schema logs in for the service's queries and gets, from the
owner's migration run, DML on that schema only (likeness_platform.db.grant_runtime). Role names are
cluster-wide while databases are not, so they carry the database's name: `<db>_owner`, `<db>_privacy`, ...
A deployment provisions the same roles its own way and hands each service its two URLs
(LIKENESS_DATABASE_URL = runtime role, LIKENESS_MIGRATION_DATABASE_URL = owner role).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import psycopg
from psycopg import errors, sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

# The services that keep a schema (faces keeps nothing).
SCHEMA_SERVICES = ("gateway", "ingestion", "render", "billing", "privacy")

# Room for the longest suffix ("_ingestion") inside PostgreSQL's 63-byte names.
_PREFIX_MAX = 48


@dataclass(frozen=True)
class DatabaseRoles:
    """The owner's URL and each service's runtime URL on one database."""

    owner_url: str
    runtime_urls: Mapping[str, str]

    def settings_for(self, service: str) -> dict[str, str]:
        """`database_url` and `migration_database_url` of a service's settings."""
        return {"database_url": self.runtime_urls[service], "migration_database_url": self.owner_url}

    def env_for(self, service: str) -> dict[str, str]:
        """The same as LIKENESS_* environment variables."""
        return {f"LIKENESS_{key.upper()}": value for key, value in self.settings_for(service).items()}


def role_names(dbname: str, services: Iterable[str] = SCHEMA_SERVICES) -> tuple[str, dict[str, str]]:
    """(owner role, service -> runtime role) of the database `dbname`."""
    prefix = dbname if len(dbname.encode()) <= _PREFIX_MAX else f"{dbname[:38]}_{hashlib.sha256(dbname.encode()).hexdigest()[:8]}"
    return f"{prefix}_owner", {service: f"{prefix}_{service}" for service in services}


_provisioned: dict[str, DatabaseRoles] = {}
_lock = threading.Lock()


def provision_roles(admin_url: str, services: Iterable[str] = SCHEMA_SERVICES) -> DatabaseRoles:
    """Create (or update) the owner and runtime roles of the database `admin_url` names; needs CREATEROLE there.

    Each role gets a fresh random password and only CONNECT on this database (the owner also CREATE, for
    schemas); PUBLIC loses its default rights on the database and on schema `public`. Idempotent: within one
    process, later calls for the same database return the roles (and passwords) of the first.
    """
    with _lock:
        known = _provisioned.get(admin_url)
        urls = dict(known.runtime_urls) if known else {}
        wanted = [service for service in services if service not in urls]
        if known is not None and not wanted:
            return known
        dbname = str(conninfo_to_dict(admin_url).get("dbname") or "")
        if not dbname:
            raise ValueError("the admin database URL must name its database")
        owner, runtime = role_names(dbname, wanted)
        with psycopg.connect(admin_url, autocommit=True) as conn:
            owner_url = known.owner_url if known else _login_role(conn, admin_url, owner)
            for service in wanted:
                urls[service] = _login_role(conn, admin_url, runtime[service])
            db = sql.Identifier(dbname)
            conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(db))
            conn.execute(sql.SQL("REVOKE CREATE ON SCHEMA public FROM PUBLIC"))
            conn.execute(sql.SQL("GRANT CONNECT, CREATE ON DATABASE {} TO {}").format(db, sql.Identifier(owner)))
            for role in runtime.values():
                conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(db, sql.Identifier(role)))
            _adopt_schemas(conn, owner, wanted)
        roles = DatabaseRoles(owner_url=owner_url, runtime_urls=urls)
        _provisioned[admin_url] = roles
        return roles


def _adopt_schemas(conn: psycopg.Connection, owner: str, services: Iterable[str]) -> None:
    """Hand schemas made before the role split (created by the admin) and everything in them to the owner role.

    An installation that ran migrations as one all-powerful role would otherwise stop at start: the owner
    role could not migrate a schema it does not own. Schemas the owner already has are left alone.
    """
    to_owner = sql.Identifier(owner)
    for schema in services:
        row = conn.execute("SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
        if row is None or row[0] == owner:
            continue
        objects = conn.execute(
            """SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
               AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.classid = 'pg_class'::regclass AND d.deptype IN ('i', 'a'))""",
            (schema,),
        ).fetchall()
        kinds = {"r": "TABLE", "p": "TABLE", "f": "FOREIGN TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW", "S": "SEQUENCE"}
        conn.execute(sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(sql.Identifier(schema), to_owner))
        for name, kind in objects:
            target = sql.Identifier(schema, name)
            conn.execute(sql.SQL("ALTER {} {} OWNER TO {}").format(sql.SQL(kinds[kind]), target, to_owner))
        functions = conn.execute(
            """SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
               WHERE n.nspname = %s""",
            (schema,),
        ).fetchall()
        for (signature,) in functions:
            conn.execute(sql.SQL("ALTER ROUTINE {} OWNER TO {}").format(sql.SQL(signature), to_owner))


def _login_role(conn: psycopg.Connection, admin_url: str, role: str) -> str:
    """Create `role` (or reset it: a role left over from an earlier run) with a new password; its URL."""
    password = secrets.token_urlsafe(24)
    attrs = sql.SQL("LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD {}").format(sql.Literal(password))
    try:
        conn.execute(sql.SQL("CREATE ROLE {} ").format(sql.Identifier(role)) + attrs)
    except errors.DuplicateObject:
        conn.execute(sql.SQL("ALTER ROLE {} ").format(sql.Identifier(role)) + attrs)
    return make_conninfo(admin_url, user=role, password=password)


def drop_roles(server_url: str, dbname: str, services: Iterable[str] = SCHEMA_SERVICES) -> None:
    """Drop the roles of the database `dbname`, once that database is dropped (they own nothing elsewhere)."""
    owner, runtime = role_names(dbname, services)
    with psycopg.connect(server_url, autocommit=True) as conn:
        for role in (*runtime.values(), owner):
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
    with _lock:
        for url in [u for u in _provisioned if conninfo_to_dict(u).get("dbname") == dbname]:
            del _provisioned[url]
