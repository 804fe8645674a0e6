"""Print sheets: stored ID photos (or one just made) laid out on paper, with cut marks."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from likeness_platform.errors import InvalidArgument, NotFound
from likeness_render.domain import encoding, sheet
from likeness_render.domain.results import StoredResult
from likeness_render.domain.specs import MM_PER_INCH, Spec
from likeness_render.usecases.ports import RGB
from likeness_render.usecases.shared import Shared

SHEET_FORMATS = ("JPEG", "PNG", "PDF")


@dataclass(frozen=True)
class SheetRequest:
    paper_id: str = ""
    width_mm: float = 0.0
    height_mm: float = 0.0
    dpi: int = 300
    # The preferred spacing; tighter spacing is used when it places more photos, unless
    # exact_spacing (then these are used as given).
    margin_mm: float = 3.0
    gap_mm: float = 2.0
    cut_marks: bool = True
    count: int = 0
    exact_spacing: bool = False
    format: str = "JPEG"  # JPEG | PNG | PDF (the page at the paper's exact size)


class Sheets:
    def __init__(self, shared: Shared) -> None:
        self.shared = shared

    async def compose_sheet(
        self, subject_id: str, items: Sequence[tuple[str, int]], layout: SheetRequest
    ) -> tuple[StoredResult, bytes, int]:
        """A sheet of stored ID photos: (result id, copies; 0 fills the paper) each."""
        results = self.shared.results
        photos = []
        for result_id, count in items:
            stored = await results.get(result_id, subject_id)
            if stored.kind != "id_photo":
                raise InvalidArgument("only ID photos can be laid out on a sheet", "NOT_AN_ID_PHOTO")
            data = await results.read(stored)
            spec = self.shared.spec(stored.spec_id)
            photos.append((spec, np.asarray(Image.open(io.BytesIO(data)).convert("RGB")), count))
        return await self.lay_out(subject_id, photos, layout)

    async def lay_out(
        self, subject_id: str, photos: Sequence[tuple[Spec, RGB, int]], layout: SheetRequest
    ) -> tuple[StoredResult, bytes, int]:
        """The sheet stored as a result: the result, its bytes and how many photos it holds."""
        fmt = (layout.format or "JPEG").upper()
        if fmt not in SHEET_FORMATS:
            raise InvalidArgument(f"a sheet is JPEG, PNG or PDF, not {layout.format!r}", "UNSUPPORTED_FORMAT")
        if layout.paper_id:
            try:
                paper: Any = self.shared.catalog.paper(layout.paper_id)
            except Exception:
                raise NotFound(f"no paper {layout.paper_id!r}; list them with GET /v1/papers", "PAPER_NOT_FOUND") from None
        elif layout.width_mm > 0 and layout.height_mm > 0:
            paper = (layout.width_mm, layout.height_mm)
        else:
            raise InvalidArgument("a sheet needs a paper id or a custom size in mm", "INVALID_LAYOUT")
        dpi = float(layout.dpi or 300)
        # Pixel-only (digital) specs print at the size their pixels make at the sheet's resolution.
        items = [sheet.SheetItem(*spec.size_mm(dpi), count or sheet.FILL) for spec, _, count in photos]
        planner = sheet.plan_sheet if layout.exact_spacing else sheet.plan_best_sheet
        try:
            plan = planner(paper, items, dpi=dpi, margin_mm=layout.margin_mm, gap_mm=layout.gap_mm)
        except sheet.SheetTooLarge as exc:
            raise InvalidArgument(str(exc), "OUTPUT_TOO_LARGE") from None
        except sheet.SheetError as exc:
            raise InvalidArgument(str(exc), "INVALID_LAYOUT") from None
        if plan.total == 0:
            raise InvalidArgument("no photo fits on that paper with those margins", "SHEET_TOO_SMALL")
        image = await self.shared.compute(sheet.render_sheet, plan, [p for _, p, _ in photos], cut_marks=layout.cut_marks)
        if fmt == "PDF":
            w_in, h_in = plan.paper_width_mm / MM_PER_INCH, plan.paper_height_mm / MM_PER_INCH
            encoded = await self.shared.compute(encoding.encode_pdf, image, w_in, h_in, dpi)
        else:
            encoded = await self.shared.compute(encoding.encode_image, image, output_format=fmt, dpi=dpi, quality=95)
        stored = await self.shared.save(
            subject_id, "sheet", encoded.data, encoded.media_type, image, int(dpi), photos[0][0].id, {"photo_count": plan.total}
        )
        return stored, encoded.data, plan.total
