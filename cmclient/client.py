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

Running a campaign (steps and groups are named; the server looks up their ids)::

    cm.launch("w48-minidrp", comment="go")
    status = cm.run_status("w48-minidrp")  # steps, groups, quanta counts, failures by task
    cm.approve_step("w48-minidrp", "step2", comment="step1 outputs look fine")
    cm.accept_group("w48-minidrp", "step1", "night-20251121", comment="one bad detector, known")
    cm.create_error_rule(r"Timeout", "auto-retry", task_label="isr", max_retries=2)

DataID sets (named, versioned sets of data IDs checked against a Butler repo)::

    cm.upload_dataids("ids.csv", repo="demo", name="bad-seeing", reason="Seeing above 1.5 arcsec")
    cm.upload_dataids(astropy_table, repo="demo", name="from-table", reason="...")  # or a DataFrame, a list of dicts
    text = cm.download_dataids("bad-seeing", format="ecsv")
    cm.tag_dataids("bad-seeing", "raw", ["DemoCam/raw/all"], wait=True)
"""

from __future__ import annotations

import io
import json
import os
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import requests

from .flags import FlagsMixin
from .metrics import MetricsMixin
from .selections import SelectionsMixin
from .tags import TagTablesMixin

__all__ = ["ApiError", "Client", "config_path", "load_config", "problem_text", "save_config", "upload_problems"]

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


def problem_text(problem: Any) -> str:
    """One problem of an upload error as ``line 3, key exposure: message``."""
    if not isinstance(problem, Mapping):
        return str(problem)
    where = str(problem.get("where") or "").strip()
    key = str(problem.get("key") or "").strip()
    message = str(problem.get("message") or "").strip()
    head = ", ".join(part for part in (where, f"key {key}" if key else "") if part)
    return f"{head}: {message}" if head else message


def upload_problems(payload: Any) -> tuple[list[str], int]:
    """The problems of an upload error body (``errors``) as lines, and how many there are in all."""
    if not isinstance(payload, Mapping) or not isinstance(payload.get("errors"), list):
        return [], 0
    detail = str(payload.get("detail") or "")
    lines = [problem_text(p) for p in payload["errors"]]
    kept = [line for line in lines if line and line != detail]  # a file-level error repeats the detail
    total = payload.get("error_total")
    total = int(total) if isinstance(total, int) and not isinstance(total, bool) else len(lines)
    return kept, max(total - (len(lines) - len(kept)), len(kept))


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


class Client(TagTablesMixin, SelectionsMixin, MetricsMixin, FlagsMixin):
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
        files: Any = None,
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
                files=files,
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

    def _paginated(
        self, path: str, params: Mapping[str, Any] | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        page = self._json("GET", path, params=params)
        while True:
            if not isinstance(page, dict) or "results" not in page:
                raise ApiError(f"unexpected answer from {self.url}: expected a page of results")
            results.extend(page["results"])
            if limit is not None and len(results) >= limit:
                return results[:limit]
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

    def revoke_token(self) -> None:
        """Revoke the token this client uses (``DELETE auth/token/``): it stops working at once."""
        self._json("DELETE", "auth/token/")

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

    def clone_campaign(
        self, name_or_id: str | int, new_name: str, comment: str = "", output_collection: str = ""
    ) -> dict[str, Any]:
        """A new draft copy of a campaign (definition and steps), owned by you, writing to ``output_collection``
        (default: derived by the server from the new name)."""
        body = {"name": new_name, "comment": comment}
        if output_collection:
            body["output_collection"] = output_collection
        return self._json("POST", f"campaigns/{self.resolve(name_or_id)}/clone/", json_body=body)

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

    # --- running campaigns ---

    def _campaign_action(self, name_or_id: str | int, action: str, comment: str) -> dict[str, Any]:
        body = {"comment": comment} if comment else {}
        return self._json("POST", f"campaigns/{self.resolve(name_or_id)}/{action}/", json_body=body)

    def launch(self, name_or_id: str | int, comment: str = "") -> dict[str, Any]:
        """Plan every step of a draft or ready campaign into groups and start the steps that depend
        on nothing; returns the campaign (now running)."""
        return self._campaign_action(name_or_id, "launch", comment)

    def pause(self, name_or_id: str | int, comment: str = "") -> dict[str, Any]:
        """Stop new submissions of a running campaign (running groups go on); returns the campaign."""
        return self._campaign_action(name_or_id, "pause", comment)

    def resume(self, name_or_id: str | int, comment: str = "") -> dict[str, Any]:
        """Resume a paused campaign: its ready groups are sent again; returns the campaign."""
        return self._campaign_action(name_or_id, "resume", comment)

    def plan(self, name_or_id: str | int) -> dict[str, Any]:
        """The plan of a campaign. Before launch, what launching it would do, without doing it: each step's
        ``split`` and its ``split_check``, its ``groups`` with their ``where``, ``data_id_tables`` and estimated
        quanta per task (``quanta``, ``quanta_total``). Once launched (``launched``), the groups as they were
        frozen, each with its own estimate and what ran (``ran``: succeeded and failed counts, per task)."""
        return self._json("GET", f"campaigns/{self.resolve(name_or_id)}/plan/")

    def run_status(self, name_or_id: str | int) -> dict[str, Any]:
        """Where a campaign's run stands: ``status``, ``progress`` (group counts), ``steps`` (each
        with its ``groups`` and their quanta counts) and ``failures`` (``by_rule``, ``by_task``)."""
        return self._json("GET", f"campaigns/{self.resolve(name_or_id)}/run-status/")

    def _find_step(self, campaign: str | int, step: str | int) -> dict[str, Any]:
        """The step named ``step`` (or with that id) in the run status of ``campaign``."""
        status = self.run_status(campaign)
        steps = status.get("steps") or []
        text = str(step).strip()
        found = next((s for s in steps if s.get("name") == text), None)
        if found is None and text.isdigit():
            found = next((s for s in steps if s.get("id") == int(text)), None)
        if found is None:
            names = ", ".join(str(s.get("name")) for s in steps) or "none"
            raise ApiError(f"campaign {status.get('campaign', campaign)} has no step {text!r} (steps: {names})", 404)
        return found

    def _group_id(self, campaign: str | int, step: str | int, group: str | int) -> int:
        found = self._find_step(campaign, step)
        groups = found.get("groups") or []
        text = str(group).strip()
        row = next((g for g in groups if g.get("name") == text), None)
        if row is None and text.isdigit():
            row = next((g for g in groups if g.get("id") == int(text)), None)
        if row is None:
            if not groups:
                raise ApiError(f"step {found['name']} has no groups yet (is the campaign launched?)", 404)
            names = ", ".join(str(g.get("name")) for g in groups)
            raise ApiError(f"step {found['name']} has no group {text!r} (groups: {names})", 404)
        return int(row["id"])

    def step(self, campaign: str | int, step: str | int) -> dict[str, Any]:
        """One step of a campaign (by name) with its status, approval and groups."""
        return self._json("GET", f"steps/{self._find_step(campaign, step)['id']}/")

    def approve_step(self, campaign: str | int, step: str | int, comment: str) -> dict[str, Any]:
        """Approve a step that awaits approval (a comment is required); returns the step."""
        step_id = self._find_step(campaign, step)["id"]
        return self._json("POST", f"steps/{step_id}/approve/", json_body={"comment": comment})

    def group(self, campaign: str | int, step: str | int, group: str | int) -> dict[str, Any]:
        """One group (by campaign, step and group name) with its ``submissions`` (attempts, newest
        first), ``errors`` (failed quanta) and ``transitions`` (state changes, newest first)."""
        return self._json("GET", f"groups/{self._group_id(campaign, step, group)}/")

    def _group_action(
        self, campaign: str | int, step: str | int, group: str | int, action: str, comment: str
    ) -> dict[str, Any]:
        group_id = self._group_id(campaign, step, group)
        body = {"comment": comment} if comment else {}
        return self._json("POST", f"groups/{group_id}/{action}/", json_body=body)

    def retry_group(self, campaign: str | int, step: str | int, group: str | int, comment: str = "") -> dict[str, Any]:
        """Run a failed (or cancelled) group again from scratch, in a fresh RUN collection."""
        return self._group_action(campaign, step, group, "retry", comment)

    def rescue_group(self, campaign: str | int, step: str | int, group: str | int, comment: str = "") -> dict[str, Any]:
        """A new attempt of a failed group that skips what its earlier runs produced."""
        return self._group_action(campaign, step, group, "rescue", comment)

    def accept_group(self, campaign: str | int, step: str | int, group: str | int, comment: str) -> dict[str, Any]:
        """Count a failed group as done for its step (a comment is required)."""
        group_id = self._group_id(campaign, step, group)
        return self._json("POST", f"groups/{group_id}/accept/", json_body={"comment": comment})

    def cancel_group(self, campaign: str | int, step: str | int, group: str | int, comment: str = "") -> dict[str, Any]:
        """Cancel a group: it will not be submitted again."""
        return self._group_action(campaign, step, group, "cancel", comment)

    # --- what needs a person ---

    def inbox(self, *, mine: bool = False, kind: str | None = None) -> dict[str, Any]:
        """What waits for a person in the campaigns you may see: ``items`` (each with ``kind``, ``title``,
        ``reason``, ``since``, ``campaign``, ``can_act`` and the API endpoints of its ``actions``), ``campaigns``
        (counts by kind and a ``headline``), ``total`` and ``more`` (counted but not listed). ``mine``: only
        what you may act on; ``kind``: approval, quality_gate, failed_group, review or paused."""
        params: dict[str, str] = {}
        if mine:
            params["mine"] = "true"
        if kind:
            params["kind"] = kind
        return self._json("GET", "inbox/", params=params)

    # --- error rules ---

    def error_rules(self) -> list[dict[str, Any]]:
        """Every error rule, in the order they are tried (with ``match_count``)."""
        return self._json("GET", "error-rules/")

    def error_rule(self, rule_id: int) -> dict[str, Any]:
        return self._json("GET", f"error-rules/{int(rule_id)}/")

    def create_error_rule(
        self, message_regex: str, action: str, task_label: str = "", max_retries: int = 1, comment: str = ""
    ) -> dict[str, Any]:
        """A rule: failed quanta of ``task_label`` (any task if empty) whose message matches
        ``message_regex`` get ``action`` (``auto-retry``, ``review`` or ``fail``). Staff only."""
        body = {
            "message_regex": message_regex,
            "action": action,
            "task_label": task_label,
            "max_retries": int(max_retries),
            "comment": comment,
        }
        return self._json("POST", "error-rules/", json_body=body)

    def update_error_rule(self, rule_id: int, **changes: Any) -> dict[str, Any]:
        """Change fields of a rule (``enabled``, ``position``, ``max_retries``, ...). Staff only."""
        self.error_rule(rule_id)  # a clear 404 for a rule that does not exist
        return self._json("PATCH", f"error-rules/{int(rule_id)}/", json_body=changes)

    def delete_error_rule(self, rule_id: int) -> None:
        """Delete a rule (failed quanta it matched keep their action). Staff only."""
        try:
            self.error_rule(rule_id)
        except ApiError as exc:
            if exc.status == 404:
                raise ApiError(f"no error rule {int(rule_id)}", 404, exc.payload) from None
            raise
        self._json("DELETE", f"error-rules/{int(rule_id)}/")

    # --- Butler repos and exposures ---

    def butler_repos(self) -> list[dict[str, Any]]:
        """The configured Butler repos (label, config URI, number of exposures, ...)."""
        return self._json("GET", "butler-repos/")

    def exposures(self, repo: str | None = None, limit: int | None = None, **filters: Any) -> list[dict[str, Any]]:
        """Exposures of ``repo`` (the only repo if there is one), newest first: all of them, or the first ``limit``.

        Filters are the API's: ``day_obs``, ``day_obs_min``, ``day_obs_max``, ``band``,
        ``observation_type``, ``target``, ``instrument``, ``q`` (obs_id or exposure id).
        """
        params: dict[str, Any] = {"page_size": 500 if limit is None else max(1, min(limit, 500))}
        if repo:
            params["repo"] = repo
        params.update({k: v for k, v in filters.items() if v is not None and v != ""})
        return self._paginated("exposures/", params, limit=limit)

    # --- DataID sets ---

    def dataid_sets(self, repo: str | None = None, q: str | None = None) -> list[dict[str, Any]]:
        """Every DataID set you may see (in ``repo``; ``q``: text in the name, reason or description)."""
        params: dict[str, Any] = {"page_size": 200}
        if repo:
            params["repo"] = repo
        if q:
            params["q"] = q
        return self._paginated("dataid-sets/", params)

    def resolve_dataids(self, name_or_id: str | int, repo: str | None = None) -> int:
        """The id of a DataID set given its name (and its repo, if the name is used in several) or its id."""
        if isinstance(name_or_id, int):
            return name_or_id
        text = str(name_or_id).strip()
        params: dict[str, Any] = {"name": text, "page_size": 50}
        if repo:
            params["repo"] = repo
        rows = self._json("GET", "dataid-sets/", params=params)["results"]
        if len(rows) == 1:
            return int(rows[0]["id"])
        if len(rows) > 1:
            repos = ", ".join(sorted(str(r["repo"]) for r in rows))
            raise ApiError(f"several DataID sets are named {text!r} (in {repos}): say which repo", status=400)
        if text.isdigit():
            return int(text)
        where = f" in {repo}" if repo else ""
        raise ApiError(f"no DataID set named {text!r}{where} (or you may not see it)", status=404)

    def dataid_set(self, name_or_id: str | int, repo: str | None = None) -> dict[str, Any]:
        """One DataID set, with its ``latest`` version."""
        return self._json("GET", f"dataid-sets/{self.resolve_dataids(name_or_id, repo)}/")

    def dataid_versions(self, name_or_id: str | int, repo: str | None = None) -> list[dict[str, Any]]:
        """Every version of a DataID set, newest first (count, dimensions, source, tagging state)."""
        return self._json("GET", f"dataid-sets/{self.resolve_dataids(name_or_id, repo)}/versions/")

    def _create_dataids(self, *, files: Any = None, fields: dict[str, Any], body: dict[str, Any] | None = None):
        try:
            if body is not None:
                return self._json(
                    "POST",
                    "dataid-sets/",
                    data=json.dumps({**fields, **body}, default=_plain).encode("utf-8"),
                    headers={"Content-Type": "application/json"},
                )
            return self._json("POST", "dataid-sets/", data=fields, files=files)
        except ApiError as exc:
            raise _upload_error(exc) from None

    def upload_dataids(
        self,
        data: Any,
        *,
        repo: str,
        name: str,
        reason: str,
        description: str = "",
        public: bool | None = None,
        drop_invalid: bool = False,
        format: str | None = None,
        dimensions: Sequence[str] | str | None = None,
        comment: str = "",
    ) -> dict[str, Any]:
        """Check data IDs against ``repo`` and store them as set ``name`` (a new version if it is yours).

        ``data`` is a file path (JSON, CSV, ECSV, VOTable, Parquet, FITS), an astropy ``Table``
        (sent as ECSV), a pandas ``DataFrame`` or anything with ``to_csv`` (sent as CSV), or a
        list of mappings. Alternate keys are understood (``obs_id``, ``day_obs`` + ``seq_num``,
        detector full names). Nothing is stored if one data ID is invalid, unless
        ``drop_invalid``. Returns the new version. A rejected upload raises :class:`ApiError`
        whose ``payload["errors"]`` lists the problems (``where``, ``key``, ``message``).
        """
        fields: dict[str, Any] = {
            "repo": repo,
            "name": name,
            "reason": reason,
            "description": description,
            **({} if public is None else {"visibility": "public" if public else "private"}),
            "drop_invalid": "true" if drop_invalid else "false",
            "comment": comment,
        }
        dims = _dimension_list(dimensions)
        if isinstance(data, list | tuple):
            if not data:
                raise ApiError("no data IDs to upload: the list is empty")
            records = []
            for i, item in enumerate(data):
                if not isinstance(item, Mapping):
                    raise ApiError(f"data ID {i} is a {type(item).__name__}, not a mapping")
                records.append({str(k): _plain(v) for k, v in item.items()})
            body: dict[str, Any] = {"data_ids": records, "drop_invalid": drop_invalid}
            if dims:
                body["dimensions"] = dims
            if format:
                body["format"] = format
            return self._create_dataids(fields=fields, body=body)
        filename, content, fmt = _upload_payload(data, format)
        if fmt:
            fields["format"] = fmt
        if dims:
            fields["dimensions"] = dims
        return self._create_dataids(fields=fields, files={"file": (filename, content)})

    def dataids_from_query(
        self,
        where: str,
        *,
        dimensions: Sequence[str] | str,
        repo: str,
        name: str,
        reason: str,
        description: str = "",
        public: bool | None = None,
        drop_invalid: bool = False,
        comment: str = "",
    ) -> dict[str, Any]:
        """Store the data IDs a Butler query returns (``where``, e.g. ``"exposure.day_obs = 20251121"``)
        for ``dimensions`` (e.g. ``["exposure", "detector"]``) as set ``name``. Returns the new version."""
        fields = {
            "repo": repo,
            "name": name,
            "reason": reason,
            "description": description,
            **({} if public is None else {"visibility": "public" if public else "private"}),
            "drop_invalid": drop_invalid,
            "comment": comment,
        }
        return self._create_dataids(fields=fields, body={"query": where, "dimensions": _dimension_list(dimensions)})

    def download_dataids(
        self,
        name_or_id: str | int,
        format: str = "ecsv",
        version: int | None = None,
        repo: str | None = None,
    ) -> str:
        """The data IDs of a set (latest version, or ``version``) as JSON, CSV or ECSV text.

        ECSV is what ``pipetask --data-id-table`` and ``astropy.table.Table.read`` read."""
        params: dict[str, Any] = {"format": format}
        if version is not None:
            params["version"] = int(version)
        response = self._request(
            "GET",
            f"dataid-sets/{self.resolve_dataids(name_or_id, repo)}/download/",
            params=params,
            headers={"Accept": "*/*"},
        )
        response.encoding = "utf-8"
        return response.text

    def tag_status(self, name_or_id: str | int, version: int | None = None, repo: str | None = None) -> dict[str, Any]:
        """The version (latest, or ``version``) with its tagging state (``tag_status``: none, pending,
        running, done or failed; ``tag_found``, ``tag_missing_count``, ``tag_error``)."""
        params = {"version": int(version)} if version is not None else None
        return self._json("GET", f"dataid-sets/{self.resolve_dataids(name_or_id, repo)}/tag-collection/", params=params)

    def tag_dataids(
        self,
        name_or_id: str | int,
        dataset_type: str,
        collections: Sequence[str] | str,
        collection: str | None = None,
        version: int | None = None,
        wait: bool = False,
        timeout: float = 600.0,
        repo: str | None = None,
        poll_interval: float = 2.0,
    ) -> dict[str, Any]:
        """Find the ``dataset_type`` datasets of a set's data IDs in ``collections`` and put them in a
        TAGGED ``collection`` (default ``u/<you>/dataids/<set>/v<n>``). The work runs on the server;
        with ``wait`` this returns once it is done or failed (or raises after ``timeout`` seconds)."""
        pk = self.resolve_dataids(name_or_id, repo)
        body: dict[str, Any] = {"dataset_type": dataset_type, "input_collections": _dimension_list(collections)}
        if collection:
            body["collection"] = collection
        if version is not None:
            body["version"] = int(version)
        state = self._json("POST", f"dataid-sets/{pk}/tag-collection/", json_body=body)
        if not wait:
            return state
        deadline = time.monotonic() + timeout
        while state.get("tag_status") not in ("done", "failed"):
            if time.monotonic() >= deadline:
                raise ApiError(
                    f"tagging is still {state.get('tag_status')} after {timeout:g} s "
                    "(is a Celery worker running?); check again later",
                    payload=state,
                )
            time.sleep(min(poll_interval, max(deadline - time.monotonic(), 0.05)))
            state = self.tag_status(pk, version=state.get("number"))
        return state

    def share_dataids(
        self,
        name_or_id: str | int,
        *,
        user: str | None = None,
        group: str | None = None,
        permission: str = "view",
        grant: bool = True,
        repo: str | None = None,
    ) -> dict[str, Any]:
        """Let one ``user`` or one ``group`` view (or ``permission="change"``) a set; ``grant=False`` takes it back."""
        path = f"dataid-sets/{self.resolve_dataids(name_or_id, repo)}/share/"
        return self._share("share_dataids", path, user, group, permission, grant)

    def _share(
        self, method: str, path: str, user: str | None, group: str | None, permission: str, grant: bool
    ) -> dict[str, Any]:
        """POST a grant (or, ``grant=False``, a withdrawal) of ``permission`` to one user or one group."""
        if bool(user) == bool(group):
            raise ValueError(f"{method}() needs exactly one of user= or group=")
        body = {"username": user or "", "group": group or "", "permission": permission, "grant": grant}
        return self._json("POST", path, json_body=body)

    def dataids_algebra(
        self,
        operation: str,
        names: Sequence[str | int],
        new_name: str,
        reason: str,
        repo: str | None = None,
        description: str = "",
        public: bool | None = None,
    ) -> dict[str, Any]:
        """A new set ``new_name``: the ``union``, ``intersection`` or ``difference`` (the first minus
        the others) of the latest versions of ``names``. Returns its first version."""
        body = {
            "operation": operation,
            "parents": [{"set": self.resolve_dataids(n, repo)} for n in names],
            "name": new_name,
            "reason": reason,
            "description": description,
            **({} if public is None else {"visibility": "public" if public else "private"}),
        }
        return self._json("POST", "dataid-sets/algebra/", json_body=body)


# --- DataID uploads ------------------------------------------------------------------------------


def _dimension_list(value: Sequence[str] | str | None) -> list[str]:
    """``"exposure, detector"`` or ``["exposure", "detector"]`` as a list of names."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    return [str(item).strip() for item in items if str(item).strip()]


def _plain(value: Any) -> Any:
    """numpy scalars (from tables and frames) as plain Python values, for JSON."""
    if hasattr(value, "item") and callable(value.item):
        try:
            return value.item()
        except (TypeError, ValueError):
            pass
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    raise TypeError(f"{type(value).__name__} is not a data ID value")


def _upload_payload(data: Any, fmt: str | None) -> tuple[str, bytes, str | None]:
    """(file name, content, format) for a path, an astropy Table or a DataFrame-like object."""
    if isinstance(data, str | os.PathLike):
        path = Path(data)
        try:
            content = path.read_bytes()
        except FileNotFoundError:
            raise ApiError(f"cannot read {path}: no such file") from None
        except IsADirectoryError:
            raise ApiError(f"cannot read {path}: it is a directory") from None
        except OSError as exc:
            raise ApiError(f"cannot read {path}: {exc.strerror or exc}") from None
        return path.name, content, fmt
    if hasattr(data, "colnames") and hasattr(data, "write"):  # an astropy Table
        out = io.StringIO()
        data.write(out, format="ascii.ecsv")
        return "table.ecsv", out.getvalue().encode("utf-8"), "ecsv"
    if hasattr(data, "to_csv"):  # a pandas DataFrame, or anything that writes CSV text the same way
        text = data.to_csv(index=False)
        return "dataframe.csv", (text.encode("utf-8") if isinstance(text, str) else bytes(text)), "csv"
    raise TypeError(
        "upload_dataids() takes a file path, an astropy Table, a pandas DataFrame or a list of mappings, "
        f"not {type(data).__name__}"
    )


def _upload_error(exc: ApiError) -> ApiError:
    """One line for a rejected upload: the detail and the first problem; the payload keeps them all."""
    lines, _ = upload_problems(exc.payload)
    if not lines:
        return exc
    return ApiError(f"{exc.message} First problem: {lines[0]}", exc.status, exc.payload)
