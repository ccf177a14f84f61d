"""Metric values arrive with the metrics issue; the app exists so migrations and URLs have a home."""
