"""Typed settings: lists and maps come from one environment variable each, bad values are refused by name."""

import pytest
from pydantic import ValidationError

from likeness_platform.settings import ServiceSettings, StrList


class Example(ServiceSettings):
    origins: StrList = []
    classes: dict[str, int] = {}


def test_lists_accept_commas_or_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIKENESS_ORIGINS", " https://a.example, ,https://b.example ")
    assert Example().origins == ["https://a.example", "https://b.example"]
    monkeypatch.setenv("LIKENESS_ORIGINS", '["https://c.example"]')
    assert Example().origins == ["https://c.example"]
    monkeypatch.setenv("LIKENESS_ORIGINS", "")
    assert Example().origins == []


def test_maps_are_json_objects_with_typed_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIKENESS_CLASSES", '{"short": 3600, "day": "86400"}')
    assert Example().classes == {"short": 3600, "day": 86400}
    monkeypatch.setenv("LIKENESS_CLASSES", '{"short": "an hour"}')
    with pytest.raises(ValidationError, match="classes"):
        Example()
    monkeypatch.setenv("LIKENESS_CLASSES", "short=3600")
    with pytest.raises(Exception, match="classes"):
        Example()
