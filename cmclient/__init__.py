"""Python client for the campaign manager REST API (``from cmclient import Client``)."""
