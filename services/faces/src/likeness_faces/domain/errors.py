"""The faces service's domain exceptions; the gRPC layer maps each to one status code.

Messages never contain image data or face measurements (privacy invariant 1): they
describe what is wrong and how to fix it.
"""

from __future__ import annotations


class FacesError(Exception):
    """Base class for every error the faces service raises on purpose."""


class ModelFilesError(FacesError):
    """A model file is missing or corrupt; the process must not start without it."""


class InvalidImageError(FacesError):
    """The caller passed something that is not an RGB uint8 image."""


class AnalyzerClosedError(FacesError):
    """The analyzer was closed (the service is shutting down) before the request ran."""
