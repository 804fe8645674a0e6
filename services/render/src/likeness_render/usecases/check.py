"""Checking a photo the user already has against an ID-photo spec (nothing is stored)."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from likeness_render.domain import compliance, idphoto
from likeness_render.domain.face import FaceGeometry
from likeness_render.usecases.ports import RGB, Segmenter
from likeness_render.usecases.shared import Shared, face_measurements, pose_measured, with_gaze


class IdPhotoChecks:
    def __init__(self, shared: Shared) -> None:
        self.shared = shared

    async def check_id_photo(self, subject_id: str, image_ref: Any, spec_id: str) -> tuple[compliance.ComplianceReport, dict[str, float]]:
        """The compliance report of the photo as given, and what was measured on it."""
        shared = self.shared
        spec = shared.spec(spec_id)
        source = await shared.load(image_ref, subject_id, "id_photo_check")
        analysis = await shared.analyze(source)
        h, w = source.shape[:2]
        face = analysis.faces[0] if analysis.faces else None
        measured: dict[str, float] = {}
        fm = None
        background_std = None
        scene = None
        if face is not None:
            raw = analysis.raw[0]
            # Pixel and model work (segmentations, the border's spread): not on the event loop.
            crown, background_std, scene = await self.shared.compute(_crown_border_scene, source, face, shared.segment)
            ppm_out = spec.px_per_mm(shared.default_dpi)
            # The photo as given: its height is the frame's height.
            px_per_mm = h / (spec.size_px(shared.default_dpi)[1] / ppm_out)
            head_px = float(face.chin[1] - crown[1])
            eye_px = h - float(face.eye_centre[1])
            fm = with_gaze(face_measurements(raw, head_px / px_per_mm, eye_px / px_per_mm), face)
            measured = {
                "head_height_mm": head_px / px_per_mm,
                "eye_line_from_bottom_mm": eye_px / px_per_mm,
                "head_height_px": head_px,
                "eye_line_from_bottom_px": eye_px,
                "crown_y_px": float(crown[1]),
                "chin_y_px": float(face.chin[1]),
                **pose_measured(raw),
            }
        m = compliance.PhotoMeasurements(len(analysis.faces), w, h, fm, background_std, scene=scene)
        return compliance.check_compliance(m, spec, default_dpi=shared.default_dpi), measured


def _crown_border_scene(
    source: RGB, face: FaceGeometry, segment: Segmenter
) -> tuple[npt.NDArray[np.float64], float, compliance.SceneMeasurements]:
    """The crown above `face`, the spread of the background along the photo's borders, and what the photo
    shows around the face (hands, objects, a cut torso), measured on one small copy."""
    crown, _ = idphoto.find_crown(source, face, segment)
    h, w = source.shape[:2]
    small = cv2.resize(source, (max(1, w // 4), max(1, h // 4)), interpolation=cv2.INTER_AREA) if max(h, w) > 1200 else source
    person = segment(small)
    # The mesh scaled to the small copy.
    mesh = None if face.mesh is None else face.mesh * (small.shape[1] / w)
    return crown, idphoto.border_std(small, person), compliance.measure_scene(small, person, mesh)
