"""Rescore stored training examples with the configured or a named scorer."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser
from pydantic import ValidationError

from collection.queries import ExampleFilters, filter_examples
from collection.scoring import ScoringError, get_scorer, rescore


class Command(BaseCommand):
    help = "Rescore training examples (all, or those matching the filters)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--scorer", default="", help="dotted path of a scorer callable")
        parser.add_argument("--category")
        parser.add_argument("--difficulty")
        parser.add_argument("--dry-run", action="store_true", help="only count the examples")

    def handle(
        self,
        *args: object,
        scorer: str,
        category: str | None,
        difficulty: str | None,
        dry_run: bool,
        **kw: object,
    ) -> None:
        try:
            # Validated from the raw strings: pydantic turns a difficulty into a `Difficulty`.
            filters = ExampleFilters.model_validate(
                {"category": category, "difficulty": difficulty}
            )
            scorer_fn = get_scorer(scorer or None)
        except (ValidationError, ScoringError) as exc:
            raise CommandError(str(exc)) from exc
        examples = filter_examples(filters)
        if dry_run:
            self.stdout.write(f"would rescore {examples.count()} examples")
            return
        self.stdout.write(self.style.SUCCESS(f"rescored {rescore(examples, scorer_fn)} examples"))
