"""Request parsers shared by the API."""

from __future__ import annotations

from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser


class YAMLTextParser(BaseParser):
    """Hands a YAML body over as text; the service parses it so errors carry line and column."""

    media_type = "application/yaml"

    def parse(self, stream, media_type=None, parser_context=None):
        data = stream.read()
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParseError(f"The body is not UTF-8 text (bad byte at offset {exc.start}).") from exc


class TextYAMLParser(YAMLTextParser):
    media_type = "text/yaml"
