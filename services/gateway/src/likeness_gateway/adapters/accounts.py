"""Postgres repository of accounts and their one-time codes; addresses sealed under the subject's data key."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timedelta
from typing import Any

from psycopg import sql
from psycopg.errors import UniqueViolation
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from likeness_gateway.domain.accounts import Account, CodePurpose, Signup, email_associated, same
from likeness_platform.categories import Category
from likeness_platform.crypto import DataKeyCache, open_sealed, seal
from likeness_platform.dataholder import ExportItem, Retention
from likeness_platform.db import as_uuid, fetch_row, from_row, oldest_age


def _account(row: Mapping[str, Any]) -> Account:
    return from_row(Account, row)


_USE_CODE = {
    "select": sql.SQL("SELECT code_hash, attempts, expires_at > now() FROM {t} WHERE {w} FOR UPDATE"),
    "delete": sql.SQL("DELETE FROM {t} WHERE {w}"),
    "count": sql.SQL("UPDATE {t} SET attempts = attempts + 1 WHERE {w}"),
    # A sign-up whose code died keeps waiting for a new code (resend); the dead code cannot match.
    "expire": sql.SQL("UPDATE {t} SET expires_at = now() - interval '1 second' WHERE {w}"),
}


class AccountRepository:
    def __init__(self, pool: AsyncConnectionPool, keys: DataKeyCache, unverified_ttl: timedelta = timedelta(hours=24)) -> None:
        self.pool = pool
        self.keys = keys
        self.unverified_ttl = unverified_ttl

    async def _seal(self, subject_id: str, account_id: str, field: str, email: str) -> bytes:
        key = await self.keys.get(subject_id)
        return seal(key.key, email.encode(), key.key_id, email_associated(account_id, field))

    async def _open(self, account: Account, field: str, sealed: bytes) -> str:
        key = await self.keys.get(account.subject_id)
        return open_sealed(key.key, bytes(sealed), email_associated(account.account_id, field)).decode()

    async def create(self, subject_id: str, email: str, email_hash: str, password_hash: str) -> Account | None:
        """A new account of `subject_id`, its address confirmed (a sign-up's code came back); None when the address
        or the subject already has one."""
        account_id = str(uuid.uuid4())
        sealed = await self._seal(subject_id, account_id, "email", email)
        async with self.pool.connection() as conn:
            try:
                cur = await conn.cursor(row_factory=dict_row).execute(
                    "INSERT INTO accounts (account_id, subject_id, email_hash, email_sealed, password_hash, email_verified_at)"
                    " VALUES (%s, %s, %s, %s, %s, now()) RETURNING *",
                    (uuid.UUID(account_id), uuid.UUID(subject_id), email_hash, sealed, password_hash),
                )
            except UniqueViolation:
                return None
            row = await cur.fetchone()
        assert row is not None
        return _account(row)

    async def by_email_hash(self, email_hash: str) -> Account | None:
        row = await fetch_row(self.pool, "SELECT * FROM accounts WHERE email_hash = %s", (email_hash,))
        return _account(row) if row else None

    async def by_subject(self, subject_id: str) -> Account | None:
        sid = as_uuid(subject_id)
        row = await fetch_row(self.pool, "SELECT * FROM accounts WHERE subject_id = %s", (sid,)) if sid else None
        return _account(row) if row else None

    async def email(self, account: Account) -> str:
        """The address, opened with the subject's key."""
        return await self._open(account, "email", account.email_sealed)

    async def pending_email(self, account: Account) -> str | None:
        if account.pending_email_sealed is None:
            return None
        return await self._open(account, "pending_email", account.pending_email_sealed)

    async def set_password(self, account_id: str, password_hash: str) -> None:
        async with self.pool.connection() as conn:
            await conn.execute("UPDATE accounts SET password_hash = %s WHERE account_id = %s", (password_hash, uuid.UUID(account_id)))

    # Sign-ups ---------------------------------------------------------------------------------------------------
    async def start_signup(self, subject_id: str, email: str, email_hash: str, password_hash: str, code_hash: str, ttl: timedelta) -> None:
        """Keep a sign-up until its code comes back; a new one of the same subject replaces it."""
        key = await self.keys.get(subject_id)
        sealed = seal(key.key, email.encode(), key.key_id, email_associated(f"signup/{subject_id}", "email"))
        async with self.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO account_signups (subject_id, email_hash, email_sealed, password_hash, code_hash, expires_at)"
                " VALUES (%s, %s, %s, %s, %s, now() + %s) ON CONFLICT (subject_id) DO UPDATE SET email_hash = EXCLUDED.email_hash,"
                " email_sealed = EXCLUDED.email_sealed, password_hash = EXCLUDED.password_hash, code_hash = EXCLUDED.code_hash,"
                " attempts = 0, expires_at = EXCLUDED.expires_at, created_at = now()",
                (uuid.UUID(subject_id), email_hash, sealed, password_hash, code_hash, ttl),
            )

    async def signup_of(self, subject_id: str) -> Signup | None:
        sid = as_uuid(subject_id)
        row = await fetch_row(self.pool, "SELECT * FROM account_signups WHERE subject_id = %s", (sid,)) if sid else None
        return from_row(Signup, row) if row else None

    async def signup_email(self, signup: Signup) -> str:
        key = await self.keys.get(signup.subject_id)
        return open_sealed(key.key, bytes(signup.email_sealed), email_associated(f"signup/{signup.subject_id}", "email")).decode()

    async def reissue_signup_code(self, subject_id: str, code_hash: str, ttl: timedelta) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(
                "UPDATE account_signups SET code_hash = %s, attempts = 0, expires_at = now() + %s WHERE subject_id = %s",
                (code_hash, ttl, uuid.UUID(subject_id)),
            )

    async def use_signup_code(self, subject_id: str, hashed: str, max_attempts: int) -> bool:
        """Whether `hashed` is the sign-up's live code; the sign-up stays until the account is made from it."""
        return await self._use_code("account_signups", "subject_id = %s", (uuid.UUID(subject_id),), hashed, max_attempts, keep=True)

    async def finish_signup(self, signup: Signup) -> Account | None:
        """The account made from a confirmed sign-up (which is then forgotten); None when the address was taken meanwhile."""
        account = await self.create(signup.subject_id, await self.signup_email(signup), signup.email_hash, signup.password_hash)
        async with self.pool.connection() as conn:
            await conn.execute("DELETE FROM account_signups WHERE subject_id = %s", (uuid.UUID(signup.subject_id),))
        return account

    async def set_pending_email(self, account: Account, email: str, email_hash: str) -> None:
        sealed = await self._seal(account.subject_id, account.account_id, "pending_email", email)
        async with self.pool.connection() as conn:
            await conn.execute(
                "UPDATE accounts SET pending_email_hash = %s, pending_email_sealed = %s WHERE account_id = %s",
                (email_hash, sealed, uuid.UUID(account.account_id)),
            )

    async def confirm_email(self, account: Account) -> bool:
        """Make a pending correction the address; False when another account has it by now."""
        if account.pending_email_hash is None:
            return False
        email = await self.pending_email(account)
        assert email is not None
        sealed = await self._seal(account.subject_id, account.account_id, "email", email)
        async with self.pool.connection() as conn:
            try:
                await conn.execute(
                    "UPDATE accounts SET email_hash = pending_email_hash, email_sealed = %s, email_verified_at = now(),"
                    " pending_email_hash = NULL, pending_email_sealed = NULL WHERE account_id = %s AND pending_email_hash = %s",
                    (sealed, uuid.UUID(account.account_id), account.pending_email_hash),
                )
            except UniqueViolation:
                return False
        return True

    async def issue_code(self, account_id: str, purpose: CodePurpose, hashed: str, ttl: timedelta) -> None:
        """Store a code's hash; it replaces any earlier code of the same purpose."""
        async with self.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO account_codes (account_id, purpose, code_hash, expires_at) VALUES (%s, %s, %s, now() + %s)"
                " ON CONFLICT (account_id, purpose) DO UPDATE SET code_hash = EXCLUDED.code_hash, attempts = 0,"
                " expires_at = EXCLUDED.expires_at, created_at = now()",
                (uuid.UUID(account_id), purpose.value, hashed, ttl),
            )

    async def use_code(self, account_id: str, purpose: CodePurpose, hashed: str, max_attempts: int) -> bool:
        """Whether `hashed` is the live code (it is used up); a wrong try counts, and the code dies at `max_attempts`."""
        where = "account_id = %s AND purpose = %s"
        return await self._use_code("account_codes", where, (uuid.UUID(account_id), purpose.value), hashed, max_attempts)

    async def _use_code(self, table: str, where: str, args: tuple[Any, ...], hashed: str, max_attempts: int, keep: bool = False) -> bool:
        # Table and condition come from the two callers above, never from a request.
        query = {name: text.format(t=sql.Identifier(table), w=sql.SQL(where)) for name, text in _USE_CODE.items()}
        async with self.pool.connection() as conn, conn.transaction():
            row = await (await conn.execute(query["select"], args)).fetchone()
            if row is None:
                return False
            stored, attempts, live = row
            if live and attempts < max_attempts and same(stored, hashed):
                if not keep:
                    await conn.execute(query["delete"], args)
                return True
            if not live or attempts + 1 >= max_attempts:
                await conn.execute(query["expire" if keep else "delete"], args)
            else:
                await conn.execute(query["count"], args)
        return False

    # DataHolder parts (the gateway's holder adds these to its devices) ---------------------------------------------
    async def inventory(self, subject_id: str) -> dict[str, int]:
        sid = as_uuid(subject_id)
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT (SELECT count(*) FROM accounts WHERE subject_id = %s),"
                " (SELECT count(*) FROM account_codes c JOIN accounts a USING (account_id) WHERE a.subject_id = %s),"
                " (SELECT count(*) FROM account_signups WHERE subject_id = %s)",
                (sid, sid, sid),
            )
            row = await cur.fetchone()
        assert row is not None
        return {Category.ACCOUNTS: int(row[0]), Category.ACCOUNT_CODES: int(row[1]), Category.ACCOUNT_SIGNUPS: int(row[2])}

    async def export(self, subject_id: str) -> AsyncIterator[ExportItem]:
        signup = await self.signup_of(subject_id)
        if signup is not None:
            waiting = {"email": await self.signup_email(signup), "started_at": signup.created_at, "status": "waiting for the emailed code"}
            yield ExportItem(Category.ACCOUNT_SIGNUPS, "account-signup.json", "application/json", json.dumps(waiting, default=str).encode())
        account = await self.by_subject(subject_id)
        if account is None:
            return
        document = {
            "email": await self.email(account),
            "email_verified_at": account.email_verified_at,
            "pending_email": await self.pending_email(account),
            "created_at": account.created_at,
            # The hash is a secret of the account's own; saying that it exists and how it is made is what matters.
            "password": "set; kept only as an argon2id hash, which is not exported",
        }
        yield ExportItem(Category.ACCOUNTS, "account.json", "application/json", json.dumps(document, indent=2, default=str).encode())

    async def erase(self, subject_id: str) -> dict[str, int]:
        sid = as_uuid(subject_id)
        before = await self.inventory(subject_id)
        async with self.pool.connection() as conn:
            await conn.execute("DELETE FROM accounts WHERE subject_id = %s", (sid,))
            await conn.execute("DELETE FROM account_signups WHERE subject_id = %s", (sid,))
        self.keys.forget(subject_id)
        return before

    async def sweep(self, cutoffs: Mapping[str, datetime]) -> dict[str, int]:
        """Expired codes, and sign-ups not confirmed within the sign-up window."""
        async with self.pool.connection() as conn:
            codes = await conn.execute("DELETE FROM account_codes WHERE expires_at <= now()")
            signups = await conn.execute("DELETE FROM account_signups WHERE created_at < now() - %s", (self.unverified_ttl,))
        return {Category.ACCOUNTS: 0, Category.ACCOUNT_CODES: codes.rowcount, Category.ACCOUNT_SIGNUPS: signups.rowcount}

    async def retention(self) -> list[Retention]:
        count, age = await oldest_age(self.pool, "account_codes")
        accounts, accounts_age = await oldest_age(self.pool, "accounts")
        signups, signups_age = await oldest_age(self.pool, "account_signups")
        # Accounts last until they are cancelled; codes and sign-ups are swept by their own windows.
        return [
            Retention(Category.ACCOUNTS, accounts, accounts_age, 0.0),
            Retention(Category.ACCOUNT_CODES, count, age, 0.0),
            Retention(Category.ACCOUNT_SIGNUPS, signups, signups_age, 0.0),
        ]
