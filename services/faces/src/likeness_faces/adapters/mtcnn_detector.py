"""MTCNN (facenet-pytorch's three networks) run on a batch of equally sized canvases.

detect_cpu runs facenet-pytorch's detect_face stages with the same pixels, pyramid, thresholds,
box regression and suppression, but RNet and ONet see their crops in channels-last memory
(oneDNN's own layout): about 3x faster on the dozens of small crops a photo gives them, the same
numbers to float rounding. detect_torch is the same algorithm as tensor operations on the
device (CUDA): detect_face there resizes each candidate box with its own kernel launches, which
caps a batch at about 135 canvases/s on an H200; detect_torch ran 1,200/s in batches of 128
(bench/faces/bench_faces_gpu.py), with boxes within 0.012 px of detect_face's.

The resampling gives detect_face's own numbers (torch's area interpolation, i.e. adaptive average
pooling, of the float canvas), bit for bit, but from one summed-area table per canvas: each output
pixel is its window's pixel sum (four look-ups, exact in integers as the canvas is uint8) divided
as torch divides it, and all the crops of a stage come out of one gather instead of one torch call
each: 4 to 7 times less CPU than torch's pooling for a 768×576 canvas. OpenCV's INTER_AREA was
cheaper but is not the same function: it moved borderline scores enough to report a 0.97 "face"
in a photo of a coffee cup that detect_face rejects.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import cv2
import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from facenet_pytorch.models.mtcnn import ONet, PNet, RNet
from facenet_pytorch.models.utils.detect_face import (
    batched_nms_numpy,
    bbreg,
    generateBoundingBox,
    pad,
    rerec,
)
from torchvision.ops.boxes import batched_nms

from likeness_faces.adapters.model_files import ModelPaths
from likeness_faces.adapters.torch_trace import traced
from likeness_faces.domain.errors import ModelFilesError
from likeness_faces.domain.model_outputs import Detection

# facenet-pytorch's defaults: per-stage score thresholds and the pyramid's scale step.
STAGE_THRESHOLDS = (0.6, 0.7, 0.7)
PYRAMID_FACTOR = 0.709
# MTCNN's input normalisation: (pixel - 127.5) / 128.
_MEAN, _SCALE = 127.5, 0.0078125

Pixels = npt.NDArray[np.uint8]
Sums = npt.NDArray[np.int32]
Indices = npt.NDArray[np.int64]


def _load(net: torch.nn.Module, path: object) -> torch.nn.Module:
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
        net.load_state_dict(state)
    except Exception as exc:  # a verified file that still fails to load is a broken install
        raise ModelFilesError(
            f"MTCNN weights {getattr(path, 'name', path)} could not be loaded ({type(exc).__name__}); reinstall facenet-pytorch==2.5.3"
        ) from exc
    return net.eval()


def pyramid(height: int, width: int, min_face_px: int) -> list[float]:
    """facenet's scales: the first maps the smallest face to PNet's 12-pixel window, each next
    one is PYRAMID_FACTOR smaller, down to a short side of 12 pixels."""
    scale = 12.0 / min_face_px
    short = min(height, width) * scale
    scales = []
    while short >= 12:
        scales.append(scale)
        scale *= PYRAMID_FACTOR
        short *= PYRAMID_FACTOR
    return scales


def _net_input(means: npt.NDArray[np.float32]) -> torch.Tensor:
    """Resampled pixels (N×h×w×3) normalised in place as detect_face normalises them, as the
    N×3×h×w channels-last tensor the nets take."""
    means -= _MEAN
    means *= _SCALE
    return torch.from_numpy(means).permute(0, 3, 1, 2)


def summed_areas(batch: Pixels) -> Sums:
    """Each canvas's summed-area table, N×(H+1)×(W+1)×3 with a zero first row and column: entry
    [n, y, x] is the sum of canvas n's pixels above y and left of x. Exact in int32 for canvases of
    up to 2^31/255 pixels (a 768×576 canvas sums to under 2^27)."""
    if batch.shape[1] * batch.shape[2] > (2**31 - 1) // 255:
        raise ValueError(f"a {batch.shape[2]}x{batch.shape[1]} canvas is too large for int32 sums")
    return np.stack([cv2.integral(canvas, sdepth=cv2.CV_32S) for canvas in batch])


def pooling_windows(length: npt.ArrayLike, size: int) -> tuple[Indices, Indices]:
    """torch's adaptive pooling windows for size outputs over length inputs: output i averages
    inputs [floor(i·length/size), ceil((i+1)·length/size)), in integers as ATen computes them.
    Windows overlap when size does not divide length, and cover one or two inputs each when size
    exceeds length (an upscale). length may be an array (one window row per entry: ...×size)."""
    lengths = np.asarray(length, dtype=np.int64)[..., None]
    scaled = np.arange(size, dtype=np.int64) * lengths
    return scaled // size, -(-(scaled + lengths) // size)


def _averaged(sums: Sums, rows: tuple[Indices, Indices], cols: tuple[Indices, Indices]) -> npt.NDArray[np.float32]:
    """Window sums (N×h×w×3) to means exactly as torch's CPU kernel rounds them: the sum in
    float32 (exact: no window reaches 2^24 / 255 pixels) divided by the window's height, then by
    its width, as its `sum / kh / kw` does."""
    means = sums.astype(np.float32)
    means /= (rows[1] - rows[0]).astype(np.float32)[..., :, None, None]
    means /= (cols[1] - cols[0]).astype(np.float32)[..., None, :, None]
    return means


def area_resize(tables: Sums, height: int, width: int) -> npt.NDArray[np.float32]:
    """Every canvas resized to height × width as facenet's imresample (torch's area interpolation)
    resizes its float copy, from the canvases' summed-area tables; N×height×width×3."""
    rows = pooling_windows(tables.shape[1] - 1, height)
    cols = pooling_windows(tables.shape[2] - 1, width)
    # the rows' sums first (whole table rows, cheap to gather), then their columns'
    strips = np.take(tables, rows[1], axis=1) - np.take(tables, rows[0], axis=1)
    sums = np.take(strips, cols[1], axis=2) - np.take(strips, cols[0], axis=2)
    return _averaged(sums, rows, cols)


def area_crops(
    tables: Sums, image_inds: Indices, top: Indices, bottom: Indices, left: Indices, right: Indices, size: int
) -> npt.NDArray[np.float32]:
    """Regions [top, bottom) × [left, right) of the canvases image_inds (one of each per crop, K in
    all; none empty), each resized to size × size as imresample resizes the region's own slice of
    the float canvas: K×size×size×3, one gather of four corners for all crops."""
    table_height, table_width = tables.shape[1:3]
    rows = pooling_windows(bottom - top, size)
    cols = pooling_windows(right - left, size)
    first_row = (image_inds * table_height + top)[:, None]
    upper, lower = (first_row + rows[0]) * table_width, (first_row + rows[1]) * table_width  # K×size flat row offsets
    west, east = left[:, None] + cols[0], left[:, None] + cols[1]  # K×size columns
    flat = tables.reshape(-1, 3)

    def corner(row_offsets: Indices, columns: Indices) -> Sums:
        return np.take(flat, row_offsets[:, :, None] + columns[:, None, :], axis=0)

    sums = corner(lower, east) - corner(lower, west) - corner(upper, east) + corner(upper, west)
    return _averaged(sums, rows, cols)


def _crops(tables: Sums, boxes: torch.Tensor, image_inds: torch.Tensor, size: int) -> tuple[torch.Tensor | None, torch.Tensor]:
    """Each box's square cut from its canvas (clipped to it), resized to size × size as detect_face
    does (None when no box has any pixels), and the mask of the boxes that had some (the others
    are dropped, where detect_face would fail)."""
    height, width = tables.shape[1] - 1, tables.shape[2] - 1
    y, ey, x, ex = pad(boxes, width, height)
    keep = (ey > y - 1) & (ex > x - 1)
    if not keep.any():
        return None, torch.from_numpy(keep)
    # detect_face's slice imgs[ind, :, y - 1 : ey, x - 1 : ex], pad having clipped the box to the canvas
    top, bottom = y[keep].astype(np.int64) - 1, ey[keep].astype(np.int64)
    left, right = x[keep].astype(np.int64) - 1, ex[keep].astype(np.int64)
    inds = image_inds.numpy()[keep].astype(np.int64)
    return _net_input(area_crops(tables, inds, top, bottom, left, right, size)), torch.from_numpy(keep)


Level = Callable[[int, int], torch.Tensor]  # (height, width) -> the batch resampled, as PNet's input
Cut = Callable[[torch.Tensor, torch.Tensor, int], tuple[torch.Tensor | None, torch.Tensor]]  # _crops' signature


def _cascade(
    count: int, height: int, width: int, min_face_px: int, level: Level, cut: Cut, nets: tuple[torch.nn.Module, ...]
) -> tuple[list[npt.NDArray[np.float32]], list[npt.NDArray[np.float32]]]:
    """facenet-pytorch's detect_face stages, given how to resample the whole batch (level) and
    how to cut and resize candidate boxes (cut). Per canvas: boxes (k×5: x1, y1, x2, y2, score in
    pixel indices) and points (k×5×2)."""
    pnet, rnet, onet = nets
    # Stage 1: PNet over the pyramid, suppression per scale then over all scales.
    found: list[torch.Tensor] = []
    found_inds: list[torch.Tensor] = []
    for scale in pyramid(height, width, min_face_px):
        reg, probs = pnet(level(int(height * scale + 1), int(width * scale + 1)))
        boxes_scale, inds_scale = generateBoundingBox(reg, probs[:, 1], scale, STAGE_THRESHOLDS[0])
        pick = batched_nms(boxes_scale[:, :4], boxes_scale[:, 4], inds_scale, 0.5)
        found.append(boxes_scale[pick])
        found_inds.append(inds_scale[pick])
    boxes, image_inds = torch.cat(found, dim=0), torch.cat(found_inds, dim=0)
    pick = batched_nms(boxes[:, :4], boxes[:, 4], image_inds, 0.7)
    boxes, image_inds = boxes[pick], image_inds[pick]
    regw, regh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    boxes = torch.stack(
        [
            boxes[:, 0] + boxes[:, 5] * regw,
            boxes[:, 1] + boxes[:, 6] * regh,
            boxes[:, 2] + boxes[:, 7] * regw,
            boxes[:, 3] + boxes[:, 8] * regh,
            boxes[:, 4],
        ],
        dim=1,
    )
    boxes = rerec(boxes)

    # Stage 2: RNet on 24×24 crops.
    crops, valid = cut(boxes, image_inds, 24)
    boxes, image_inds = boxes[valid], image_inds[valid]
    if crops is not None:
        reg, probs = rnet(crops)
        score = probs[:, 1]
        passed = score > STAGE_THRESHOLDS[1]
        boxes = torch.cat((boxes[passed, :4], score[passed].unsqueeze(1)), dim=1)
        image_inds, reg = image_inds[passed], reg[passed]
        pick = batched_nms(boxes[:, :4], boxes[:, 4], image_inds, 0.7)
        boxes = rerec(bbreg(boxes[pick], reg[pick]))
        image_inds = image_inds[pick]

    # Stage 3: ONet on 48×48 crops: scores, five points, final boxes (the last suppression,
    # of a handful of boxes, on the CPU).
    points = torch.zeros(0, 5, 2)
    crops, valid = cut(boxes, image_inds, 48)
    boxes, image_inds = boxes[valid], image_inds[valid]
    if crops is not None:
        reg, marks, probs = onet(crops)
        score = probs[:, 1]
        passed = score > STAGE_THRESHOLDS[2]
        marks = marks[passed]
        boxes = torch.cat((boxes[passed, :4], score[passed].unsqueeze(1)), dim=1)
        image_inds, reg = image_inds[passed], reg[passed]
        w_i = (boxes[:, 2] - boxes[:, 0] + 1).unsqueeze(1)
        h_i = (boxes[:, 3] - boxes[:, 1] + 1).unsqueeze(1)
        points = torch.stack((w_i * marks[:, :5] + boxes[:, 0:1] - 1, h_i * marks[:, 5:10] + boxes[:, 1:2] - 1), dim=2)
        boxes, image_inds, points = bbreg(boxes, reg).cpu(), image_inds.cpu(), points.cpu()
        pick = batched_nms_numpy(boxes[:, :4], boxes[:, 4], image_inds, 0.7, "Min")
        boxes, image_inds, points = boxes[pick], image_inds[pick], points[pick]

    box_rows, point_rows, inds = boxes.cpu().numpy(), points.cpu().numpy(), image_inds.cpu().numpy()
    return [box_rows[inds == i] for i in range(count)], [point_rows[inds == i] for i in range(count)]


def detect_cpu(
    batch: Pixels, min_face_px: int, pnet: torch.nn.Module, rnet: torch.nn.Module, onet: torch.nn.Module
) -> tuple[list[npt.NDArray[np.float32]], list[npt.NDArray[np.float32]]]:
    """facenet-pytorch's detect_face for N×H×W×3 uint8 canvases on CPU (see the module's note).
    Per canvas: boxes (k×5: x1, y1, x2, y2, score in pixel indices) and points (k×5×2)."""
    count, height, width = batch.shape[:3]
    tables = summed_areas(batch)
    return _cascade(
        count,
        height,
        width,
        min_face_px,
        # PNet sees each pyramid level in plain NCHW memory: for one canvas its passes took 30 %
        # less CPU so, copy included, than channels-last. RNet and ONet keep channels-last, 2-3
        # times faster for their many small crops. The numbers agree to 1e-6.
        lambda h, w: _net_input(area_resize(tables, h, w)).contiguous(),
        lambda boxes, inds, size: _crops(tables, boxes, inds, size),
        (pnet, rnet, onet),
    )


def _windows_t(length: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """pooling_windows on the device: lengths (any shape, int64) -> ...×size window bounds."""
    lengths = length[..., None]
    scaled = torch.arange(size, device=length.device, dtype=torch.int64) * lengths
    return scaled // size, -(-(scaled + lengths) // size)


def _averaged_t(sums: torch.Tensor, rows: tuple[torch.Tensor, torch.Tensor], cols: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    means = sums.to(torch.float32)
    means /= (rows[1] - rows[0]).to(torch.float32)[..., :, None, None]
    means /= (cols[1] - cols[0]).to(torch.float32)[..., None, :, None]
    return means


def _net_input_t(means: torch.Tensor) -> torch.Tensor:
    means -= _MEAN
    means *= _SCALE
    return means.permute(0, 3, 1, 2)


def _crops_t(tables: torch.Tensor, boxes: torch.Tensor, image_inds: torch.Tensor, size: int) -> tuple[torch.Tensor | None, torch.Tensor]:
    """_crops with the tables, boxes and gathers on the device."""
    table_height, table_width = tables.shape[1:3]
    corners = boxes[:, :4].trunc().to(torch.int64)
    left, top = corners[:, 0].clamp(min=1) - 1, corners[:, 1].clamp(min=1) - 1
    right, bottom = corners[:, 2].clamp(max=table_width - 1), corners[:, 3].clamp(max=table_height - 1)
    keep = (bottom > top) & (right > left)
    if not bool(keep.any()):
        return None, keep
    top, bottom, left, right, inds = top[keep], bottom[keep], left[keep], right[keep], image_inds[keep].to(torch.int64)
    rows = _windows_t(bottom - top, size)
    cols = _windows_t(right - left, size)
    first_row = (inds * table_height + top)[:, None]
    upper, lower = (first_row + rows[0]) * table_width, (first_row + rows[1]) * table_width
    west, east = left[:, None] + cols[0], left[:, None] + cols[1]
    flat = tables.reshape(-1, 3)

    def corner(row_offsets: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
        return flat[row_offsets[:, :, None] + columns[:, None, :]]

    sums = corner(lower, east) - corner(lower, west) - corner(upper, east) + corner(upper, west)
    return _net_input_t(_averaged_t(sums, rows, cols)), keep


def detect_torch(
    batch: torch.Tensor, min_face_px: int, pnet: torch.nn.Module, rnet: torch.nn.Module, onet: torch.nn.Module
) -> tuple[list[npt.NDArray[np.float32]], list[npt.NDArray[np.float32]]]:
    """detect_cpu with every stage on batch's device (N×H×W×3 uint8, e.g. on CUDA): the same
    summed-area resampling, as tensor gathers, so a batch of hundreds of canvases costs a few
    dozen kernel launches per stage, not facenet's one resize per candidate box."""
    count, height, width = batch.shape[:3]
    tables = F.pad(batch.to(torch.int32).cumsum(1, dtype=torch.int32).cumsum(2, dtype=torch.int32), (0, 0, 1, 0, 1, 0))

    def level(h: int, w: int) -> torch.Tensor:
        rows = _windows_t(torch.tensor(height, device=batch.device), h)
        cols = _windows_t(torch.tensor(width, device=batch.device), w)
        strips = tables[:, rows[1]] - tables[:, rows[0]]
        return _net_input_t(_averaged_t(strips[:, :, cols[1]] - strips[:, :, cols[0]], rows, cols))

    return _cascade(
        count, height, width, min_face_px, level, lambda boxes, inds, size: _crops_t(tables, boxes, inds, size), (pnet, rnet, onet)
    )


class MtcnnDetector:
    """Not thread-safe: call from one thread (the micro-batcher's worker)."""

    def __init__(self, paths: ModelPaths, device: torch.device) -> None:
        self.device = device
        # One TorchScript call each (adapters/torch_trace.py); PNet's trace keeps the image size free.
        self.pnet: torch.nn.Module = traced(_load(PNet(pretrained=False), paths.pnet).to(device), (3, 40, 32), device)
        self.rnet: torch.nn.Module = traced(_load(RNet(pretrained=False), paths.rnet).to(device), (3, 24, 24), device)
        self.onet: torch.nn.Module = traced(_load(ONet(pretrained=False), paths.onet).to(device), (3, 48, 48), device)
        self.forward_passes = 0

    def detect(self, canvases: Sequence[Pixels], min_face_px: int) -> list[list[Detection]]:
        """One forward pass over every canvas (all of one shape); per canvas, its faces in
        canvas pixels (continuous coordinates), best score first."""
        batch = np.stack(list(canvases))
        with torch.inference_mode():
            if self.device.type == "cpu":
                boxes_per_image, points_per_image = detect_cpu(batch, min_face_px, self.pnet, self.rnet, self.onet)
            else:
                pixels = torch.from_numpy(batch).to(self.device)
                boxes_per_image, points_per_image = detect_torch(pixels, min_face_px, self.pnet, self.rnet, self.onet)
        self.forward_passes += 1
        results: list[list[Detection]] = []
        for boxes, points in zip(boxes_per_image, points_per_image, strict=True):
            rows = np.asarray(boxes, dtype=np.float64).reshape(-1, 5)
            marks = np.asarray(points, dtype=np.float64).reshape(-1, 5, 2)
            faces = [
                # MTCNN reports pixel indices; +0.5 moves them to pixel centres in
                # continuous coordinates, the convention of every other frame here.
                Detection(box=row[:4] + 0.5, score=float(row[4]), points=mark + 0.5)
                for row, mark in zip(rows, marks, strict=True)
            ]
            faces.sort(key=lambda d: d.score, reverse=True)
            results.append(faces)
        return results
