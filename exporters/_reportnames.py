"""The report's table and output names, without pandas: the CLI builds its options from them
before (and without ever) loading the report's code."""

from __future__ import annotations

__all__ = ["BY", "FORMATS"]

#: The main tables a report can group by.
BY = ("pod", "namespace", "pair", "protocol", "port")
#: The report's output formats.
FORMATS = ("table", "csv", "json", "markdown", "html")
