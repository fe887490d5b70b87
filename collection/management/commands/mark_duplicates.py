"""Fingerprint stored examples and mark duplicates (for examples finished before duplicate
detection existed; new ones are marked when their execution finishes)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandParser
from tqdm import tqdm

from collection.duplicates import mark_duplicates
from collection.models import TrainingExample


class Command(BaseCommand):
    help = "Fingerprint training examples and mark later identical ones as duplicates."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--all", action="store_true", help="every example, not only those without one"
        )
        parser.add_argument("--dry-run", action="store_true", help="only count the examples")

    def handle(self, *args: object, all: bool, dry_run: bool, **kw: object) -> None:
        examples = (
            TrainingExample.objects.all() if all else TrainingExample.objects.filter(fingerprint="")
        )
        if dry_run:
            self.stdout.write(f"would fingerprint {examples.count()} examples")
            return
        ids = list(examples.order_by("pk").values_list("pk", flat=True))
        for example in tqdm(
            TrainingExample.objects.filter(pk__in=ids).select_related("execution").iterator(),
            total=len(ids),
            unit="example",
            disable=not ids,
        ):
            mark_duplicates(example)
        marked = TrainingExample.objects.filter(pk__in=ids, duplicate_of__isnull=False).count()
        self.stdout.write(f"fingerprinted {len(ids)} examples; {marked} are duplicates")
