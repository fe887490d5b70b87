"""Full-text search over training examples, with the database's own engine.

What is searched is `TrainingExample.search_text`: the task's name, the user's prompts and the
assistant's text output (not tool output, not thinking), capped at SEARCH_TEXT_CHARS. SQLite
keeps it in an FTS5 table (`collection_trainingexample_fts`, filled by triggers on the example
table); PostgreSQL searches it through a GIN expression index on its `tsvector`. Both stem
English words ("failing" finds "fails").

    index_example(example)                      # lifecycle.finish, once the trajectory is stored
    reindex(TrainingExample.objects.all())      # in batches, e.g. after changing what is indexed
    matching(TrainingExample.objects.all(), 'parser -"flaky test"')   # annotated with RANK

A search is words, "quoted phrases", `-excluded` words and `OR`; anything else a user types is
read as words, never as the engine's own syntax, so `"foo` or `a AND` can't fail a query.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import BooleanField, FloatField, QuerySet
from django.db.models.expressions import RawSQL

from collection.models import Message, TrainingExample

SEARCH_TEXT_CHARS = 20_000
FTS_TABLE = "collection_trainingexample_fts"
# The annotation a search adds: higher is a better match, on both databases.
RANK = "search_rank"
# The PostgreSQL text-search configuration; the index expression (migration 0008) names it too.
PG_CONFIG = "english"
PG_VECTOR = "to_tsvector('english'::regconfig, collection_trainingexample.search_text)"

_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')
_WORD = re.compile(r"\w+")


# --- what is indexed --------------------------------------------------------------------------


def build_search_text(task_name: str, prompt: str, payloads: Iterable[dict[str, Any]]) -> str:
    """The searchable text of one session: task name, prompts, then the assistant's text."""
    parts = [task_name, prompt]
    for payload in payloads:
        role = payload.get("type")
        if role in ("user", "assistant"):
            parts += [text for text in _texts(payload) if text != prompt]
    return "\n".join(p for p in parts if p)[:SEARCH_TEXT_CHARS]


def _texts(payload: dict[str, Any]) -> Iterator[str]:
    content = (payload.get("message") or {}).get("content")
    if isinstance(content, str):
        yield content
        return
    for block in content or []:
        if isinstance(block, dict) and block.get("type") == "text":
            yield str(block.get("text") or "")


def _payloads(execution_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """The conversation messages of these executions, in order, in one query."""
    found: dict[int, list[dict[str, Any]]] = {pk: [] for pk in execution_ids}
    rows = (
        Message.objects.filter(execution_id__in=execution_ids, type__in=("user", "assistant"))
        .order_by("execution_id", "seq")
        .values_list("execution_id", "payload")
    )
    for execution_id, payload in rows:
        found[execution_id].append(payload)
    return found


def index_example(example: TrainingExample) -> None:
    """Store what an example's session says, for search (written alone: no stale columns)."""
    reindex(TrainingExample.objects.filter(pk=example.pk))
    example.refresh_from_db(fields=["search_text"])


def reindex(examples: QuerySet[TrainingExample], batch_size: int = 500) -> int:
    """Rebuild `search_text` of these examples, `batch_size` at a time; returns how many."""
    done, last = 0, 0
    ids = examples.order_by("pk").values_list("pk", flat=True)
    # Keyset batches: no cursor held open on the table while it is written.
    while batch := list(ids.filter(pk__gt=last)[:batch_size]):
        last = batch[-1]
        rows = list(
            TrainingExample.objects.filter(pk__in=batch)
            .select_related("execution__task")
            .only("execution__metadata", "execution__task__name")
        )
        payloads = _payloads([row.execution_id for row in rows])
        for row in rows:
            execution = row.execution
            prompt = str(execution.metadata.get("prompt") or "")
            texts = payloads[execution.pk]
            row.search_text = build_search_text(execution.task.name, prompt, texts)
        TrainingExample.objects.bulk_update(rows, ["search_text"])
        done += len(rows)
    return done


# --- what is searched -------------------------------------------------------------------------


@dataclass(frozen=True)
class Term:
    """One thing to look for: a word or a phrase, maybe excluded, maybe OR-ed with the last."""

    words: tuple[str, ...]
    excluded: bool = False
    or_previous: bool = False


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def parse(text: str) -> list[Term]:
    """A user's search as terms; an unclosed quote runs to the end, punctuation separates."""
    terms: list[Term] = []
    or_next = False
    for minus, phrase, bare in _TOKEN.findall(text):
        if bare == "OR" and terms:
            or_next = True
            continue
        excluded = bool(minus) or bare.startswith("-")
        found = tuple(words(phrase if phrase or not bare else bare))
        if found:
            terms.append(Term(found, excluded and not or_next, or_next))
            or_next = False
    # Only exclusions would match nothing useful: read them as words to look for.
    if terms and all(t.excluded for t in terms):
        terms = [Term(t.words) for t in terms]
    return terms


def fts5_query(terms: list[Term]) -> str:
    """The terms in FTS5 syntax, every word quoted: `"a" OR "b c" NOT ("d")`."""
    wanted = [t for t in terms if not t.excluded]
    expression = ""
    for term in wanted:
        joiner = " OR " if term.or_previous else " "
        expression += (joiner if expression else "") + _quoted(term)
    excluded = [_quoted(t) for t in terms if t.excluded]
    if excluded:
        expression = f"({expression}) NOT ({' OR '.join(excluded)})"
    return expression


def _quoted(term: Term) -> str:
    return '"' + " ".join(term.words) + '"'


def websearch_text(terms: list[Term]) -> str:
    """The terms as PostgreSQL's websearch_to_tsquery reads them (which never fails)."""
    parts = []
    for term in terms:
        text = f'"{" ".join(term.words)}"' if len(term.words) > 1 else term.words[0]
        parts.append(("or " if term.or_previous else "") + ("-" if term.excluded else "") + text)
    return " ".join(parts)


def matching(qs: QuerySet[TrainingExample], text: str) -> QuerySet[TrainingExample]:
    """The examples of `qs` whose text matches the search, annotated with RANK (higher is a
    better match)."""
    terms = parse(text)
    if not terms:
        return qs.none()
    if connection.vendor == "postgresql":
        query = [PG_CONFIG, websearch_text(terms)]
        match = f"{PG_VECTOR} @@ websearch_to_tsquery(%s::regconfig, %s)"
        rank = f"ts_rank({PG_VECTOR}, websearch_to_tsquery(%s::regconfig, %s))::float8"
        qs = qs.filter(RawSQL(match, query, output_field=BooleanField()))
        return qs.annotate(**{RANK: RawSQL(rank, query, output_field=FloatField())})
    # A join on the FTS5 table, whose `rank` (bm25, lower is better) comes with each match.
    qs = qs.extra(
        tables=[FTS_TABLE],
        where=[f"{FTS_TABLE}.rowid = collection_trainingexample.id", f"{FTS_TABLE} MATCH %s"],
        params=[fts5_query(terms)],
    )
    return qs.annotate(**{RANK: RawSQL(f"-{FTS_TABLE}.rank", (), output_field=FloatField())})


# --- the engine's side (migration 0008) ---------------------------------------------------------

SQLITE_FTS = f"""
CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5(
    search_text, content='collection_trainingexample', content_rowid='id',
    tokenize='porter unicode61 remove_diacritics 2'
);
"""
SQLITE_TRIGGERS = {
    f"{FTS_TABLE}_insert": f"""
CREATE TRIGGER IF NOT EXISTS {FTS_TABLE}_insert AFTER INSERT ON collection_trainingexample BEGIN
    INSERT INTO {FTS_TABLE}(rowid, search_text) VALUES (new.id, new.search_text);
END""",
    f"{FTS_TABLE}_delete": f"""
CREATE TRIGGER IF NOT EXISTS {FTS_TABLE}_delete AFTER DELETE ON collection_trainingexample BEGIN
    INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, search_text)
        VALUES ('delete', old.id, old.search_text);
END""",
    # Only when the text changes: a bulk golden or rescore must not rewrite the index.
    f"{FTS_TABLE}_update": f"""
CREATE TRIGGER IF NOT EXISTS {FTS_TABLE}_update
AFTER UPDATE OF search_text ON collection_trainingexample BEGIN
    INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, search_text)
        VALUES ('delete', old.id, old.search_text);
    INSERT INTO {FTS_TABLE}(rowid, search_text) VALUES (new.id, new.search_text);
END""",
}
PG_INDEX = (
    "CREATE INDEX IF NOT EXISTS collection_example_search_idx ON collection_trainingexample"
    " USING GIN (to_tsvector('english'::regconfig, search_text))"
)


def ensure_engine(db: BaseDatabaseWrapper) -> None:
    """Create the search table, triggers or index when missing; idempotent.

    On SQLite a migration that rebuilds the example table (Django does for many ALTERs) drops
    its triggers; running this again (after every migrate) puts them back and refills the table.
    """
    with db.cursor() as cursor:
        if db.vendor == "postgresql":
            cursor.execute(PG_INDEX)
            return
        if db.vendor != "sqlite":
            return
        cursor.execute(SQLITE_FTS)
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        present = {name for (name,) in cursor.fetchall()}
        missing = [sql for name, sql in SQLITE_TRIGGERS.items() if name not in present]
        for sql in missing:
            cursor.execute(sql)
        if missing:
            cursor.execute(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild')")
