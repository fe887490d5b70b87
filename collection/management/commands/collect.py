"""Run one collection from the shell, with a live progress display.

Exit status: 0 when the session was collected (whether or not the agent succeeded: that is
data, shown on the last line); 1 when the job failed (no model response, the endpoint down or
failing, the time limit, a crash) or the settings are bad.
"""

from __future__ import annotations

import json
from pathlib import Path

from claude_agent_sdk import ResultMessage, SystemMessage, ToolResultBlock, ToolUseBlock
from django.core.management.base import BaseCommand, CommandError
from pydantic import ValidationError

from collection.jobs.runner import describe_retry, run_job
from collection.models import CollectionJob, JobKind, JobStatus, Task
from collection.schema import TaskDefinition
from collection.sessions.spec import JobSpec


class Command(BaseCommand):
    help = "Collect one agent session for a task, in this process (no worker needed)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--task", type=int, help="id of a stored task")
        parser.add_argument("--name", help="name of a new task (with --category)")
        parser.add_argument("--category", default="implementation")
        parser.add_argument("--difficulty", default="medium")
        parser.add_argument("--prompt", required=True)
        parser.add_argument("--tools", default="Read,Edit,Write,Bash,Glob,Grep")
        parser.add_argument("--backend", choices=["scripted", "claude"], default="scripted")
        parser.add_argument("--model", help="model name (a gateway may route only some)")
        parser.add_argument("--policy", default="echo", help="scripted model policy")
        parser.add_argument("--script", type=Path, help="JSON script for the scripted model")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--workspace", help="directory copied as the session's sandbox")
        parser.add_argument("--verifier", help="shell command deciding success afterwards")
        parser.add_argument("--max-turns", type=int, default=30)
        parser.add_argument("--timeout", type=float, default=600)
        parser.add_argument("--max-cost", type=float)

    def handle(self, *args, **o) -> None:
        task = self._task(o)
        try:
            spec = JobSpec(
                prompt=o["prompt"],
                allowed_tools=[t for t in o["tools"].split(",") if t],
                backend=o["backend"],
                model=o["model"],
                policy=o["policy"],
                seed=o["seed"],
                script=json.loads(o["script"].read_text()) if o["script"] else None,
                workspace=o["workspace"],
                verifier=o["verifier"],
                max_turns=o["max_turns"],
                timeout_s=o["timeout"],
                max_cost_usd=o["max_cost"],
            )
        except (ValidationError, OSError, json.JSONDecodeError) as exc:
            raise CommandError(f"bad collection settings: {exc}") from exc
        job = CollectionJob.objects.create(task=task, kind=JobKind.SESSION, spec=spec.model_dump())
        self.stdout.write(f"collecting job {job.pk} for task {task.name!r} …")
        finished = run_job(job.pk, owner="collect-command", on_message=self._progress)
        if finished is None:
            raise CommandError(f"job {job.pk} was not run (gone, or finished already)")
        ex = finished.execution
        if finished.status == JobStatus.FAILED or ex is None:
            raise CommandError(f"job {job.pk} failed: {finished.error}")
        if finished.status == JobStatus.CANCELLED:
            raise CommandError(f"job {job.pk} was cancelled: {finished.error}")
        example = ex.training_example
        self.stdout.write(
            f"{ex.get_status_display()}: success={ex.success} turns={ex.num_turns} "
            f"cost=${ex.cost_usd:.4f} quality={example.quality_score:.2f}"
            f"{' golden' if example.is_golden else ''}"
        )
        if ex.error:
            self.stdout.write(self.style.WARNING(ex.error))

    def _progress(self, message: object) -> None:
        """One line per message as it arrives: what the agent did, and the running turn."""
        for block in getattr(message, "content", None) or []:
            if isinstance(block, ToolUseBlock):
                self.stdout.write(f"  → {block.name} {json.dumps(block.input)[:80]}")
            elif isinstance(block, ToolResultBlock):
                self.stdout.write(f"  {'✗' if block.is_error else '✓'} result")
        if isinstance(message, SystemMessage) and message.subtype == "api_retry":
            self.stdout.write(self.style.WARNING(f"  … {describe_retry(message.data)}"))
        if isinstance(message, ResultMessage):
            ended = "error" if message.is_error else message.subtype
            status = message.api_error_status
            detail = f" (API status {status})" if status else ""
            self.stdout.write(f"  ■ {ended}{detail} after {message.num_turns} turns")

    def _task(self, o: dict) -> Task:
        if o["task"]:
            try:
                return Task.objects.get(pk=o["task"])
            except Task.DoesNotExist:
                raise CommandError(f"no task with id {o['task']}") from None
        if not o["name"]:
            raise CommandError("give --task ID or --name for a new task")
        try:
            definition = TaskDefinition(
                name=o["name"], category=o["category"], difficulty=o["difficulty"]
            )
        except ValidationError as exc:
            raise CommandError(str(exc)) from exc
        return definition.get_or_create_task()
