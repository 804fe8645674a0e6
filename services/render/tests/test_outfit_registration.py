"""Outfits operators register: checked like the built-in ones are drawn, and drawn the same way."""

from __future__ import annotations

import pytest

from likeness_render.domain import outfits

POLO = [
    ("#2a6f4e", [(-0.4, -0.04), (-2.6, 0.6), (-4.0, 1.0), (-4.0, 5.0), (4.0, 5.0), (4.0, 1.0), (2.6, 0.6), (0.4, -0.04)], 0.2, False),
    ("#f4f4f2", [(-0.4, -0.09), (-0.04, 0.17), (-0.19, 0.30), (-0.45, 0.05)], 0.06, True),
]


def test_a_registered_outfit_is_drawn_below_the_neck() -> None:
    polo = outfits.define("polo-green", "Green polo", POLO)
    assert len(polo.layers) == 3  # the mirrored collar is two pieces
    rgb, alpha = outfits.draw(polo, (400, 500), (200.0, 250.0), 100.0)
    assert alpha[:200].max() == 0.0 and alpha[400:].mean() > 0.9  # nothing above the neck, the chest covered
    green = rgb[450, 100].astype(int)
    assert green[1] > green[0] and green[1] > green[2]


@pytest.mark.parametrize(
    ("outfit_id", "name", "layers", "problem"),
    [
        ("Polo", "x", POLO, "lower-case"),
        ("suit", "x", POLO, "built-in"),
        ("polo", " ", POLO, "name"),
        ("polo", "x", [], "layers"),
        ("polo", "x", [("green", POLO[0][1], 0.2, False)], "#rrggbb"),
        ("polo", "x", [("#000000", [(0, 0), (1, 1)], 0.2, False)], "3 to 64"),
        ("polo", "x", [("#000000", [(0, 0), (1, 1), (9, 1)], 0.2, False)], "face widths"),
        ("polo", "x", [("#000000", [(0, 0), (1, 1), (1, 0)], 1.5, False)], "shade"),
    ],
)
def test_definitions_that_cannot_be_drawn_are_refused(outfit_id: str, name: str, layers: list, problem: str) -> None:
    with pytest.raises(outfits.OutfitError, match=problem):
        outfits.define(outfit_id, name, layers)
    assert "polo" not in outfits.OUTFITS  # define() only checks; registering is the service's
