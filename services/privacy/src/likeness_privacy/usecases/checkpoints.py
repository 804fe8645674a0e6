"""Anchoring the ledger: signed checkpoints of the chains' heads written to an append-only sink outside the database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from likeness_platform.blobs import BlobStore
from likeness_privacy.adapters.repository import PrivacyRepository
from likeness_privacy.domain import chain
from likeness_privacy.domain import checkpoints as cp

log = structlog.get_logger("likeness.privacy")


class Checkpoints:
    """Writes a checkpoint when a head moved; verifies the newest against the current and retired public keys."""

    def __init__(
        self,
        repo: PrivacyRepository,
        sink: BlobStore,
        key: Ed25519PrivateKey,
        access_retention: timedelta,
        retired: list[Ed25519PublicKey] | None = None,
    ) -> None:
        self._repo = repo
        self._sink = sink
        self._key = key
        self._access_retention = access_retention
        # Checkpoints signed before a rotation still verify under the retired public key (no private key needed).
        self._keys = cp.keyring([*(retired or []), key.public_key()])
        self._lock = asyncio.Lock()

    async def write(self) -> cp.Checkpoint | None:
        """Checkpoint the current heads unless the newest checkpoint already names them; the one written."""
        async with self._lock:
            heads = await self._repo.chain_heads()
            latest = await self.latest()
            if latest is not None and latest.heads == heads:
                return None
            if latest is not None:
                # A new checkpoint must extend the last one: never sign heads of a chain that was cut off or
                # rewritten since (that would bless the damage, and VerifyLedger checks only the newest).
                problem = await self._still_reached(latest)
                if problem:
                    log.error("ledger_checkpoint_refused", problem=problem)
                    return None
            now = datetime.now(UTC)
            checkpoint = cp.Checkpoint(heads, now)
            # Hex names that sort by time; the sink never overwrites (object lock on S3).
            name = f"{int(now.timestamp() * 1_000_000):016x}{_random_hex()}"
            await self._sink.put(name, cp.sign(self._key, checkpoint))
            log.info("ledger_checkpointed", heads={k: (h.seq if h else 0) for k, h in heads.items()})
            return checkpoint

    async def latest(self) -> cp.Checkpoint | None:
        """The newest checkpoint that verifies under a known key (unreadable ones are logged and skipped)."""
        async for name, found in self._newest_first():
            if isinstance(found, cp.Checkpoint):
                return found
            log.warning("ledger_checkpoint_unreadable", name=name, problem=str(found))
        return None

    async def _newest_first(self) -> AsyncIterator[tuple[str, cp.Checkpoint | cp.CheckpointError]]:
        names = sorted([entry.name async for entry in self._sink.entries()], reverse=True)
        for name in names:
            try:
                yield name, cp.read(self._keys, await self._sink.get(name))
            except cp.CheckpointError as exc:
                yield name, exc

    async def _still_reached(self, latest: cp.Checkpoint) -> str:
        """'' when every head of `latest` is still in its chain with the same hash (the access log's may have
        been swept by retention once the checkpoint is older than it); else what is wrong."""
        swept = latest.at < datetime.now(UTC) - self._access_retention
        for name in cp.CHAINS:
            head = latest.heads.get(name)
            if head is None:
                continue
            digest, first = await self._repo.chain_entry(name, head.seq)
            if digest == head.hash:
                continue
            if digest is not None:
                return f"{name}: entry {head.seq} differs from the signed checkpoint"
            if not (swept and name == "access_log" and first is not None and first > head.seq):
                return f"{name}: entry {head.seq} of the signed checkpoint is missing (the chain was cut off)"
        return ""

    async def check(self, chains: dict[str, list[chain.ChainEntry]]) -> str:
        """'' when both chains still reach the newest checkpoint's heads; else the first problem.

        The newest checkpoint must verify: one signed by a key that is neither current nor listed as retired, or
        whose signature does not match, is a problem in itself (not skipped in favour of an older one).
        """
        latest: cp.Checkpoint | None = None
        async for name, found in self._newest_first():
            if isinstance(found, cp.CheckpointError):
                return f"checkpoint {name}: {found}"
            latest = found
            break
        if latest is None:
            return ""
        swept = latest.at < datetime.now(UTC) - self._access_retention
        for name in cp.CHAINS:
            problem = cp.check(chains.get(name, []), latest.heads.get(name), name, may_be_swept=swept and name == "access_log")
            if problem:
                return problem
        return ""

    async def run(self, interval_seconds: float, stop: asyncio.Event | None = None) -> None:
        """Background loop: a checkpoint every interval (when a head moved)."""
        while stop is None or not stop.is_set():
            try:
                await self.write()
            except Exception as exc:
                log.error("ledger_checkpoint_failed", error=type(exc).__name__)
            await asyncio.sleep(interval_seconds)


def _random_hex() -> str:
    import secrets

    return secrets.token_hex(4)
