"""Pure geometry: quarter turns, letterboxing and upright face crops."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from likeness_faces.domain import face_crop, face_merge, letterbox, rotation
from likeness_faces.domain.model_outputs import Detection


@settings(max_examples=60, deadline=None)
@given(
    width=st.integers(1, 40),
    height=st.integers(1, 40),
    turns=st.integers(0, 3),
    data=st.data(),
)
def test_unturned_pixel_centres_land_on_the_same_pixel(width: int, height: int, turns: int, data: st.DataObject) -> None:
    index = np.arange(width * height).reshape(height, width)
    image = np.stack([index % 251, index // 251, np.zeros_like(index)], axis=2).astype(np.uint8)  # unique per pixel
    turned = rotation.turn(image, turns)
    col = data.draw(st.integers(0, turned.shape[1] - 1))
    row = data.draw(st.integers(0, turned.shape[0] - 1))

    ((x, y),) = rotation.unturn_points(turns, width, height)(np.array([[col + 0.5, row + 0.5]]))

    assert (x % 1, y % 1) == pytest.approx((0.5, 0.5))
    np.testing.assert_array_equal(image[int(y), int(x)], turned[row, col])


@pytest.mark.parametrize(
    ("size", "canvas"),
    [((4000, 3000), (768, 576)), ((3000, 4000), (576, 768)), ((512, 512), (768, 768)), ((1920, 1080), (768, 576))],
)
def test_the_canvas_is_the_shape_that_wastes_least(size: tuple[int, int], canvas: tuple[int, int]) -> None:
    box = letterbox.plan(*size, long_side=768)
    assert (box.canvas_width, box.canvas_height) == canvas
    assert box.resized_width <= box.canvas_width and box.resized_height <= box.canvas_height
    assert max(box.resized_width / box.canvas_width, box.resized_height / box.canvas_height) == pytest.approx(1, abs=0.01)


def test_letterbox_points_map_back_to_the_image() -> None:
    image = np.zeros((3000, 4000, 3), dtype=np.uint8)
    image[1000:1100, 3000:3100] = 255  # a bright square centred on (3050, 1050)
    box = letterbox.plan(4000, 3000, 768)
    canvas = letterbox.apply(image, box)

    assert canvas.shape == (576, 768, 3)
    ys, xs = np.nonzero(canvas[..., 0] > 127)
    centre = np.array([[xs.mean() + 0.5, ys.mean() + 0.5]])
    np.testing.assert_allclose(box.to_image(centre), [[3050, 1050]], atol=4000 / 768)
    # a 16:9 photo leaves a band at the bottom of the 4:3 canvas, in the grey MTCNN
    # normalises to zero
    wide = letterbox.plan(1920, 1080, 768)
    padded = letterbox.apply(np.zeros((1080, 1920, 3), np.uint8), wide)
    assert wide.resized_height < padded.shape[0]
    assert padded[-1, -1].tolist() == [letterbox.PAD_VALUE] * 3
    assert padded[0, 0].tolist() == [0, 0, 0]


@pytest.mark.parametrize("roll", [0.0, 30.0, -90.0, 180.0])
@pytest.mark.parametrize("face_size", [40.0, 400.0, 2400.0])  # 2400 takes the pre-shrink path
def test_an_upright_crop_maps_both_ways(roll: float, face_size: float) -> None:
    crop = face_crop.plan(center_x=1500.0, center_y=1300.0, face_size=face_size, roll_deg=roll, margin=1.5, size=256)
    points = np.array([[1500.0, 1300.0], [1500.0 + face_size / 3, 1300.0 - face_size / 5]])
    m = crop.matrix()
    in_crop = points @ m[:, :2].T + m[:, 2]

    np.testing.assert_allclose(in_crop[0], [128, 128])
    np.testing.assert_allclose(crop.to_image(in_crop), points, atol=1e-6)


@pytest.mark.parametrize("face_size", [60.0, 1500.0])  # 1500 takes the pre-shrink path
def test_a_marked_pixel_appears_where_the_crop_says(face_size: float) -> None:
    image = np.zeros((3000, 3000, 3), dtype=np.uint8)
    mark_x, mark_y = int(1500 + 0.4 * face_size), int(1500 - 0.2 * face_size)
    half = max(2, int(face_size / 20))
    image[mark_y - half : mark_y + half, mark_x - half : mark_x + half] = 255
    crop = face_crop.plan(center_x=1500.0, center_y=1500.0, face_size=face_size, roll_deg=-90.0, margin=1.2, size=200)
    pixels = face_crop.extract(image, crop)

    ys, xs = np.nonzero(pixels[..., 0] > 100)
    found = np.array([xs.mean() + 0.5, ys.mean() + 0.5])
    m = crop.matrix()
    expected = m[:, :2] @ np.array([float(mark_x), float(mark_y)]) + m[:, 2]
    np.testing.assert_allclose(found, expected, atol=1.0)
    # the crop is turned by -roll: a point right of centre in the image is below it in the crop
    assert expected[1] > 100 + 0.3 * 200 / 1.2


def _detection(x1: float, y1: float, x2: float, y2: float, score: float) -> Detection:
    return Detection(box=np.array([x1, y1, x2, y2]), score=score, points=np.zeros((5, 2)))


def test_one_face_found_under_two_turns_is_kept_once_with_the_better_score() -> None:
    upright_guess = _detection(100, 100, 200, 220, 0.96)
    sideways_find = _detection(95, 110, 215, 210, 0.999)  # the same face, box from another turn
    neighbour = _detection(260, 100, 360, 220, 0.95)

    kept = face_merge.strongest_per_face([upright_guess, neighbour, sideways_find])

    assert kept == [sideways_find, neighbour]
    assert face_merge.iou(upright_guess, sideways_find) > face_merge.SAME_FACE_IOU > face_merge.iou(sideways_find, neighbour)


@pytest.mark.parametrize("size", [(4001, 3003), (4000, 3000), (1008, 756), (640, 480), (300, 200)])
@pytest.mark.parametrize("long_side", [384, 768])
def test_shrinking_keeps_places_and_averages_like_area_resampling(size: tuple[int, int], long_side: int) -> None:
    width, height = size
    rng = np.random.default_rng(1)
    image = cv2.GaussianBlur(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), (0, 0), 3)
    x0, y0, side = width * 3 // 4, height // 3, max(8, width // 40)
    image[y0 : y0 + side, x0 : x0 + side] = 255
    box = letterbox.plan(width, height, long_side)

    resized = letterbox.resize(image, box)

    assert resized.shape == (box.resized_height, box.resized_width, 3)
    ys, xs = np.nonzero(resized[..., 0] > 200)
    centre = box.to_image(np.array([[xs.mean() + 0.5, ys.mean() + 0.5]]))
    np.testing.assert_allclose(centre, [[x0 + side / 2, y0 + side / 2]], atol=max(1.0, width / box.resized_width))
    if box.resized_width < width:
        area = cv2.resize(image, (box.resized_width, box.resized_height), interpolation=cv2.INTER_AREA)
        assert np.abs(area.astype(np.int16) - resized).mean() < 2.0
