"""The routes' shared model helpers: request bodies refuse unknown fields, responses copy protobuf fields by name."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from likeness.render.v1 import render_pb2
from likeness_gateway.routes.catalog import PaperOut
from likeness_gateway.routes.idphotos import CheckIn, IdPhotoIn, LayoutIn, _layout, report_out
from likeness_gateway.routes.models import EXAMPLE_UPLOAD_ID, from_message, request_config


def test_request_bodies_refuse_unknown_fields_and_show_their_example() -> None:
    with pytest.raises(ValidationError):
        CheckIn.model_validate({"upload_id": "u1", "spec_id": "s1", "surprise": 1})
    assert CheckIn.model_json_schema()["examples"] == [{"upload_id": EXAMPLE_UPLOAD_ID, "spec_id": "schengen-visa"}]


def test_request_config_is_a_plain_pydantic_config() -> None:
    class Body(BaseModel):
        model_config = request_config(a=1)
        a: int

    assert Body(a=2).a == 2
    assert Body.model_json_schema()["examples"] == [{"a": 1}]


def test_from_message_copies_fields_by_name_and_takes_overrides() -> None:
    paper = render_pb2.Paper(id="4r", name="4R", width_mm=102, height_mm=152)
    assert from_message(PaperOut, paper) == PaperOut(id="4r", name="4R", width_mm=102, height_mm=152)
    assert from_message(PaperOut, paper, name="other").name == "other"


def test_report_out_keeps_every_measurement_and_issue() -> None:
    report = render_pb2.ComplianceReport(passed=False, spec_id="us-passport")
    report.measurements.head_height_mm = 30.5
    report.measurements.roll = -2.0
    report.issues.append(
        render_pb2.ComplianceIssue(code="HEAD_SIZE", message="too small", measured=20, allowed=render_pb2.Range(min=25, max=35))
    )
    out = report_out(report)
    assert (out.passed, out.spec_id) == (False, "us-passport")
    assert (out.measurements.head_height_mm, out.measurements.roll, out.measurements.yaw) == (30.5, -2.0, 0.0)
    assert [(i.code, i.measured, i.allowed.min, i.allowed.max) for i in out.issues] == [("HEAD_SIZE", 20.0, 25.0, 35.0)]


def test_layout_without_spacing_lets_render_choose_and_pdf_reaches_the_proto() -> None:
    auto = _layout(LayoutIn(paper_id="4r", format="pdf"))
    assert auto is not None
    assert not auto.exact_spacing and auto.format == render_pb2.IMAGE_FORMAT_PDF
    assert (auto.margin_mm, auto.gap_mm) == (3.0, 2.0)  # the preferred spacing render starts from
    exact = _layout(LayoutIn(paper_id="4r", margin_mm=0))
    assert exact is not None
    assert exact.exact_spacing and (exact.margin_mm, exact.gap_mm) == (0.0, 2.0)
    assert exact.format == render_pb2.IMAGE_FORMAT_JPEG
    with pytest.raises(ValidationError):
        LayoutIn(paper_id="4r", format="tiff")  # type: ignore[arg-type]
    schema = IdPhotoIn.model_json_schema()
    assert schema["$defs"]["LayoutIn"]["properties"]["format"]["enum"] == ["jpeg", "png", "pdf"]


def test_id_photo_body_takes_an_outfit_ai_prompt_within_bounds() -> None:
    body = IdPhotoIn.model_validate({"upload_id": "u1", "spec_id": "us-passport", "outfit": "suit", "outfit_ai_prompt": "navy linen"})
    assert body.outfit_ai_prompt == "navy linen"
    assert IdPhotoIn.model_validate({"upload_id": "u1", "spec_id": "us-passport"}).outfit_ai_prompt is None
    for bad in ("x" * 501, "line\nbreak"):
        with pytest.raises(ValidationError):
            IdPhotoIn.model_validate({"upload_id": "u1", "spec_id": "us-passport", "outfit": "suit", "outfit_ai_prompt": bad})
    assert "torso crop" in IdPhotoIn.model_json_schema()["properties"]["outfit_ai_prompt"]["description"]  # in the OpenAPI
