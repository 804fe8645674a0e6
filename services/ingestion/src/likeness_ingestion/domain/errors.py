"""Rejections of uploads, each with its own stable code."""

from __future__ import annotations

from likeness_platform.errors import DomainError, FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted


class Rejected(InvalidArgument):
    """An upload that fails validation; nothing of it is stored."""


class Empty(Rejected):
    default_code = "EMPTY"


class UnsupportedFormat(Rejected):
    default_code = "UNSUPPORTED_FORMAT"


class CorruptImage(Rejected):
    default_code = "CORRUPT_IMAGE"


class ContentTypeMismatch(Rejected):
    default_code = "CONTENT_TYPE_MISMATCH"


class TooLarge(ResourceExhausted):
    default_code = "TOO_LARGE"


class TooManyPixels(ResourceExhausted):
    default_code = "TOO_MANY_PIXELS"


class UploadNotFound(NotFound):
    default_code = "UPLOAD_NOT_FOUND"


class MemoryOnly(FailedPrecondition):
    default_code = "MEMORY_ONLY"


__all__ = [
    "ContentTypeMismatch",
    "CorruptImage",
    "DomainError",
    "Empty",
    "MemoryOnly",
    "Rejected",
    "TooLarge",
    "TooManyPixels",
    "UnsupportedFormat",
    "UploadNotFound",
]
