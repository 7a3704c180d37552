"""`--json`: one convention for every command a script reads (docs/admin/commands.md).

One JSON document on stdout (pretty-printed, UTF-8); keys in snake_case; times as ISO 8601
with their offset (UTC); durations and ages as numbers of seconds; absent values as null. The
exit code is the same as without `--json`, and errors still go to stderr as text, so a script
checks the code first and parses stdout only on the codes the command documents.
"""

from __future__ import annotations

import json
from dataclasses import asdict, is_dataclass
from datetime import date, datetime, timedelta
from enum import Enum
from pathlib import PurePath
from typing import Any

import click

json_option = click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="One JSON document on stdout instead of text (docs/admin/commands.md).",
)


def jsonable(value: Any) -> Any:
    """Dataclasses, enums, times, durations and paths as plain JSON values."""
    if is_dataclass(value) and not isinstance(value, type):
        data = asdict(value)
        if hasattr(value, "ref"):
            data["ref"] = value.ref
        return jsonable(data)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, Enum):
        return jsonable(value.value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, PurePath):
        return str(value)
    return value


def echo_json(value: Any) -> None:
    click.echo(json.dumps(jsonable(value), ensure_ascii=False, indent=2))
