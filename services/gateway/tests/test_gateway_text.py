"""What the public API accepts as text and as identifiers, checked the way the routes check it (pydantic patterns)."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field, ValidationError

from likeness_gateway.domain.text import IDENTIFIER, PRINTABLE


class Body(BaseModel):
    text: str | None = Field(default=None, pattern=PRINTABLE)
    ident: str | None = Field(default=None, pattern=IDENTIFIER)


@pytest.mark.parametrize("ok", ["iPhone15,2", "18.1", "Pixel 8 Pro", "Grüße ✓", "a"])
def test_printable_text_is_accepted(ok: str) -> None:
    assert Body(text=ok).text == ok


@pytest.mark.parametrize("bad", ["", "nul\x00byte", "line\nbreak", "trailing\n", "tab\there", "bell\x07", "del\x7f", "\x1b[31mred"])
def test_control_characters_are_refused(bad: str) -> None:
    with pytest.raises(ValidationError):
        Body(text=bad)


@pytest.mark.parametrize("ok", ["us-passport", "de_passport.v2", "A4", "0"])
def test_identifiers_are_accepted(ok: str) -> None:
    assert Body(ident=ok).ident == ok


@pytest.mark.parametrize("bad", ["", "-leading-dash", ".hidden", "../etc/passwd", "a/b", "with space", "us-passport\n", "é"])
def test_anything_else_is_not_an_identifier(bad: str) -> None:
    with pytest.raises(ValidationError):
        Body(ident=bad)
