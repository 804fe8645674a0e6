"""Privacy use cases, one module each, assembled here.

- subjects.py   register subjects, hand out their data keys
- erasure.py    the erasure saga across every holder, and its background loop
- export.py     data export (one sealed zip, downloadable once)
- records.py    generation records, security events, the access log, ledger verification
- retention.py  retention sweeps and their alarms
- self_holder.py  privacy's own data as a DataHolder
- ports.py      settings and the holder set the use cases share
"""

from __future__ import annotations

from dataclasses import dataclass

from likeness_privacy.adapters.repository import PrivacyRepository
from likeness_privacy.usecases.erasure import Erasures
from likeness_privacy.usecases.export import Exports
from likeness_privacy.usecases.ports import HolderPort, Holders, PrivacyConfig
from likeness_privacy.usecases.records import Records
from likeness_privacy.usecases.retention import RetentionSweeper
from likeness_privacy.usecases.self_holder import SelfHolder
from likeness_privacy.usecases.subjects import Subjects

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

    @property
    def self_holder(self) -> HolderPort:
        return self.holders.own


def build_use_cases(repo: PrivacyRepository, remote_holders: list[HolderPort], config: PrivacyConfig) -> PrivacyUseCases:
    holders = Holders(SelfHolder(repo, config), remote_holders)
    erasures = Erasures(repo, holders, config)
    subjects = Subjects(repo, config, erasures)
    return PrivacyUseCases(
        repo=repo,
        config=config,
        holders=holders,
        subjects=subjects,
        erasures=erasures,
        exports=Exports(repo, holders, subjects, config),
        records=Records(repo, config),
        retention=RetentionSweeper(holders, config),
    )
