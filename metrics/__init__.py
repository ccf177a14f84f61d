"""QA metrics tied to exposures and campaigns, and their dashboards (filled in by the metrics issue)."""
