"""Export training examples into a bundle (zip + manifest + dataset card) from the shell.

    manage.py export --format jsonl --filter category=debugging --filter min_quality=0.8 \\
        --output debugging.zip
    manage.py export --format huggingface --golden-only --seed 3 --output hf.zip
    manage.py export --prune      # delete bundles past TRAININGDASH_EXPORT_RETENTION_DAYS

Filters are the example list's (`collection.queries.ExampleFilters`), named as in its URLs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from pydantic import ValidationError
from tqdm import tqdm

from collection.queries import ExampleFilters
from exports.bundles import build_bundle, format_choices
from exports.formats.base import ExportError
from exports.jobs import filters_json, prune_expired, select_examples
from exports.options import ExportOptions


class Command(BaseCommand):
    help = "Export training examples as a bundle (a zip with the data, manifest.json, README.md)."

    def add_arguments(self, parser: CommandParser) -> None:
        names = [name for name, _title in format_choices()]
        parser.add_argument("--format", choices=names, help="the export format")
        parser.add_argument("--output", type=Path, help="the zip to write")
        parser.add_argument(
            "--filter",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="an example-list filter (repeatable), e.g. category=debugging",
        )
        parser.add_argument("--ids", help="export exactly these example ids (comma-separated)")
        parser.add_argument("--include-thinking", action="store_true")
        parser.add_argument(
            "--subagents", choices=["separate", "coordinator_only"], default="separate"
        )
        parser.add_argument("--keep-duplicates", action="store_true")
        parser.add_argument("--no-redact", action="store_true", help="leave secrets in (unsafe)")
        parser.add_argument("--golden-only", action="store_true")
        parser.add_argument("--max-tokens", type=int, default=32768)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--split-ratio", default="0.8,0.1,0.1", help="train,validation,test")
        parser.add_argument("--reuse-examples", action="store_true", help="preference pairs")
        parser.add_argument("--dry-run", action="store_true", help="only count the examples")
        parser.add_argument("--prune", action="store_true", help="delete expired bundles")

    def handle(self, *args: object, **opts: Any) -> None:
        if opts["prune"]:
            self.stdout.write(f"deleted {prune_expired()} expired bundles")
            return
        if not opts["format"] or not (opts["output"] or opts["dry_run"]):
            raise CommandError("give --format and --output (or --dry-run, or --prune)")
        filters, ids, options = _parse(opts)
        examples = select_examples(filters, ids)
        if opts["dry_run"]:
            self.stdout.write(f"would export {examples.count()} examples")
            return
        with tqdm(unit="example", file=self.stderr) as bar:
            try:
                bundle = build_bundle(
                    examples,
                    opts["format"],
                    options,
                    opts["output"].resolve(),
                    filters=filters if ids is None else None,
                    selected=len(ids) if ids is not None else None,
                    progress=lambda done, total: _advance(bar, done, total),
                )
            except ExportError as exc:
                raise CommandError(str(exc)) from exc
        counts = bundle.counts
        left_out = ", ".join(f"{k} {v}" for k, v in counts["left_out"].items()) or "none"
        self.stdout.write(
            self.style.SUCCESS(
                f"wrote {counts['written']} rows from {counts['records']} records to "
                f"{bundle.path} ({bundle.size} bytes); left out: {left_out}"
            )
        )


def _parse(opts: dict[str, Any]) -> tuple[dict[str, Any], list[int] | None, ExportOptions]:
    """The filters, the selection and the options, checked; CommandError says what is wrong."""
    try:
        pairs = [item.split("=", 1) for item in opts["filter"]]
        if any(len(pair) != 2 for pair in pairs):
            raise CommandError("--filter takes NAME=VALUE, e.g. --filter category=debugging")
        filters = filters_json(ExampleFilters.from_query(dict(pairs)))
        ids = [int(i) for i in opts["ids"].split(",") if i.strip()] if opts["ids"] else None
        split = [float(share) for share in opts["split_ratio"].split(",")]
        options = ExportOptions.model_validate(
            {
                "include_thinking": opts["include_thinking"],
                "subagents": opts["subagents"],
                "exclude_duplicates": not opts["keep_duplicates"],
                "redact": not opts["no_redact"],
                "golden_only": opts["golden_only"],
                "max_tokens": opts["max_tokens"],
                "seed": opts["seed"],
                "split_ratio": split,
                "reuse_examples": opts["reuse_examples"],
            }
        )
    except (ValidationError, ValueError) as exc:
        raise CommandError(str(exc)) from exc
    return filters, ids, options


def _advance(bar: tqdm, done: int, total: int) -> None:
    bar.total = total
    bar.update(done - bar.n)
