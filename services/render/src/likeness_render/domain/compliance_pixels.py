"""Pixel measurements the compliance rules use: background uniformity and how cleanly a cut-out was made."""

from __future__ import annotations

import functools

import cv2
import numpy as np
import numpy.typing as npt

from likeness_render.domain.compliance_types import DEFAULT_THRESHOLDS, CutoutMeasurements, Thresholds


def measure_background_uniformity(
    image: npt.NDArray[np.uint8],
    person_mask: npt.NDArray[np.bool_] | npt.NDArray[np.floating] | npt.NDArray[np.uint8],
    border_fraction: float = 0.05,
) -> float | None:
    """Standard deviation of the background along the image border.

    The border band (``border_fraction`` of the shorter side, at least 2 px) is where the
    background shows in every ID-photo composition; person pixels (mask > 0.5, or > 127
    for uint8 masks) are excluded. Returns the largest per-channel std, so a colour
    gradient counts even when luma is flat; ``None`` when no background pixel is left.
    """
    h, w = image.shape[:2]
    if person_mask.shape[:2] != (h, w):
        raise ValueError(f"mask {person_mask.shape[:2]} does not match image {(h, w)}")
    person = person_mask > (127 if person_mask.dtype == np.uint8 else 0.5)
    band = max(2, round(min(h, w) * border_fraction))
    border = np.zeros((h, w), dtype=bool)
    border[:band, :] = border[-band:, :] = True
    border[:, :band] = border[:, -band:] = True
    pixels = image[border & ~person]
    if pixels.shape[0] == 0:
        return None
    pixels = pixels.reshape(pixels.shape[0], -1).astype(np.float64)
    return float(pixels.std(axis=0).max())


def _lab(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    return cv2.cvtColor(np.ascontiguousarray(image).astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def _differs(
    image: npt.NDArray[np.uint8], background: npt.NDArray[np.uint8], delta_e: float, where: npt.NDArray[np.bool_] | None = None
) -> npt.NDArray[np.bool_]:
    """Where `image` is more than `delta_e` (CIE76) from `background`, looked at only `where` (False elsewhere).

    Pixels equal to the background's are never more than 0 from it: only the others (in a
    composite, the person and the matte's edge) are converted.
    """
    h, w = image.shape[:2]
    # Any channel differs: the absolute differences' channels or-ed (a third of the cost of summing them).
    channels = cv2.split(cv2.absdiff(image, background))
    changed = np.asarray(functools.reduce(cv2.bitwise_or, channels)) > 0
    if where is not None:
        changed &= where
    idx = np.flatnonzero(changed)
    out = np.zeros(h * w, bool)
    if idx.size == 0:
        return out.reshape(h, w)
    # Both converted at those pixels only (rows of one pixel each).
    diff = _lab(image.reshape(h * w, -1)[idx][:, None, :]) - _lab(background.reshape(h * w, -1)[idx][:, None, :])
    # Squared distances against the squared threshold: the same test without a square root per pixel.
    squared = cv2.transform(diff * diff, np.ones((1, diff.shape[-1]), np.float32))
    out[idx] = squared.reshape(-1) > np.float32(delta_e) ** 2
    return out.reshape(h, w)


# Above this radius an elliptical dilation is done as stacked rectangles (see grown): the
# kernel's ~0.8 (2r+1)^2 points cost more than a few dozen one-dimensional passes.
DIRECT_GROW_MAX_RADIUS = 5


def _ellipse_steps(radius: int) -> list[tuple[int, int]]:
    """OpenCV's elliptical kernel of ``radius`` as (half-width, half-height) rectangles whose
    union it is: each row's half-width, for each distinct one the farthest row that is at
    least that wide (widths falling, heights rising)."""
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    half = [int(np.count_nonzero(kernel[radius + dy])) // 2 for dy in range(radius + 1)]
    return [(half[dy], dy) for dy in range(radius + 1) if dy == radius or half[dy + 1] != half[dy]]


def _line(mask: npt.NDArray[np.uint8], half: int, horizontal: bool) -> npt.NDArray[np.uint8]:
    size = (2 * half + 1, 1) if horizontal else (1, 2 * half + 1)
    return np.asarray(cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_RECT, size))) if half > 0 else mask


def grown(mask: npt.NDArray[np.bool_], radius: int) -> npt.NDArray[np.bool_]:
    """``mask`` dilated by OpenCV's elliptical kernel of ``radius``, pixel for pixel.

    A large kernel is the union of rectangles w_i x h_i (widths falling, heights rising), and
    a rectangle is a horizontal then a vertical line, so the dilation is nested:
    vertical_h1(rows_w1 | vertical_h2-h1(rows_w2 | ...)), each rows_w grown from the narrower
    one before it. That is about 4r one-dimensional steps instead of the kernel's area.
    """
    m = mask.astype(np.uint8)
    if radius <= DIRECT_GROW_MAX_RADIUS:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        return np.asarray(cv2.dilate(m, kernel) > 0)
    rows, width = m, 0
    acc: npt.NDArray[np.uint8] | None = None
    above = 0
    for half_w, half_h in reversed(_ellipse_steps(radius)):
        rows, width = _line(rows, half_w - width, True), half_w
        acc = rows if acc is None else cv2.bitwise_or(_line(acc, above - half_h, False), rows)
        above = half_h
    assert acc is not None
    return np.asarray(_line(acc, above, False) > 0)


def _islands(differs: npt.NDArray[np.bool_], person: npt.NDArray[np.bool_], min_px: int) -> int:
    """Connected blobs (8-connected) of `differs` larger than `min_px` that touch no `person` pixel.

    `differs` leaves the person out, so a blob of it is one with the person exactly when one
    of its pixels is next to the person (within the 3x3 neighbourhood): the blobs are
    labelled in the box that holds them, and those with a pixel next to the person dropped.
    """
    x, y, bw, bh = cv2.boundingRect(differs.astype(np.uint8))
    if bw == 0 or bh == 0:
        return 0
    box = differs[y : y + bh, x : x + bw]
    # Labels without OpenCV's statistics (several times slower); the few blob pixels are counted here.
    n, labels = cv2.connectedComponents(box.astype(np.uint8), connectivity=8)
    if n <= 1:
        return 0
    # The person's 3x3 growth over the box (its pixels just outside the box count too).
    y0, x0 = max(0, y - 1), max(0, x - 1)
    around = person[y0 : y + bh + 1, x0 : x + bw + 1].astype(np.uint8)
    next_to = cv2.dilate(around, np.ones((3, 3), np.uint8))[y - y0 : y - y0 + bh, x - x0 : x - x0 + bw] > 0
    area = np.bincount(labels[box], minlength=n)
    attached = np.zeros(n, bool)
    attached[labels[next_to & box]] = True
    return int(((area > min_px) & ~attached)[1:].sum())


def measure_cutout(
    image: npt.NDArray[np.uint8],
    silhouette: npt.NDArray[np.bool_],
    background: npt.NDArray[np.uint8],
    others_removed: int = 0,
    t: Thresholds = DEFAULT_THRESHOLDS,
) -> CutoutMeasurements:
    """Old background left in a composited output: islands, fringe and leftover (see CutoutMeasurements).

    ``background`` is the new background alone (same size); ``silhouette`` where the person is
    by a segmentation that did not make the matte's edge (the ring is measured from it, as an
    independent observer would). Colour difference is CIE76 in CIELAB.
    """
    if image.shape != background.shape or silhouette.shape != image.shape[:2]:
        raise ValueError(f"image {image.shape}, background {background.shape} and silhouette {silhouette.shape} differ in size")
    person = silhouette.astype(bool)
    # Every use below leaves the person's own pixels out: only the rest is compared.
    differs = _differs(image, background, t.cutout_delta_e, ~person)
    near, ring_out = grown(person, 3), grown(person, 15)
    fringe_band = ring_out & ~near
    beyond = ~near
    # Blobs apart from the person: what differs, less everything that touches the person.
    islands = _islands(differs, person, t.island_px)
    # Fractions as counts (the same float64 division a boolean mean makes).
    fringe_px, beyond_px = np.count_nonzero(fringe_band), np.count_nonzero(beyond)
    return CutoutMeasurements(
        islands=islands,
        fringe_fraction=np.count_nonzero(differs & fringe_band) / fringe_px if fringe_px else 0.0,
        leftover_fraction=np.count_nonzero(differs & beyond) / beyond_px if beyond_px else 0.0,
        others_removed=others_removed,
    )
