"""Campaign definitions as YAML: export is canonical, so export → import → export is identical."""

from __future__ import annotations

from typing import Any

import yaml
from django.core.exceptions import ValidationError

from core.limits import LimitExceeded, yaml_load_all

from .definition import DEFINITION_FIELDS, normalize_newlines, redact_notify, snapshot
from .models import Campaign


class _Dumper(yaml.SafeDumper):
    pass


def _str_representer(dumper: yaml.SafeDumper, value: str):
    # Text stored before newlines were normalised on input may hold CRLF: YAML cannot write a CR in a block
    # scalar and would fall back to a quoted "...\r\n..." string.
    value = normalize_newlines(value)
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str_representer)


def _compact(definition: dict[str, Any]) -> dict[str, Any]:
    """Leave out empty optional values so exported files stay short and readable."""
    out = {}
    for key in (*DEFINITION_FIELDS, "steps"):
        value = definition.get(key)
        if value in ("", [], {}, None):
            continue
        if key == "steps":
            value = [
                {
                    k: v
                    for k, v in step.items()
                    if not (k in ("depends_on", "pipeline_subset") and not v)
                    and not (k == "requires_approval" and v is False)
                }
                for step in value
            ]
        out[key] = value
    return out


def campaign_to_yaml(campaign: Campaign, *, redact: bool = False) -> str:
    """The campaign's definition as YAML; ``redact`` hides secrets (web hook addresses) from mere viewers."""
    data = snapshot(campaign)
    if redact and "notify" in data:
        data["notify"] = redact_notify(data["notify"])
    return yaml.dump(_compact(data), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


def parse_campaign_yaml(text: str | bytes) -> dict[str, Any]:
    """Parse YAML into a definition mapping, with errors that give the line and column. Read by
    ``core.limits.yaml_load_all``: no aliases, no duplicate keys, CM_YAML_MAX_BYTES also once expanded."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValidationError({"yaml": f"The file is not UTF-8 text (bad byte at offset {exc.start})."}) from exc
    if not text.strip():
        raise ValidationError({"yaml": "The YAML document is empty."})
    try:
        documents = yaml_load_all(text)
    except LimitExceeded as exc:
        raise ValidationError({"yaml": f"YAML refused: {exc.message}"}) from exc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        raise ValidationError({"yaml": f"Invalid YAML at {where}: {exc.problem}."}) from exc
    except yaml.YAMLError as exc:
        raise ValidationError({"yaml": f"Invalid YAML: {exc}"}) from exc
    if len(documents) != 1:
        raise ValidationError({"yaml": f"Expected one YAML document, found {len(documents)}."})
    data = documents[0]
    if not isinstance(data, dict):
        raise ValidationError(
            {"yaml": f"Expected a mapping of campaign fields at the top level, got {type(data).__name__}."}
        )
    return data
