"""Read-only catalogs: ID-photo specs, countries, papers, outfits, templates, hairstyles."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from likeness.render.v1 import render_pb2
from likeness_gateway.adapters.render_client import medium_name, spec_format_name
from likeness_gateway.deps import GatewayDep, current_device
from likeness_gateway.routes.models import from_message

# Every catalog route needs a device token.
router = APIRouter(tags=["catalog"], dependencies=[Depends(current_device)])


class Range(BaseModel):
    min: float | None
    max: float | None


def _range(r: render_pb2.Range, present: bool) -> Range | None:
    if not present:
        return None
    return Range(min=r.min or None, max=r.max or None)


class SpecOut(BaseModel):
    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "id": "us-passport",
                    "country_code": "US",
                    "country": "United States",
                    "document": "Passport",
                    "width_mm": 51,
                    "height_mm": 51,
                    "dpi": 300,
                    "width_px": None,
                    "height_px": None,
                    "output_width_px": 600,
                    "output_height_px": 600,
                    "head_mm": {"min": 25, "max": 35},
                    "eye_from_bottom_mm": {"min": 28, "max": 35},
                    "top_margin_mm": None,
                    "backgrounds": ["#ffffff"],
                    "file_kb": None,
                    "format": "JPEG",
                    "medium": "print",
                    "sources": ["https://travel.state.gov/"],
                    "notes": "",
                }
            ]
        }
    }

    id: str
    country_code: str
    country: str
    document: str
    width_mm: float
    height_mm: float
    dpi: int | None
    width_px: int | None
    height_px: int | None
    output_width_px: int
    output_height_px: int
    head_mm: Range | None
    eye_from_bottom_mm: Range | None
    top_margin_mm: Range | None
    backgrounds: list[str]
    file_kb: Range | None
    format: str
    medium: str
    sources: list[str]
    notes: str


def spec_out(s: render_pb2.Spec) -> SpecOut:
    return from_message(
        SpecOut,
        s,
        dpi=s.dpi or None,
        width_px=s.width_px or None,
        height_px=s.height_px or None,
        head_mm=_range(s.head_mm, s.HasField("head_mm")),
        eye_from_bottom_mm=_range(s.eye_from_bottom_mm, s.HasField("eye_from_bottom_mm")),
        top_margin_mm=_range(s.top_margin_mm, s.HasField("top_margin_mm")),
        backgrounds=list(s.backgrounds),
        file_kb=_range(s.file_kb, s.HasField("file_kb")),
        format=spec_format_name(s.format),
        medium=medium_name(s.medium),
        sources=list(s.sources),
    )


class SpecList(BaseModel):
    specs: list[SpecOut]


class Country(BaseModel):
    code: str
    name: str
    count: int


class CountryList(BaseModel):
    countries: list[Country]


@router.get("/v1/specs", response_model=SpecList, summary="Search ID-photo specs by country, document or free text")
async def list_specs(
    gw: GatewayDep,
    country: Annotated[str, Query(max_length=8, description="ISO 3166-1 alpha-2, 'EU' or 'intl'")] = "",
    document: Annotated[str, Query(max_length=64)] = "",
    q: Annotated[str, Query(max_length=100, description="free text over id, country, document and notes")] = "",
) -> SpecList:
    return SpecList(specs=[spec_out(s) for s in await gw.render.specs(country, document, q)])


@router.get("/v1/specs/countries", response_model=CountryList, summary="Countries with specs, for pickers")
async def list_countries(gw: GatewayDep) -> CountryList:
    found: dict[str, Country] = {}
    for s in await gw.render.specs():
        entry = found.setdefault(s.country_code, Country(code=s.country_code, name=s.country, count=0))
        entry.count += 1
    return CountryList(countries=sorted(found.values(), key=lambda c: c.name))


@router.get("/v1/specs/{spec_id}", response_model=SpecOut, summary="One ID-photo spec")
async def get_spec(spec_id: str, gw: GatewayDep) -> SpecOut:
    return spec_out(await gw.render.spec(spec_id))


class PaperOut(BaseModel):
    id: str
    name: str
    width_mm: float
    height_mm: float


class PaperList(BaseModel):
    papers: list[PaperOut]


@router.get("/v1/papers", response_model=PaperList, summary="Paper sizes for print sheets")
async def list_papers(gw: GatewayDep) -> PaperList:
    return PaperList(papers=[from_message(PaperOut, p) for p in await gw.render.papers()])


class Named(BaseModel):
    id: str
    name: str


class OutfitList(BaseModel):
    outfits: list[Named]


@router.get("/v1/outfits", response_model=OutfitList, summary="Outfit materials for ID photos")
async def list_outfits(gw: GatewayDep) -> OutfitList:
    return OutfitList(outfits=[Named(id=o.outfit_id, name=o.name) for o in await gw.render.outfits()])


class TemplateOut(BaseModel):
    id: str
    name: str
    style: str
    face_count: int
    width: int
    height: int


class TemplateList(BaseModel):
    templates: list[TemplateOut]


@router.get("/v1/templates", response_model=TemplateList, summary="Template materials for portraits")
async def list_templates(gw: GatewayDep) -> TemplateList:
    return TemplateList(
        templates=[
            TemplateOut(id=t.template_id, name=t.name, style=t.style, face_count=t.face_count, width=t.width, height=t.height)
            for t in await gw.render.templates()
        ]
    )


class HairstyleList(BaseModel):
    hairstyles: list[Named]


@router.get("/v1/hairstyles", response_model=HairstyleList, summary="Hair materials")
async def list_hairstyles(gw: GatewayDep) -> HairstyleList:
    return HairstyleList(hairstyles=[Named(id=h.hairstyle_id, name=h.name) for h in await gw.render.hairstyles()])
