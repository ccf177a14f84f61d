"""Client methods for exposure flags and the bad-data register (mixed into ``Client``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class FlagsMixin:
    """Exposure flags (``/api/v1/flags/``, filters as in Rubin's exposure log) and bad data (``/api/v1/bad-data/``)."""

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:  # provided by Client
        raise NotImplementedError

    def _paginated(self, path: str, params: Any = None, limit: int | None = None) -> list[dict[str, Any]]:
        raise NotImplementedError

    # --- flags ---

    def flags(self, limit: int | None = None, **filters: Any) -> list[dict[str, Any]]:
        """Flag messages, newest first unless ``order_by`` says otherwise. Filters are the exposure log's:
        ``instruments``, ``obs_id``, ``min_day_obs``, ``max_day_obs`` (exclusive), ``exposure_flags``, ``tags``,
        ``user_ids``, ``message_text``, ``is_valid`` (default valid only; ``any`` for all), ``is_human``, ``repo``,
        ``exposure``, ``order_by``. List values may be Python lists."""
        params: dict[str, Any] = {"limit": 500 if limit is None else max(1, min(limit, 500))}
        params.update({k: v for k, v in filters.items() if v is not None and v != "" and v != []})
        return self._paginated("flags/", params, limit=limit)

    def flag(self, flag_id: str) -> dict[str, Any]:
        return self._json("GET", f"flags/{flag_id}/")

    def flag_history(self, flag_id: str) -> list[dict[str, Any]]:
        return self._json("GET", f"flags/{flag_id}/history/")

    def add_flag(self, repo: str, message_text: str, **fields: Any) -> dict[str, Any]:
        """A flag on one exposure, named by ``exposure`` (id), ``obs_id``, or ``day_obs`` and ``seq_num``."""
        body = {"repo": repo, "message_text": message_text, "user_agent": "cm"}
        body.update({k: v for k, v in fields.items() if v is not None})
        return self._json("POST", "flags/", json_body=body)

    def edit_flag(self, flag_id: str, **changes: Any) -> dict[str, Any]:
        """A new version of the flag (the old one stays, not valid); answers the new message."""
        body = {k: v for k, v in changes.items() if v is not None}
        body.setdefault("user_agent", "cm")
        return self._json("PATCH", f"flags/{flag_id}/", json_body=body)

    def invalidate_flag(self, flag_id: str) -> dict[str, Any]:
        return self._json("DELETE", f"flags/{flag_id}/")

    def import_flags(self, repo: str, path: str | Path) -> dict[str, Any]:
        """Import a JSON export of exposure-log messages; answers the counts."""
        with open(path, "rb") as fh:
            return self._json("POST", "flags/import/", data={"repo": repo}, files={"file": (Path(path).name, fh)})

    # --- bad data ---

    def bad_data(self, limit: int | None = None, **filters: Any) -> list[dict[str, Any]]:
        """Bad-data records; filters ``repo``, ``status`` (list), ``source``, ``exposure``, ``q``."""
        params: dict[str, Any] = {"page_size": 500}
        params.update({k: v for k, v in filters.items() if v is not None and v != "" and v != []})
        return self._paginated("bad-data/", params, limit=limit)

    def add_bad_data(self, repo: str, summary: str, **fields: Any) -> dict[str, Any]:
        body = {"repo": repo, "summary": summary}
        body.update({k: v for k, v in fields.items() if v is not None})
        return self._json("POST", "bad-data/", json_body=body)

    def set_bad_data_status(
        self, record_id: int, status: str, explanation: str | None = None, comment: str = ""
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"status": status, "comment": comment}
        if explanation is not None:
            body["explanation"] = explanation
        return self._json("POST", f"bad-data/{record_id}/status/", json_body=body)


def parse_data_id(text: str) -> dict[str, Any]:
    """``key=value,key=value`` (or a JSON object) as a data ID; integers become numbers."""
    text = text.strip()
    if text.startswith("{"):
        return json.loads(text)
    out: dict[str, Any] = {}
    for part in [p.strip() for p in text.split(",") if p.strip()]:
        if "=" not in part:
            raise ValueError(f"write key=value pairs separated by commas; {part!r} has no '='")
        key, value = (s.strip() for s in part.split("=", 1))
        out[key] = int(value) if value.lstrip("-").isdigit() else value
    return out
