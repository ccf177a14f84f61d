"""Request parsers shared by the API (the defaults of REST_FRAMEWORK and every view's ``parser_classes``).

``json`` recurses, so a deeply nested body was a ``RecursionError`` (a 500), and DRF's JSON parser accepts
NaN-free JSON of any depth, length and integer size. These scan JSON against ``core.limits`` before parsing
it (a limit passed is a 400 naming it), refuse integers beyond 64 bits, and read at most
``CM_REQUEST_MAX_BYTES`` themselves (DRF 3.18 hands JSON and form parsers ``request.body``, which Django
bounds by the same setting; the YAML parser reads the stream and stops at ``CM_YAML_MAX_BYTES``).
"""

from __future__ import annotations

from django.conf import settings
from rest_framework import parsers, serializers
from rest_framework.exceptions import ParseError

from .limits import LimitExceeded, json_loads, request_limits


def _read_body(stream, parser_context, limit: int, setting: str) -> bytes:
    request = (parser_context or {}).get("request")
    meta = getattr(request, "META", {}) if request is not None else {}
    try:
        length = int(meta.get("CONTENT_LENGTH") or 0)
    except (TypeError, ValueError):
        length = 0
    too_big = f"at most {limit:,} bytes are accepted ({setting})"
    if length > limit:
        raise ParseError(f"The request body is {length:,} bytes; {too_big}.")
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise ParseError(f"The request body is larger than {limit:,} bytes; {too_big}.")
    return data


class JSONParser(parsers.JSONParser):
    """JSON bodies: at most CM_REQUEST_MAX_BYTES, scanned for depth, strings and elements before parsing;
    NaN and Infinity are refused. Integers beyond 64 bits pass the parser so that the serializer's bounded
    field (core.api.IntegerField) refuses them naming the field; a JSON field's contents are bounded where used."""

    def parse(self, stream, media_type=None, parser_context=None):
        data = _read_body(stream, parser_context, settings.DATA_UPLOAD_MAX_MEMORY_SIZE, "CM_REQUEST_MAX_BYTES")
        try:
            return json_loads(data, request_limits(), big_ints=True)
        except LimitExceeded as exc:
            raise ParseError(f"JSON refused: {exc.message}") from exc
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc


class FormParser(parsers.FormParser):
    """URL-encoded form bodies: at most CM_REQUEST_MAX_BYTES."""

    def parse(self, stream, media_type=None, parser_context=None):
        import io

        data = _read_body(stream, parser_context, settings.DATA_UPLOAD_MAX_MEMORY_SIZE, "CM_REQUEST_MAX_BYTES")
        return super().parse(io.BytesIO(data), media_type, parser_context)


# Multipart bodies are parsed by Django, which bounds the fields (DATA_UPLOAD_MAX_MEMORY_SIZE) and writes
# files to disk; each upload's size is checked by the service that reads it.
MultiPartParser = parsers.MultiPartParser


class YAMLTextParser(parsers.BaseParser):
    """Hands a YAML body over as text; the service parses it so errors carry line and column."""

    media_type = "application/yaml"

    def parse(self, stream, media_type=None, parser_context=None):
        # One byte over the limit is enough for the service to refuse it, naming the limit.
        data = stream.read(settings.CM_YAML_MAX_BYTES + 1) if stream is not None else b""
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParseError(f"The body is not UTF-8 text (bad byte at offset {exc.start}).") from exc


class TextYAMLParser(YAMLTextParser):
    media_type = "text/yaml"


class JSONField(serializers.JSONField):
    """DRF's JSONField, whose JSON text sent in a form field is read within the request limits (DRF's own
    calls ``json.loads``, a ``RecursionError`` on deep nesting) and without NaN or 64-bit overflows."""

    def to_internal_value(self, data):
        if isinstance(data, str | bytes) and (self.binary or getattr(data, "is_json_string", False)):
            try:
                return json_loads(data, request_limits())
            except LimitExceeded as exc:
                raise serializers.ValidationError(f"JSON refused: {exc.message}") from exc
            except ValueError:
                self.fail("invalid")
        return super().to_internal_value(data)
