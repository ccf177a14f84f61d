"""Metric ingest: reading the formats (``formats``), placing values (``placement``), storing them (``store``).
The service that ties them together is ``metrics.services.metric_values_ingest``."""
