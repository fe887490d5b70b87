"""Reading many rows without model instances or Django's converters, for the bulk paths
(exports, import closing) where building them cost more than the rest of the work.

    for pk, payload in raw_rows(Message.objects.filter(...).values_list("pk", "payload")):
        payload = json_value(payload)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import orjson
from django.db import connections
from django.db.models import QuerySet


def raw_rows(queryset: QuerySet[Any, Any], batch: int = 2000) -> Iterator[tuple[Any, ...]]:
    """The rows of a `values_list` queryset as the driver gives them: JSON columns as their
    text on SQLite (parse them with `json_value`), no model instances nor converters."""
    sql, params = queryset.query.get_compiler(using=queryset.db).as_sql()
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(batch):
            yield from rows


def json_value(text: Any) -> Any:
    """A JSON column's value from what the driver gave, as Django's JSONField would give it:
    text parsed with orjson (json for what orjson refuses: NaN, lone surrogates), anything
    else (PostgreSQL's driver parses jsonb itself) as it is."""
    if not isinstance(text, str | bytes):
        return text
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
