"""Error kinds are transport-free; the interceptor is the one place that maps them to gRPC status codes."""

from __future__ import annotations

import grpc

from likeness_platform import errors
from likeness_platform.interceptors import GRPC_STATUS, grpc_status


def test_every_kind_has_a_status_and_no_two_kinds_share_one() -> None:
    assert set(GRPC_STATUS) == set(errors.ErrorKind)
    assert len(set(GRPC_STATUS.values())) == len(errors.ErrorKind)


def test_domain_errors_map_by_kind_and_keep_their_code() -> None:
    assert grpc_status(errors.InvalidArgument("bad")) is grpc.StatusCode.INVALID_ARGUMENT
    assert grpc_status(errors.NotFound("gone")) is grpc.StatusCode.NOT_FOUND
    assert grpc_status(errors.ResourceExhausted("slow down")) is grpc.StatusCode.RESOURCE_EXHAUSTED
    erasing = errors.SubjectErasing("erasing")
    assert (erasing.kind, erasing.code, grpc_status(erasing)) == (
        errors.ErrorKind.FAILED_PRECONDITION,
        "SUBJECT_ERASING",
        grpc.StatusCode.FAILED_PRECONDITION,
    )


def test_anything_else_is_internal() -> None:
    assert grpc_status(ValueError("boom")) is grpc.StatusCode.INTERNAL
    assert grpc_status(errors.DomainError("unclassified")) is grpc.StatusCode.INTERNAL


def test_the_errors_module_does_not_import_grpc() -> None:
    assert "grpc" not in vars(errors)
