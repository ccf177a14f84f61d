"""A small client for the campaign manager REST API (``/api/v1/``).

Everything returns plain data (dicts, lists, str). Every failure the caller
can expect (an HTTP error, an unreachable server, a missing token) raises
:class:`ApiError` with a one-line message a person can act on::

    from cmclient import Client, ApiError

    cm = Client()  # CM_URL / CM_TOKEN, else the file written by `cm login`
    for c in cm.campaigns(status="running"):
        print(c["name"], c["version"])
    current = cm.campaign("w48-minidrp")
    cm.update_campaign("w48-minidrp", version=current["version"], reason="New reason", comment="why")
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import requests

__all__ = ["ApiError", "Client", "config_path", "load_config", "save_config"]

API_PREFIX = "/api/v1/"
NO_TOKEN = "no token: run `cm login` or set CM_TOKEN"
NO_URL = "no server URL: run `cm login --url URL` or set CM_URL"


class ApiError(Exception):
    """A failed call: ``str(error)`` is one human line; ``status`` and ``payload`` keep the details.

    ``status`` is the HTTP status (``None`` when no answer came back) and
    ``payload`` the decoded JSON error body (or the response text, or ``None``).
    """

    def __init__(self, message: str, status: int | None = None, payload: Any = None):
        message = " ".join(str(message).split())  # always one line
        super().__init__(message)
        self.message = message
        self.status = status
        self.payload = payload


# --- configuration written by `cm login` ---------------------------------------------------------


def config_path() -> Path:
    """``$CM_CONFIG``, else ``~/.config/cm/config.json``."""
    configured = os.environ.get("CM_CONFIG")
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".config" / "cm" / "config.json"


def load_config(path: Path | None = None) -> dict[str, Any]:
    """The saved settings (``url``, ``token``), or ``{}`` when there is no file yet."""
    path = path or config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ApiError(f"cannot read config file {path}: {exc.strerror or exc}") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ApiError(f"config file {path} is not valid JSON ({exc}); run `cm login` again") from exc
    if not isinstance(data, dict):
        raise ApiError(f"config file {path} does not hold a JSON object; run `cm login` again")
    return data


def save_config(url: str, token: str, path: Path | None = None) -> Path:
    """Write ``url`` and ``token`` readable by the owner only (mode 0600, directory 0700)."""
    path = path or config_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        # An existing file keeps its mode through os.open: tighten it before the token goes in.
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"url": url, "token": token}, fh, indent=2)
            fh.write("\n")
    except OSError as exc:
        raise ApiError(f"cannot write config file {path}: {exc.strerror or exc}") from exc
    return path


# --- error messages ------------------------------------------------------------------------------


def _flatten_errors(value: Any, prefix: str = "") -> Iterator[str]:
    """DRF error bodies as "field: message" lines; nested paths are dotted (``steps[1].name``)."""
    if isinstance(value, Mapping):
        for key, inner in value.items():
            key = str(key)
            if key in ("non_field_errors", "detail", "__all__"):
                yield from _flatten_errors(inner, prefix)
            else:
                yield from _flatten_errors(inner, f"{prefix}.{key}" if prefix else key)
    elif isinstance(value, list | tuple):
        if all(isinstance(item, str | int | float) for item in value):
            for item in value:
                yield f"{prefix}: {item}" if prefix else str(item)
        else:
            for i, item in enumerate(value):
                if item in ({}, [], None):
                    continue
                yield from _flatten_errors(item, f"{prefix}[{i}]")
    elif value not in (None, ""):
        yield f"{prefix}: {value}" if prefix else str(value)


def error_message(payload: Any) -> str:
    """One line from a JSON error body: ``{"detail": "..."}`` or ``{"field": ["msg", ...]}``."""
    if isinstance(payload, Mapping) and isinstance(payload.get("detail"), str):
        return payload["detail"]
    parts = list(_flatten_errors(payload))
    return "; ".join(parts)


def _connection_reason(exc: Exception) -> str:
    """The useful end of a requests/urllib3 connection error ("Connection refused", "timed out")."""
    text = str(exc)
    match = re.search(r"\[Errno -?\d+\] ([^'\"()]+)", text)
    if match:
        return match.group(1).strip().rstrip(".")
    if isinstance(exc, requests.Timeout) or "timed out" in text.lower():
        return "timed out"
    if "NameResolution" in text:
        return "host name not found"
    return text[:200] or type(exc).__name__


# --- the client ----------------------------------------------------------------------------------


class Client:
    """The campaign manager API at ``url``, authenticated with an API ``token``.

    ``url`` and ``token`` default to ``$CM_URL`` and ``$CM_TOKEN``, else to the
    file written by ``cm login`` (``$CM_CONFIG`` or ``~/.config/cm/config.json``).
    Campaigns are named by name (``"w48-minidrp"``) or id (``12``).
    """

    def __init__(
        self, url: str | None = None, token: str | None = None, *, timeout: float = 30.0, use_config: bool = True
    ):
        config: dict[str, Any] = {}
        if (use_config and (not url and not os.environ.get("CM_URL"))) or (
            not token and not os.environ.get("CM_TOKEN")
        ):
            config = load_config()
        url = url or os.environ.get("CM_URL") or config.get("url") or ""
        if not url:
            raise ApiError(NO_URL)
        self.url = url.rstrip("/")
        saved_token = config.get("token") if str(config.get("url", "")).rstrip("/") == self.url else None
        # A saved token is only ever sent to the server it was issued by.
        self.token: str | None = token or os.environ.get("CM_TOKEN") or saved_token or None
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "cmclient/0.1"

    def __repr__(self) -> str:
        return f"Client(url={self.url!r})"

    # --- HTTP plumbing ---

    def _full_url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path  # a "next" link from a paginated answer
        return self.url + API_PREFIX + path.lstrip("/")

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        auth: bool = True,
    ) -> requests.Response:
        all_headers = {"Accept": "application/json", **(headers or {})}
        if auth:
            if not self.token:
                raise ApiError(NO_TOKEN)
            all_headers["Authorization"] = f"Token {self.token}"
        url = self._full_url(path)
        try:
            response = self.session.request(
                method,
                url,
                params=params,
                json=json_body,
                data=data,
                headers=all_headers,
                timeout=self.timeout,
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise ApiError(f"cannot reach {self.url}: {_connection_reason(exc)}") from exc
        except requests.RequestException as exc:
            raise ApiError(f"cannot reach {self.url}: {exc}") from exc
        if response.status_code >= 400:
            raise self._error(response)
        return response

    def _error(self, response: requests.Response) -> ApiError:
        status = response.status_code
        payload: Any
        try:
            payload = response.json()
        except ValueError:
            payload = response.text
            message = f"HTTP {status} {response.reason or ''} from {response.url}".strip()
        else:
            message = error_message(payload) or f"HTTP {status} {response.reason or ''}".strip()
        return ApiError(message, status=status, payload=payload)

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise ApiError(
                f"unexpected answer from {self.url} (not JSON): is this the campaign manager?",
                status=response.status_code,
                payload=response.text[:1000],
            ) from None

    def _paginated(self, path: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        page = self._json("GET", path, params=params)
        while True:
            if not isinstance(page, dict) or "results" not in page:
                raise ApiError(f"unexpected answer from {self.url}: expected a page of results")
            results.extend(page["results"])
            if not page.get("next"):
                return results
            page = self._json("GET", page["next"])

    # --- names and ids ---

    def _find(self, name: str) -> dict[str, Any] | None:
        rows = self._json("GET", "campaigns/", params={"name": name, "archived": "all"})["results"]
        return rows[0] if rows else None

    def resolve(self, name_or_id: str | int) -> int:
        """The id of a campaign given its name (or its id)."""
        if isinstance(name_or_id, int):
            return name_or_id
        text = str(name_or_id).strip()
        row = self._find(text)
        if row is not None:
            return int(row["id"])
        if text.isdigit():
            return int(text)
        raise ApiError(f"no campaign named {text!r} (or you may not see it)", status=404)

    # --- authentication ---

    def obtain_token(self, username: str, password: str) -> str:
        """Exchange a username and password for an API token (does not change this client)."""
        answer = self._json("POST", "auth/token/", data={"username": username, "password": password}, auth=False)
        if not isinstance(answer, dict) or not answer.get("token"):
            raise ApiError(f"unexpected answer from {self.url}: no token in the reply")
        return str(answer["token"])

    # --- campaigns ---

    def campaigns(self, **filters: Any) -> list[dict[str, Any]]:
        """Every campaign you may see that matches ``filters`` (all pages).

        Filters are the API's: ``q``, ``name``, ``campaign_type``, ``status``
        (a value or a list), ``owner``, ``butler_repo``, ``created_after``,
        ``created_before``, ``archived`` (``"no"``, ``"yes"``, ``"all"``; or
        ``True`` for ``"yes"``), ``sort``, ``page_size``.
        """
        params: dict[str, Any] = {"page_size": 200}
        for key, value in filters.items():
            if value is None:
                continue
            if isinstance(value, bool):
                value = "yes" if value else "no"
            params[key] = value
        return self._paginated("campaigns/", params)

    def campaign(self, name_or_id: str | int) -> dict[str, Any]:
        """The full definition of one campaign, with its steps, progress and ``version``."""
        return self._json("GET", f"campaigns/{self.resolve(name_or_id)}/")

    def create_campaign(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """Create a campaign from a definition dict (optionally with ``comment``)."""
        return self._json("POST", "campaigns/", json_body=dict(data))

    def create_campaign_from_yaml(self, text: str | bytes) -> dict[str, Any]:
        """Create a campaign from YAML text (the form ``export_campaign`` writes)."""
        body = text.encode("utf-8") if isinstance(text, str) else text
        return self._json(
            "POST",
            "campaigns/import/",
            data=body,
            headers={"Content-Type": "application/yaml; charset=utf-8"},
        )

    def update_campaign(
        self, name_or_id: str | int, version: int | None = None, comment: str = "", **fields: Any
    ) -> dict[str, Any]:
        """Change ``fields`` of a campaign, based on ``version`` (the one you read).

        ``version`` is required: if someone changed the campaign since, the
        server refuses the edit (HTTP 409) and says who changed what.
        """
        if version is None:
            raise ValueError(
                "update_campaign() needs version=: the version your edit is based on, e.g. campaign(name)['version']"
            )
        body = {**fields, "version": int(version)}
        if comment:
            body["comment"] = comment
        return self._json("PATCH", f"campaigns/{self.resolve(name_or_id)}/", json_body=body)

    def clone_campaign(self, name_or_id: str | int, new_name: str, comment: str = "") -> dict[str, Any]:
        """A new draft copy of a campaign (definition and steps), owned by you."""
        return self._json(
            "POST", f"campaigns/{self.resolve(name_or_id)}/clone/", json_body={"name": new_name, "comment": comment}
        )

    def export_campaign(self, name_or_id: str | int) -> str:
        """The campaign definition as YAML text (re-importable with ``create_campaign_from_yaml``)."""
        response = self._request(
            "GET",
            f"campaigns/{self.resolve(name_or_id)}/export/",
            headers={"Accept": "application/yaml, application/json;q=0.9"},
        )
        response.encoding = "utf-8"
        return response.text

    def archive_campaign(self, name_or_id: str | int, comment: str = "") -> dict[str, Any]:
        """Archive a campaign (nothing is deleted); returns it as it is now."""
        pk = self.resolve(name_or_id)
        self._json("DELETE", f"campaigns/{pk}/", params={"comment": comment} if comment else None)
        return self._json("GET", f"campaigns/{pk}/")

    def restore_campaign(self, name_or_id: str | int) -> dict[str, Any]:
        """Bring an archived campaign back; returns it as it is now."""
        pk = self.resolve(name_or_id)
        self._json("POST", f"campaigns/{pk}/restore/")
        return self._json("GET", f"campaigns/{pk}/")

    def set_status(
        self, name_or_id: str | int, status: str, comment: str = "", version: int | None = None
    ) -> dict[str, Any]:
        """Move a campaign to ``status`` (draft, ready, running, ...), if the transition is allowed."""
        body: dict[str, Any] = {"status": status, "comment": comment}
        if version is not None:
            body["version"] = int(version)
        return self._json("POST", f"campaigns/{self.resolve(name_or_id)}/status/", json_body=body)

    def history(self, name_or_id: str | int) -> list[dict[str, Any]]:
        """Every history entry of a campaign, newest first."""
        return self._paginated(f"campaigns/{self.resolve(name_or_id)}/history/", {"page_size": 200})

    def steps(self, name_or_id: str | int) -> list[dict[str, Any]]:
        """The steps of a campaign in order, with their groups."""
        return self._json("GET", f"campaigns/{self.resolve(name_or_id)}/steps/")
