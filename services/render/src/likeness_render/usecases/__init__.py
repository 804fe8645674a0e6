"""Render use cases, one module each, assembled here.

- id_photo.py   make an ID photo to a spec (framed, background, report, stored; optionally a sheet)
- check.py      check a photo the user already has against a spec
- sheet.py      lay stored ID photos out on a print sheet
- portrait.py   fuse a face into a portrait template
- restyle.py    the AI restyle of a portrait's face
- hairstyle.py  change the hairstyle of a photo
- templates.py  portrait templates: registration and the demo catalog
- outfits.py    garment materials for outfits, and the shoulders a photo needs to wear one
- results.py    open a stored result
- shared.py     spec lookup, decoding, face analysis and saving, shared by all of them
- ports.py      what the use cases need from adapters (Protocols)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from likeness_render.domain.outfits import InMemoryGarmentStore
from likeness_render.domain.spec_catalog import Catalog
from likeness_render.domain.specs import Spec
from likeness_render.domain.templates import TemplateStore
from likeness_render.usecases.check import IdPhotoChecks
from likeness_render.usecases.hairstyle import Hairstyles
from likeness_render.usecases.id_photo import IdPhotos, Made, PhotoRequest
from likeness_render.usecases.outfits import Outfits
from likeness_render.usecases.portrait import Portraits
from likeness_render.usecases.ports import AccessLogPort
from likeness_render.usecases.restyle import ConsentPort, Restyler
from likeness_render.usecases.results import Results
from likeness_render.usecases.shared import Shared
from likeness_render.usecases.sheet import SheetRequest, Sheets
from likeness_render.usecases.templates import Templates

__all__ = ["Made", "Outfits", "PhotoRequest", "RenderUseCases", "Shared", "SheetRequest", "build_use_cases"]


@dataclass(frozen=True)
class RenderUseCases:
    shared: Shared
    id_photos: IdPhotos
    checks: IdPhotoChecks
    sheets: Sheets
    portraits: Portraits
    hairstyles: Hairstyles
    templates: Templates
    results: Results
    outfits: Outfits

    @property
    def catalog(self) -> Catalog:
        return self.shared.catalog

    def spec(self, spec_id: str) -> Spec:
        return self.shared.spec(spec_id)


def build_use_cases(
    shared: Shared,
    templates: TemplateStore,
    access: AccessLogPort,
    generator: Any = None,
    outfit_cases: Outfits | None = None,
    consent: ConsentPort | None = None,
) -> RenderUseCases:
    """Every use case over the `shared` ports; `generator` is the AI image provider (None: off), used only for
    people whose consent `consent` confirms at the time of the call; `outfit_cases` the garment catalog and pose
    model (None: no outfits)."""
    sheets = Sheets(shared)
    outfit_cases = outfit_cases or Outfits(InMemoryGarmentStore(), None)
    template_cases = Templates(shared, templates)
    restyler = Restyler(generator, consent)
    return RenderUseCases(
        shared=shared,
        id_photos=IdPhotos(shared, sheets, outfit_cases, restyler),
        checks=IdPhotoChecks(shared),
        sheets=sheets,
        portraits=Portraits(shared, template_cases, restyler),
        hairstyles=Hairstyles(shared, restyler),
        templates=template_cases,
        results=Results(shared.results, access),
        outfits=outfit_cases,
    )
