"""What the public API accepts as text and as identifiers, checked the way the routes check it (pydantic patterns)."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field, ValidationError

from likeness_gateway.domain.text import PRINTABLE
from likeness_gateway.routes.models import Identifier


class Body(BaseModel):
    text: str | None = Field(default=None, pattern=PRINTABLE)
    ident: Identifier | None = None


# field -> values it accepts / refuses
ACCEPTED = {
    "text": ["iPhone15,2", "18.1", "Pixel 8 Pro", "Grüße ✓", "a"],
    "ident": ["us-passport", "de_passport.v2", "A4", "0", "x" * 64],
}
REFUSED = {
    # control characters
    "text": ["", "nul\x00byte", "line\nbreak", "trailing\n", "tab\there", "bell\x07", "del\x7f", "\x1b[31mred"],
    "ident": ["", "-leading-dash", ".hidden", "../etc/passwd", "a/b", "with space", "us-passport\n", "é", "x" * 65],
}


def _cases(table: dict[str, list[str]]) -> list[tuple[str, str]]:
    return [(field, value) for field, values in table.items() for value in values]


@pytest.mark.parametrize(("field", "value"), _cases(ACCEPTED))
def test_accepted(field: str, value: str) -> None:
    assert getattr(Body.model_validate({field: value}), field) == value


@pytest.mark.parametrize(("field", "value"), _cases(REFUSED))
def test_refused(field: str, value: str) -> None:
    with pytest.raises(ValidationError):
        Body.model_validate({field: value})
