"""A development PKI for the platform tests (one CA per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from likeness_platform.devpki import DevPki


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    return DevPki(Path(tmp_path_factory.mktemp("pki")))
