"""Tag tables in the Python client (a mixin of :class:`cmclient.Client`)::

cm.create_tag_table("psf-wonky", repo="demo", key_dimensions=["exposure"], polarity="reject",
                    purpose="wonky for PSF work",
                    columns=[{"name": "seeing", "type": "float", "unit": "arcsec", "required": True}])
cm.upsert_tag_rows("psf-wonky", [{"obs_id": "DC_O_20251121_000150", "seeing": 1.9}], reason="night log")
cm.upload_tag_rows("psf-wonky", "night.csv", reason="night log")   # strict unless drop_invalid=True
text = cm.download_tag_table("psf-wonky", format="csv")
cm.share_tag_table("psf-wonky", group="psf-team", permission="change")
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def _api_error(*args: Any, **kwargs: Any) -> Exception:
    from .client import ApiError  # client.py imports this module

    return ApiError(*args, **kwargs)


class TagTablesMixin:
    """Tag-table methods; they use the HTTP plumbing of :class:`cmclient.Client`."""

    _json: Any
    _request: Any
    _paginated: Any
    _share: Any

    def tag_tables(
        self, repo: str | None = None, polarity: str | None = None, owner: str | None = None, q: str | None = None
    ) -> list[dict[str, Any]]:
        """Every tag table you may see (filters: repo label, polarity, owner's username, text)."""
        params = {k: v for k, v in {"repo": repo, "polarity": polarity, "owner": owner, "q": q}.items() if v}
        return self._paginated("tag-tables/", {"page_size": 200, **params})

    def resolve_tag_table(self, name_or_id: str | int, repo: str | None = None) -> int:
        """The id of a tag table given its name (and repo, if the name is used in several) or its id."""
        if isinstance(name_or_id, int):
            return name_or_id
        text = str(name_or_id).strip()
        params: dict[str, Any] = {"name": text, **({"repo": repo} if repo else {})}
        rows = self._json("GET", "tag-tables/", params=params)["results"]
        if len(rows) == 1:
            return int(rows[0]["id"])
        if len(rows) > 1:
            repos = ", ".join(sorted(str(r["repo"]) for r in rows))
            raise _api_error(f"several tag tables are named {text!r} (in {repos}): say which repo", status=400)
        if text.isdigit():
            return int(text)
        raise _api_error(f"no tag table named {text!r} (or you may not see it)", status=404)

    def tag_table(self, name_or_id: str | int, repo: str | None = None) -> dict[str, Any]:
        """One tag table with its columns."""
        return self._json("GET", f"tag-tables/{self.resolve_tag_table(name_or_id, repo)}/")

    def create_tag_table(
        self,
        name: str,
        *,
        repo: str,
        key_dimensions: Sequence[str],
        columns: Sequence[Mapping[str, Any]] = (),
        polarity: str = "neutral",
        purpose: str = "",
        description: str = "",
        public: bool = False,
        share_with: Sequence[Mapping[str, str]] = (),
    ) -> dict[str, Any]:
        """A new tag table (staff only). Columns: ``{"name", "type", "enum_values", "unit", "description",
        "required"}``; types int, float, string, bool, enum, datetime."""
        body = {
            "name": name,
            "repo": repo,
            "key_dimensions": list(key_dimensions),
            "columns": [dict(c) for c in columns],
            "polarity": polarity,
            "purpose": purpose,
            "description": description,
            "visibility": "public" if public else "private",
            "share_with": [dict(s) for s in share_with],
        }
        return self._json("POST", "tag-tables/", json_body=body)

    def tag_rows(self, name_or_id: str | int, repo: str | None = None, q: str | None = None) -> list[dict[str, Any]]:
        """Every row: ``key``, ``data_id``, ``values`` by column name, ``updated``, ``updated_by``."""
        params = {"page_size": 500, **({"q": q} if q else {})}
        return self._paginated(f"tag-tables/{self.resolve_tag_table(name_or_id, repo)}/rows/", params)

    def upsert_tag_rows(
        self,
        name_or_id: str | int,
        rows: Sequence[Mapping[str, Any]],
        *,
        reason: str = "",
        drop_invalid: bool = False,
        repo: str | None = None,
    ) -> dict[str, Any]:
        """Add or change rows (data ID keys, or alternate keys, and values by column name)."""
        body = {"rows": [dict(r) for r in rows], "reason": reason, "drop_invalid": drop_invalid}
        return self._json("POST", f"tag-tables/{self.resolve_tag_table(name_or_id, repo)}/rows/", json_body=body)

    def add_tag_rows(
        self,
        name_or_id: str | int,
        rows: Sequence[Mapping[str, Any]],
        *,
        reason: str = "",
        update: bool = False,
        repo: str | None = None,
    ) -> dict[str, Any]:
        """Add rows. A data ID that already has a row is refused (ApiError, status 409, ``payload["existing"]``
        the stored rows) and nothing is stored, unless ``update`` (then its given values replace the stored)."""
        body = {"rows": [dict(r) for r in rows], "reason": reason, "on_existing": "update" if update else "refuse"}
        return self._json("POST", f"tag-tables/{self.resolve_tag_table(name_or_id, repo)}/rows/", json_body=body)

    def delete_tag_rows(
        self, name_or_id: str | int, keys: Sequence[str], *, reason: str, repo: str | None = None
    ) -> dict[str, Any]:
        body = {"keys": list(keys), "reason": reason}
        return self._json("DELETE", f"tag-tables/{self.resolve_tag_table(name_or_id, repo)}/rows/", json_body=body)

    def upload_tag_rows(
        self,
        name_or_id: str | int,
        path: str | Path,
        *,
        reason: str = "",
        drop_invalid: bool = False,
        format: str | None = None,
        repo: str | None = None,
    ) -> dict[str, Any]:
        """Upload a CSV or JSON file of rows. Strict: a bad row and nothing is stored (ApiError whose
        ``payload["errors"]`` name the line or index and the key or column), unless ``drop_invalid``."""
        file = Path(path)
        try:
            content = file.read_bytes()
        except OSError as exc:
            raise _api_error(f"cannot read {file}: {exc.strerror or exc}") from None
        fields = {"reason": reason, "drop_invalid": "true" if drop_invalid else "false", "format": format or ""}
        return self._json(
            "POST",
            f"tag-tables/{self.resolve_tag_table(name_or_id, repo)}/upload/",
            data=fields,
            files={"file": (file.name, content)},
        )

    def download_tag_table(self, name_or_id: str | int, format: str = "csv", repo: str | None = None) -> str:
        """The rows as CSV (data-ID columns, then one column per active table column) or JSON text."""
        response = self._request(
            "GET",
            f"tag-tables/{self.resolve_tag_table(name_or_id, repo)}/download/",
            params={"format": format},
            headers={"Accept": "*/*"},
        )
        response.encoding = "utf-8"
        return response.text

    def share_tag_table(
        self,
        name_or_id: str | int,
        *,
        user: str | None = None,
        group: str | None = None,
        permission: str = "view",
        grant: bool = True,
        repo: str | None = None,
    ) -> dict[str, Any]:
        """Let one ``user`` or ``group`` view (or ``permission="change"``) a table; ``grant=False`` takes it back."""
        table = self.resolve_tag_table(name_or_id, repo)
        return self._share("share_tag_table", f"tag-tables/{table}/share/", user, group, permission, grant)

    def tag_row_history(
        self, name_or_id: str | int, key: str | None = None, repo: str | None = None
    ) -> list[dict[str, Any]]:
        """Changes of every row (or of the row ``key``), newest first."""
        params = {"page_size": 500, **({"key": key} if key else {})}
        return self._paginated(f"tag-tables/{self.resolve_tag_table(name_or_id, repo)}/history/", params)

    def add_tag_column(self, name_or_id: str | int, column: Mapping[str, Any], repo: str | None = None) -> dict:
        return self._json(
            "POST", f"tag-tables/{self.resolve_tag_table(name_or_id, repo)}/columns/", json_body=dict(column)
        )

    def change_tag_column(
        self, name_or_id: str | int, column: str, repo: str | None = None, **changes: Any
    ) -> dict[str, Any]:
        """Rename (``name=``), change ``unit``/``description``/``required``, or ``retired=True/False``."""
        return self._json(
            "PATCH",
            f"tag-tables/{self.resolve_tag_table(name_or_id, repo)}/columns/{column}/",
            data=json.dumps(changes).encode(),
            headers={"Content-Type": "application/json"},
        )
