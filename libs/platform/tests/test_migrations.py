from pathlib import Path

import psycopg

from likeness_platform.db import apply_migrations


async def test_migrations_applied_twice_are_idempotent(database_url: str, tmp_path: Path) -> None:
    (tmp_path / "001_first.sql").write_text("CREATE TABLE items (id int PRIMARY KEY);")
    (tmp_path / "002_second.sql").write_text("INSERT INTO items VALUES (1);")
    first = await apply_migrations(database_url, "migtest", tmp_path)
    second = await apply_migrations(database_url, "migtest", tmp_path)
    assert first == ["001_first.sql", "002_second.sql"]
    assert second == []
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM migtest.items").fetchone() == (1,)
        conn.execute("DROP SCHEMA migtest CASCADE")


async def test_a_failing_migration_leaves_nothing_half_applied(database_url: str, tmp_path: Path) -> None:
    (tmp_path / "001_bad.sql").write_text("CREATE TABLE t1 (id int); SELECT * FROM no_such_table;")
    try:
        await apply_migrations(database_url, "migbad", tmp_path)
    except psycopg.errors.UndefinedTable:
        pass
    else:
        raise AssertionError("the bad migration should fail")
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT to_regclass('migbad.t1')").fetchone() == (None,)
        assert conn.execute("SELECT count(*) FROM migbad.schema_migrations").fetchone() == (0,)
        conn.execute("DROP SCHEMA migbad CASCADE")
