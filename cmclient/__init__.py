"""Python client for the campaign manager REST API (``from cmclient import Client``)."""

from .client import ApiError, Client

__all__ = ["ApiError", "Client"]
__version__ = "0.1.0"
