"""Generate a diverse dataset from the template library, with a progress bar."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from pydantic import ValidationError
from tqdm import tqdm

from collection.jobs.batches import (
    GenerationParams,
    cancel_batch,
    resume_batch,
    start_batch,
    wait_for_batch,
)
from collection.models import GenerationBatch
from trainingdash.broker import BrokerUnavailable, InProcessWorkers


class Command(BaseCommand):
    help = "Generate training data across categories and difficulties (scripted model by default)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--examples-per-category", type=int, default=2)
        parser.add_argument("--categories", help="comma-separated (default: all)")
        parser.add_argument("--difficulties", help="comma-separated (default: all)")
        parser.add_argument("--no-chains", action="store_true")
        parser.add_argument("--no-multi-agent", action="store_true")
        parser.add_argument(
            "--seed", type=int, help="default: a fresh random one; the same seed reproduces a batch"
        )
        parser.add_argument("--concurrency", type=int, default=2)
        parser.add_argument("--backend", choices=["scripted", "claude"], default="scripted")
        parser.add_argument("--model")
        parser.add_argument("--max-cost", type=float, help="stop starting sessions past this USD")
        parser.add_argument("--resume", type=int, metavar="BATCH", help="resume a batch")
        parser.add_argument("--cancel", type=int, metavar="BATCH", help="cancel a batch")
        parser.add_argument(
            "--no-wait", action="store_true", help="queue for the running workers and return"
        )

    def handle(self, *args: Any, **o: Any) -> None:
        if o["cancel"]:
            cancel_batch(self._batch(o["cancel"]))
            self.stdout.write(f"batch {o['cancel']} cancelled")
            return
        batch = self._resume(o["resume"]) if o["resume"] else self._start(o)
        params = GenerationParams.model_validate(batch.params)
        self.stdout.write(
            f"batch {batch.pk}: {batch.jobs.count()} sessions planned (seed {params.seed})"
        )
        if o["no_wait"]:
            return
        with (
            tqdm(total=batch.jobs.count(), unit="session", file=self.stderr) as bar,
            InProcessWorkers(params.concurrency),
        ):
            stats = wait_for_batch(batch, on_progress=lambda s: _advance(bar, s))
        self.stdout.write(
            f"{stats['total_examples']} examples, {stats['golden_examples']} golden, "
            f"${stats['total_cost_usd']:.4f}, {stats['wall_time_s']}s"
        )
        if stats["reason"]:
            self.stdout.write(f"  batch {stats['status']}: {stats['reason']}")
        for name in ("by_category", "by_difficulty", "by_execution_status"):
            self.stdout.write(f"  {name}: {stats[name]}")
        for failure in stats["failures"][:20]:
            self.stdout.write(f"  ✗ {failure['plan_key']}: {failure['reason'][:120]}")

    def _start(self, o: dict[str, Any]) -> GenerationBatch:
        fields: dict[str, Any] = {
            "examples_per_category": o["examples_per_category"],
            "include_chains": not o["no_chains"],
            "include_multi_agent": not o["no_multi_agent"],
            "seed": o["seed"],
            "concurrency": o["concurrency"],
            "backend": o["backend"],
            "model": o["model"],
            "max_cost_usd": o["max_cost"],
        }
        for name in ("categories", "difficulties"):
            if o[name]:
                fields[name] = [v.strip() for v in o[name].split(",") if v.strip()]
        try:
            return start_batch(GenerationParams(**fields))
        except (ValidationError, ValueError, BrokerUnavailable) as exc:
            raise CommandError(str(exc)) from exc

    def _resume(self, pk: int) -> GenerationBatch:
        try:
            return resume_batch(self._batch(pk))
        except (ValueError, BrokerUnavailable) as exc:
            raise CommandError(str(exc)) from exc

    def _batch(self, pk: int) -> GenerationBatch:
        try:
            return GenerationBatch.objects.get(pk=pk)
        except GenerationBatch.DoesNotExist:
            raise CommandError(f"no batch with id {pk}") from None


def _advance(bar: tqdm, stats: dict[str, Any]) -> None:
    bar.update(stats["finished"] - bar.n)
    bar.set_postfix(golden=stats["golden_examples"], cost=f"${stats['total_cost_usd']:.3f}")
