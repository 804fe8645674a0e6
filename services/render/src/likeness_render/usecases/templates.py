"""Portrait templates: registering one, and the demo catalog built in the background at start-up."""

from __future__ import annotations

import asyncio

import numpy as np

from likeness_imaging.codec import encode_jpeg
from likeness_platform.errors import FailedPrecondition, NotFound, Unavailable
from likeness_platform.logging import get_logger
from likeness_render.domain import matte, templates
from likeness_render.domain.face import FaceGeometry
from likeness_render.domain.templates import Template, TemplateStore
from likeness_render.usecases.ports import RGB
from likeness_render.usecases.shared import Shared, geometry

# Template images go to faces at this JPEG quality: their meshes are kept for every portrait.
TEMPLATE_JPEG_QUALITY = 95
# Demo templates need the faces service. At start-up they are built in the background, retried
# while faces is unavailable (it may start after render) for at most this long; after that
# the next request that needs templates starts a new attempt.
DEMO_BUILD_DEADLINE_S = 120.0
DEMO_RETRY_FIRST_S = 0.5
DEMO_RETRY_MAX_S = 5.0
# How long a request that needs templates waits for the demo build before UNAVAILABLE.
DEMO_WAIT_S = 60.0

log = get_logger("likeness.render")


class Templates:
    def __init__(self, shared: Shared, store: TemplateStore) -> None:
        self.shared = shared
        self.store = store
        self._demo: asyncio.Task[None] | None = None

    async def template_faces(self, image: RGB) -> list[FaceGeometry]:
        """Every face of a template image with its mesh, from the faces service."""
        data = await self.shared.compute(encode_jpeg, image, TEMPLATE_JPEG_QUALITY)
        reply = await self.shared.faces.analyze(data)
        return [geometry(f, 1.0) for f in reply.faces]

    async def register_template(
        self, name: str, style: str, image: RGB, description: str = "", alpha: templates.FloatMask | None = None
    ) -> Template:
        """A template made from `image` (meshes by the faces service) and put in the catalog;
        templates.TemplateError when the image cannot be one. The material is kept at least
        templates.MIN_LONG_SIDE px long (upscaled once here); its matte is `alpha` when the
        operator gave one (a PNG's alpha channel), else cut out here with render's matting."""
        templates.check_template_image(name, image)
        if alpha is not None and alpha.shape != image.shape[:2]:
            raise templates.TemplateError(f"template matte is {alpha.shape}, the image {image.shape[:2]}")
        image, alpha = await self.shared.compute(templates.at_material_size, image, alpha)
        faces = await self.template_faces(image)
        if alpha is None and faces:
            alpha = await self.shared.compute(self._cut_out, image, faces)
        template = templates.register_template(name, style, image, faces, description=description, alpha=alpha)
        self.store.put(template)
        return template

    def _cut_out(self, image: RGB, faces: list[FaceGeometry]) -> templates.FloatMask:
        """Every face's person, cut out with the ID-photo matting; their mattes together."""
        coarse = self.shared.segment(image)
        alpha = np.zeros(image.shape[:2], np.float32)
        for face in faces:
            centre = ((face.box[0] + face.box[2]) / 2.0, (face.box[1] + face.box[3]) / 2.0)
            alpha = np.maximum(alpha, matte.cut_out(image, coarse, centre).alpha)
        return templates.clean_matte(alpha)

    async def build_demo_templates(self) -> list[Template]:
        """The demo catalog: looks made here from package-shipped photographs, meshes by the faces service."""
        plan = await self.shared.compute(templates.plan_demo, self.shared.segment)
        astronaut, hopper = await asyncio.gather(self.template_faces(plan.astronaut), self.template_faces(plan.hopper))
        if not astronaut or not hopper:
            raise templates.TemplateError("a demo source portrait shows no face to the faces service")
        looks = await self.shared.compute(templates.demo_looks, plan, astronaut[0], hopper[0])
        built = []
        for look in looks:
            faces = await self.template_faces(look.image)
            built.append(
                templates.register_template(look.name, look.style, look.image, faces, description=look.description, alpha=look.alpha)
            )
        return built

    def start_demo_templates(self, deadline_s: float = DEMO_BUILD_DEADLINE_S) -> None:
        """Builds the demo templates in the background (the server answers meanwhile; requests
        that need templates wait for them). Call from the running event loop."""
        if self._demo is None or _failed(self._demo):
            self._demo = asyncio.create_task(self._build_demo_until(deadline_s), name="render-demo-templates")

    async def _build_demo_until(self, deadline_s: float) -> None:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + deadline_s
        delay = DEMO_RETRY_FIRST_S
        while True:
            try:
                built = await self.build_demo_templates()
                break
            except Unavailable:
                if loop.time() + delay > give_up:
                    log.warning("demo_templates_unavailable", reason="the faces service did not answer in time")
                    raise
                log.info("demo_templates_waiting_for_faces", retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(2 * delay, DEMO_RETRY_MAX_S)
        registered = {t.id for t in self.store.list_templates()}
        for template in built:
            if template.id not in registered:  # an operator's template of the same id wins
                self.store.put(template)
        log.info("demo_templates_ready", templates=len(built))

    async def templates_ready(self) -> None:
        """Returns once the demo templates are in the catalog (at once when none were asked for);
        Unavailable when they are not ready in time (a failed build is started again)."""
        task = self._demo
        if task is None:
            return
        if _failed(task):
            self.start_demo_templates()
            task = self._demo
            assert task is not None
        try:
            await asyncio.wait_for(asyncio.shield(task), DEMO_WAIT_S)
        except (TimeoutError, Unavailable):
            raise Unavailable("the portrait templates are still being prepared; try again shortly") from None
        except templates.TemplateError as exc:
            raise FailedPrecondition(f"the demo templates cannot be built: {exc}", "TEMPLATES_UNAVAILABLE") from None

    async def list_templates(self) -> list[Template]:
        await self.templates_ready()
        return self.store.list_templates()

    async def get(self, template_id: str) -> Template:
        await self.templates_ready()
        try:
            return self.store.get(template_id)
        except Exception:
            raise NotFound(f"no template {template_id!r}; list them with GET /v1/templates", "TEMPLATE_NOT_FOUND") from None

    async def stop(self) -> None:
        """Stops a demo build still under way."""
        if self._demo is not None and not self._demo.done():
            self._demo.cancel()
            try:
                await self._demo
            except (asyncio.CancelledError, Exception):
                pass


def _failed(task: asyncio.Task[None]) -> bool:
    return task.done() and (task.cancelled() or task.exception() is not None)
