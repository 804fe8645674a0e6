"""Composition root of the render service."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

from likeness.render.v1 import render_pb2_grpc
from likeness_imaging.model_backend import ModelError
from likeness_platform.blobs import blob_store_for, subject_names_for
from likeness_platform.clients import open_channel
from likeness_platform.crypto import DataKeyCache
from likeness_platform.dataholder import add_dataholder, sweep_on_schedule
from likeness_platform.db import open_service_pool
from likeness_platform.logging import get_logger
from likeness_platform.privacy_port import PrivacyPort
from likeness_platform.server import Wiring, run_service
from likeness_platform.settings import SealedStoreSettings
from likeness_render.adapters.aigen import AiGenSettings, make_image_generator
from likeness_render.adapters.consent import ConsentCheck
from likeness_render.adapters.face_model import load_face_model
from likeness_render.adapters.matting_model import load_matting_model
from likeness_render.adapters.model_files import ModelFileCorrupt, ModelFileMissing
from likeness_render.adapters.onnx_image import InputRange
from likeness_render.adapters.outfits_repo import OutfitRepository
from likeness_render.adapters.pose import PoseEstimator
from likeness_render.adapters.results import ResultStore
from likeness_render.adapters.segmenter import SelfieSegmenter
from likeness_render.adapters.templates_repo import TemplateRepository
from likeness_render.adapters.upstreams import FacesClient, ImageSource
from likeness_render.adapters.usage import UsageCounter
from likeness_render.domain import hair
from likeness_render.domain.outfit_demo import demo_garments
from likeness_render.domain.outfits import InMemoryGarmentStore
from likeness_render.domain.spec_loading import load_catalog
from likeness_render.domain.templates import InMemoryTemplateStore
from likeness_render.grpc_api import RenderServicer, service_name
from likeness_render.holder import RenderHolder
from likeness_render.usecases import Outfits, RenderUseCases, Shared, build_use_cases

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
log = get_logger("likeness.render")


class RenderSettings(SealedStoreSettings):
    grpc_port: int = 50053
    # Seconds results are kept (at most 86400); 0 = memory-only mode, results returned inline.
    upload_ttl: int = 86400
    blob_dir: str = ".run/blobs/render"
    s3_prefix: str = "results"
    # Print resolution for specs that state none.
    default_dpi: int = 300
    # An ONNX portrait-matting model an operator mounts (adapters/matting_model.py): its file and
    # SHA-256 (render refuses to start when the file is missing or differs). Empty: the built-in
    # matting (selfie mask, closed-form solve of the edge band).
    matting_model_path: str = ""
    matting_model_sha256: str = ""
    # Long side the model sees when its input size is free, and how it wants pixels scaled.
    matting_model_side: int = 512
    matting_model_input_range: InputRange = "-1..1"
    # An ONNX face-restoration model an operator mounts (adapters/face_model.py), run on each
    # fused portrait face: file and SHA-256 (checked at start), square input side when free,
    # pixel range. Empty: the classical fusion alone.
    face_model_path: str = ""
    face_model_sha256: str = ""
    face_model_side: int = 512
    face_model_input_range: InputRange = "-1..1"
    # ID photos whose pixel and model work runs at once; the rest wait in order (0: two per usable core).
    max_concurrent_work: int = 0
    # Threads for that pixel work (0: one per usable core); the ID photos in flight take turns on them.
    cpu_workers: int = 0
    # Seconds usage counts are added up per cell before they are sent to privacy (0 to 60; adapters/usage.py).
    usage_flush_seconds: float = 1.0


@dataclass(kw_only=True)
class RenderWiring(Wiring[RenderSettings]):
    use_cases: RenderUseCases


async def build(settings: RenderSettings) -> RenderWiring:
    """The render service's one composition root: models, adapters, use cases, servicers."""
    if not 0 <= settings.upload_ttl <= 86400:
        raise SystemExit("LIKENESS_UPLOAD_TTL must be between 0 and 86400 seconds: results are kept at most 24 h")
    if not 0 <= settings.usage_flush_seconds <= 60:
        raise SystemExit("LIKENESS_USAGE_FLUSH_SECONDS must be between 0 and 60: counts held longer are lost with the process")
    names = subject_names_for(settings)
    try:
        segmenter = SelfieSegmenter()
        pose = await asyncio.to_thread(PoseEstimator)
    except (ModelFileMissing, ModelFileCorrupt) as exc:
        raise SystemExit(f"render cannot start: {exc}") from None
    # Operators' optional ONNX models: loaded (digest and signature checked) here, or render does not start.
    try:
        matting = load_matting_model(
            settings.matting_model_path, settings.matting_model_sha256, settings.matting_model_side, settings.matting_model_input_range
        )
        face_model = load_face_model(
            settings.face_model_path, settings.face_model_sha256, settings.face_model_side, settings.face_model_input_range
        )
    except (ModelError, ValueError) as exc:
        raise SystemExit(f"render cannot start: {exc}") from None
    for event, loaded in (("matting_model_loaded", matting), ("face_model_loaded", face_model)):
        if loaded is not None:
            log.info(event, sha256=loaded.model.sha256, providers=loaded.model.providers)
    catalog = load_catalog()
    pool = await open_service_pool(settings, "render", MIGRATIONS)
    privacy_channel = open_channel(settings.privacy_addr, "render", settings)
    ingestion_channel = open_channel(settings.ingestion_addr, "render", settings)
    faces_channel = open_channel(settings.faces_addr, "render", settings)
    privacy = PrivacyPort(privacy_channel, "render")
    blobs = blob_store_for(settings)
    results = ResultStore(
        pool, blobs, DataKeyCache(privacy.data_key, settings.data_key_ttl_seconds), timedelta(seconds=settings.upload_ttl), names
    )
    templates = InMemoryTemplateStore()
    template_repo = TemplateRepository(pool)
    for template in await template_repo.load_all():
        templates.put(template)
    garments = InMemoryGarmentStore(await asyncio.to_thread(demo_garments, segmenter.mask, pose.body))
    outfit_repo = OutfitRepository(pool)
    for garment in await outfit_repo.load_all():  # an operator's garment of a demo id wins
        garments.put(garment)
    for style in hair.hairstyles():
        hair.hair_material(style.id)  # drawn once per process, before the first request waits for it
    generator = make_image_generator(AiGenSettings())
    shared = Shared(
        catalog,
        ImageSource(ingestion_channel),
        FacesClient(faces_channel),
        segmenter.mask,
        results,
        memory_only=settings.upload_ttl == 0,
        default_dpi=settings.default_dpi,
        matting=matting,
        face_model=face_model,
        max_concurrent_work=settings.max_concurrent_work,
        cpu_workers=settings.cpu_workers,
    )
    use_cases = build_use_cases(
        shared, templates, privacy, generator, Outfits(garments, pose.body, outfit_repo), consent=ConsentCheck(privacy_channel)
    )
    # Demo templates need the faces service, which may not be up yet: built in the background.
    use_cases.templates.start_demo_templates()
    log.info("catalog_loaded", specs=len(catalog), templates=len(templates.list_templates()))

    usage = UsageCounter(privacy.record_usage, settings.usage_flush_seconds)

    def register(server: Any) -> list[str]:
        render_pb2_grpc.add_RenderServicer_to_server(RenderServicer(use_cases, template_repo, usage), server)
        return [service_name(), add_dataholder(server, RenderHolder(results))]

    async def close() -> None:
        await usage.drain()
        await use_cases.templates.stop()
        for channel in (privacy_channel, ingestion_channel, faces_channel):
            await channel.close()
        await pool.close()
        segmenter.close()
        pose.close()
        if generator is not None:
            await generator.aclose()
        shared.close()

    return RenderWiring(
        settings=settings,
        register=register,
        background=[lambda: sweep_on_schedule(RenderHolder(results), settings.self_sweep_seconds)],
        closers=[close],
        use_cases=use_cases,
    )


main = partial(run_service, "render", RenderSettings, build)


if __name__ == "__main__":
    asyncio.run(main())
