"""Typed Python client of the Likeness gRPC mesh (see `likeness_client.client`) and the `likeness` CLI."""

from likeness_client.client import AsyncClient, Client
from likeness_client.config import ConfigError, Endpoints, Identity
from likeness_client.retry import LikenessError, RetryPolicy

__all__ = ["AsyncClient", "Client", "ConfigError", "Endpoints", "Identity", "LikenessError", "RetryPolicy"]
