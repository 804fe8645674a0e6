"""What the render use cases need from the outside world (adapters implement these)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from likeness_render.domain.results import NewResult, StoredResult

RGB = npt.NDArray[np.uint8]
# The person matte of an image (1 = person), from the selfie segmenter.
Segmenter = Callable[[RGB], npt.NDArray[np.float32]]
# Alpha (0..1, the image's size) of the person in an output-size crop.
Matting = Callable[[RGB], npt.NDArray[np.float32]]
# A face crop restored by a learned model (same size), for portrait fusion.
FaceModel = Callable[[RGB], RGB]


class ImageSourcePort(Protocol):
    async def read(self, ref: Any, subject_id: str, purpose: str) -> bytes: ...


class FacesPort(Protocol):
    async def analyze(self, image: bytes, dense: bool = True, min_face_fraction: float = 0.0) -> Any: ...


class AccessLogPort(Protocol):
    async def record_access(self, subject_id: str, resource: str, purpose: str) -> None: ...


class ResultsPort(Protocol):
    """Stored results (adapters.results.ResultStore)."""

    async def save(self, subject_id: str, data: bytes, new: NewResult) -> StoredResult: ...

    async def update_meta(self, result_id: str, meta: Mapping[str, Any]) -> None: ...

    async def get(self, result_id: str, subject_id: str) -> StoredResult: ...

    async def read(self, result: StoredResult) -> bytes: ...
