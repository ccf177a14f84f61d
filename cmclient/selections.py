"""Client methods of the selection builder (mixed into ``cmclient.Client``)."""

from __future__ import annotations

from typing import Any


class SelectionsMixin:
    """Count, freeze and re-run selections (recipes: see the server's tagging/selection/recipe.py)."""

    def selection_count(self, recipe: dict[str, Any], *, per_term: bool = True, preview: bool = True) -> dict[str, Any]:
        """How many data IDs ``recipe`` selects, how many are left after each term, and the first ones."""
        body = {"recipe": recipe, "per_term": per_term, "preview": preview}
        return self._json("POST", "selections/count/", json_body=body)  # type: ignore[attr-defined]

    def selection_freeze(
        self, recipe: dict[str, Any], *, name: str, reason: str, description: str = "", visibility: str | None = None
    ) -> dict[str, Any]:
        """Store the selection as a DataID set whose provenance records the recipe (staff only)."""
        body: dict[str, Any] = {"recipe": recipe, "name": name, "reason": reason, "description": description}
        if visibility:
            body["visibility"] = visibility
        return self._json("POST", "selections/freeze/", json_body=body)  # type: ignore[attr-defined]

    def selection_rerun(self, name_or_id: str | int, *, version: int | None = None, repo: str | None = None):
        """Run a frozen selection again and compare: counts and examples of data IDs added and removed."""
        set_id = self.resolve_dataids(name_or_id, repo)  # type: ignore[attr-defined]
        body: dict[str, Any] = {"dataid_set": set_id}
        if version is not None:
            body["version"] = version
        return self._json("POST", "selections/rerun/", json_body=body)  # type: ignore[attr-defined]
