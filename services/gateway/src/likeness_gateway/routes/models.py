"""What the routes' request and response models share: identifier fields, request configs, proto -> model copying."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from likeness_gateway.domain.text import IDENTIFIER

# Ids of specs, uploads, templates, papers, outfits, hairstyles as request fields.
Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=IDENTIFIER)]
# The upload id the OpenAPI examples use.
EXAMPLE_UPLOAD_ID = "4f0c2a4e-9f1e-4b7e-8d7a-2f1b5c9e0a11"
# Answers that are an image file.
IMAGE_RESPONSES: dict[int | str, dict[str, Any]] = {200: {"content": {"image/jpeg": {}, "image/png": {}}}}

ModelT = TypeVar("ModelT", bound=BaseModel)


def request_config(**example: Any) -> ConfigDict:
    """The config of a request body: unknown fields are refused, `example` is shown in the OpenAPI docs."""
    return ConfigDict(extra="forbid", json_schema_extra={"examples": [example]})


def from_message(model: type[ModelT], message: Any, **values: Any) -> ModelT:
    """A response model with each field read from the same-named field of a protobuf message.

    `values` set the fields that need converting (enums, nested messages, repeated fields, zero meaning none).
    """
    copied = {name: getattr(message, name) for name in model.model_fields if name not in values}
    return model(**copied, **values)
