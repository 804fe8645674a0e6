"""Privacy use cases, one module each, assembled here.

- subjects.py   register subjects, hand out their data keys
- erasure.py    the erasure saga across every holder, and its background loop
- export.py     data export (one sealed zip, downloadable once)
- records.py    generation records, security events, the access log, ledger verification
- usage.py      usage statistics (counted per day and cell, small cells withheld when read)
- inventory.py  an operator's look at one subject (counts only, access-logged)
- retention.py  retention sweeps and their alarms
- self_holder.py  privacy's own data as a DataHolder
- rights.py     consents, inquiries to operators, notices (issue #22)
- ports.py      settings and the holder set the use cases share
"""

from __future__ import annotations

from dataclasses import dataclass

from likeness_platform.blobs import BlobStore
from likeness_platform.categories import Category
from likeness_platform.mail import MailSender
from likeness_privacy.adapters.repository import PrivacyRepository
from likeness_privacy.adapters.repository.rights import RightsRepository
from likeness_privacy.domain.checkpoints import public_key, signing_key
from likeness_privacy.usecases.checkpoints import Checkpoints
from likeness_privacy.usecases.erasure import Erasures
from likeness_privacy.usecases.export import Exports
from likeness_privacy.usecases.inventory import SubjectInventory
from likeness_privacy.usecases.ports import HolderPort, Holders, PrivacyConfig
from likeness_privacy.usecases.records import Records
from likeness_privacy.usecases.retention import RetentionSweeper
from likeness_privacy.usecases.rights import PushSender, Rights, RightsConfig, RightsData, SmsSender
from likeness_privacy.usecases.self_holder import SelfHolder
from likeness_privacy.usecases.subjects import Subjects
from likeness_privacy.usecases.usage import UsageStats

__all__ = ["PrivacyConfig", "PrivacyUseCases", "build_use_cases"]


@dataclass(frozen=True)
class PrivacyUseCases:
    repo: PrivacyRepository
    config: PrivacyConfig
    holders: Holders
    subjects: Subjects
    erasures: Erasures
    exports: Exports
    records: Records
    retention: RetentionSweeper
    usage: UsageStats
    inventory: SubjectInventory
    checkpoints: Checkpoints | None = None
    rights: Rights | None = None

    @property
    def self_holder(self) -> HolderPort:
        return self.holders.own


def build_use_cases(
    repo: PrivacyRepository,
    remote_holders: list[HolderPort],
    config: PrivacyConfig,
    checkpoint_sink: BlobStore | None = None,
    stats_min_count: int = 5,
    *,
    rights_config: RightsConfig | None = None,
    push: PushSender | None = None,
    mail: MailSender | None = None,
    sms: SmsSender | None = None,
) -> PrivacyUseCases:
    """The use cases; with a `checkpoint_sink`, the ledger is anchored by signed checkpoints written there; with
    `rights_config`, consents, inquiries and notices (delivered through `push`, `mail` and `sms` where given).

    `stats_min_count` is the usage statistics' suppression threshold k (see domain.usage)."""
    keys = _LateKeys()
    rights_repo = RightsRepository(repo.pool)
    rights_data = RightsData(rights_repo, keys, rights_config) if rights_config is not None else None
    holders = Holders(SelfHolder(repo, config, rights_data), remote_holders)
    checkpoints = None
    if checkpoint_sink is not None:
        checkpoints = Checkpoints(
            repo,
            checkpoint_sink,
            signing_key(config.ledger_signing_key),
            config.retention[Category.ACCESS_LOG],
            [public_key(k) for k in config.ledger_retired_public_keys],
        )
    erasures = Erasures(repo, holders, config, checkpoints)
    subjects = Subjects(repo, config, erasures)
    keys.subjects = subjects
    records = Records(repo, config, checkpoints)
    return PrivacyUseCases(
        repo=repo,
        config=config,
        holders=holders,
        subjects=subjects,
        erasures=erasures,
        exports=Exports(repo, holders, subjects, config),
        records=records,
        retention=RetentionSweeper(holders, config),
        usage=UsageStats(repo, stats_min_count),
        inventory=SubjectInventory(subjects, holders, records),
        checkpoints=checkpoints,
        rights=Rights(rights_repo, subjects, records, rights_config, push, mail, sms) if rights_config is not None else None,
    )


class _LateKeys:
    """Data keys for privacy's own holder, which exists before the Subjects use case that hands them out."""

    subjects: Subjects | None = None

    async def data_key(self, subject_id: str) -> tuple[bytes, str]:
        assert self.subjects is not None
        return await self.subjects.data_key(subject_id)
