"""Postgres repository of the privacy schema, one module per concern."""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool

from likeness_privacy.adapters.repository._common import resource_kind
from likeness_privacy.adapters.repository.erasures import ErasuresRepository
from likeness_privacy.adapters.repository.exports import ExportsRepository
from likeness_privacy.adapters.repository.records import RecordsRepository
from likeness_privacy.adapters.repository.retention import RetentionRepository
from likeness_privacy.adapters.repository.subjects import SubjectsRepository
from likeness_privacy.adapters.repository.usage import UsageRepository

# Tables the runtime role may only read and append to (no UPDATE/DELETE grant); the SECURITY DEFINER
# functions of migrations/003_privacy_append_only.sql are the only way rows leave or lose their subject.
APPEND_ONLY = ("erasure_ledger", "access_log", "security_events", "generation_records", "consents")


class PrivacyRepository(SubjectsRepository, ErasuresRepository, RecordsRepository, ExportsRepository, RetentionRepository, UsageRepository):
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool


__all__ = ["APPEND_ONLY", "PrivacyRepository", "resource_kind"]
