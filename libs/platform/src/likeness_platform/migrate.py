"""Apply one service's migrations and exit: the Helm chart's pre-install/pre-upgrade Job.

    python -m likeness_platform.migrate SERVICE

Runs in the service's own image (its migrations sit beside its package) with the service's
database settings: LIKENESS_MIGRATION_DATABASE_URL (the owner role, which applies the files
and grants) and LIKENESS_DATABASE_URL (the runtime role, which gets DML on the schema). It
does exactly what the service does at start before serving (likeness_platform.db.
migrate_service), so an install or upgrade fails on a bad migration before any pod rolls,
and pods that start afterwards find nothing left to apply.

The service's module likeness_<SERVICE>.main names its migrations folder (MIGRATIONS, or
MIGRATIONS_DIR) and, where it has append-only tables, APPEND_ONLY.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
from collections.abc import Collection
from pathlib import Path

from likeness_platform.db import migrate_service
from likeness_platform.logging import configure_logging
from likeness_platform.settings import ServiceSettings


def service_migrations(service: str) -> tuple[Path, Collection[str]]:
    """(migrations folder, append-only tables) that likeness_<service>.main declares."""
    try:
        module = importlib.import_module(f"likeness_{service}.main")
    except ModuleNotFoundError as exc:
        raise SystemExit(f"no service {service!r} in this image ({exc})") from None
    folder = getattr(module, "MIGRATIONS", None) or getattr(module, "MIGRATIONS_DIR", None)
    if folder is None:
        raise SystemExit(f"likeness_{service}.main names no migrations folder (MIGRATIONS): {service} has no schema")
    path = Path(folder)
    if not path.is_dir():
        raise SystemExit(f"{service}'s migrations folder {path} does not exist")
    return path, tuple(getattr(module, "APPEND_ONLY", ()))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m likeness_platform.migrate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("service", help="the service whose schema to migrate (gateway, ingestion, render, billing, privacy)")
    args = parser.parse_args(argv)
    settings = ServiceSettings()
    configure_logging(f"{args.service}-migrate", settings.log_level)
    folder, append_only = service_migrations(args.service)
    applied = asyncio.run(migrate_service(settings, args.service, folder, append_only=append_only))
    print(f"{args.service}: {len(applied)} migration(s) applied: {', '.join(applied) or 'none (up to date)'}", flush=True)


if __name__ == "__main__":
    main()
