"""Records the policies promise: pseudonymous generation records, minimised security events, a hash-chained access log."""

from __future__ import annotations

from collections.abc import Mapping

from likeness_platform.errors import InvalidArgument
from likeness_privacy.adapters.repository import PrivacyRepository
from likeness_privacy.domain import chain
from likeness_privacy.domain.pseudonyms import ip_hash, ip_prefix
from likeness_privacy.usecases.checkpoints import Checkpoints
from likeness_privacy.usecases.ports import PrivacyConfig


class Records:
    def __init__(self, repo: PrivacyRepository, config: PrivacyConfig, checkpoints: Checkpoints | None = None) -> None:
        self._repo = repo
        self._config = config
        self._checkpoints = checkpoints

    async def generation(self, subject_id: str, interface: str, parameters: Mapping[str, str], status: str, latency_ms: float) -> str:
        if not interface:
            raise InvalidArgument("interface is required")
        safe = {printable(k)[:64]: printable(v)[:128] for k, v in list(parameters.items())[:32]}
        return await self._repo.add_generation(
            subject_id, self._config.pseudonym(subject_id), printable(interface)[:64], safe, printable(status or "ok")[:64], latency_ms
        )

    async def security_event(self, subject_id: str, event_type: str, ip: str, caller: str = "", method: str = "") -> None:
        """Kept: a keyed hash of the IP and its /24 (/48) network, never the address.

        A refused mesh call names the caller's certificate identity and the method (its IP may be unknown)."""
        if caller and not ip:
            hashed, prefix = "", ""
        else:
            try:
                hashed, prefix = ip_hash(self._config.pseudonym_key, ip), ip_prefix(ip)
            except ValueError as exc:
                raise InvalidArgument("ip is not an IP address", "INVALID_IP") from exc
        await self._repo.add_security_event(
            self._config.pseudonym(subject_id) if subject_id else None,
            printable(event_type or "unknown")[:64],
            hashed,
            prefix,
            printable(caller)[:128],
            printable(method)[:128],
            subject_id=subject_id,
        )

    async def access(self, subject_id: str, actor: str, resource: str, purpose: str) -> str:
        """Append to the access log; the new entry's hash."""
        if not (subject_id and actor and resource):
            raise InvalidArgument("subject_id, actor and resource are required")
        return await self._repo.add_access(subject_id, printable(actor)[:64], printable(resource)[:256], printable(purpose)[:64])

    async def verify_ledger(self) -> tuple[bool, int, int, str]:
        """(ok, erasure ledger entries, access log entries, '' or the first problem).

        Each chain must be intact; the erasure ledger (never swept) must start at the genesis; and both must still
        reach the heads named by the newest signed checkpoint outside the database (so a cut-off head shows).
        """
        ledger, access_log = await self._repo.ledger_entries(), await self._repo.access_entries()
        erasures, problem = chain.verify(ledger)
        accesses, access_problem = chain.verify(access_log)
        problem = problem or access_problem
        if not problem and ledger and ledger[0].prev_hash != chain.GENESIS:
            problem = f"erasure_ledger: entry {ledger[0].seq} is the first but does not follow the genesis (entries were removed)"
        if not problem and self._checkpoints is not None:
            problem = await self._checkpoints.check({"erasure_ledger": ledger, "access_log": access_log})
        return not problem, erasures, accesses, problem


def printable(value: object) -> str:
    """Records keep printable text only (PostgreSQL refuses NUL; control characters garble exports)."""
    return "".join(ch for ch in str(value) if ch.isprintable())
