"""Tasks from the browser: defining them, collecting one, cancelling and retrying its job.

    task = save_task({"name": "Fix the parser", "category": "debugging", ...})
    job = start_collection(task, CollectParams(backend="scripted", seed=3), user=request.user)
    cancel_collection(job)   # queued: cancelled now; running: its worker stops at its next check
    retry_collection(job)    # a failed or cancelled job runs again, with a fresh execution

A task made from a template runs that template (its workspace, script, verifier and job kind);
any other task runs its description as the prompt in an empty sandbox, with the tools it
requires. Jobs of a generation batch are retried through their batch (`resume_batch`), which
keeps the batch's concurrency and cost ceiling.
"""

from __future__ import annotations

from typing import Any, Literal

from django.db import transaction
from django.forms.models import model_to_dict
from pydantic import BaseModel, ConfigDict, Field

from collection.jobs.runner import create_job, stop_job
from collection.models import CollectionJob, IllegalTransition, JobKind, Task
from collection.sessions.spec import JobSpec
from collection.task_templates import TaskTemplate, TaskTemplateLibrary

# What people edit on a task; the rest (metadata, template) comes from where it was made.
TASK_FIELDS = (
    "name",
    "description",
    "category",
    "difficulty",
    "required_tools",
    "expected_outcomes",
    "constraints",
)


def task_initial(task: Task) -> dict[str, Any]:
    """A task's editable fields as a form shows them (lists as text)."""
    initial = model_to_dict(task, fields=TASK_FIELDS)
    initial["required_tools"] = ", ".join(task.required_tools)
    initial["expected_outcomes"] = "\n".join(task.expected_outcomes)
    initial["constraints"] = "\n".join(task.constraints)
    return initial


def save_task(fields: dict[str, Any], task: Task | None = None) -> Task:
    """Create or update a task; raises `ValidationError` (per field) from the model's rules."""
    task = task or Task()
    for name in TASK_FIELDS:
        setattr(task, name, fields[name])
    task.full_clean()
    task.save()
    return task


class CollectParams(BaseModel):
    """How to collect a task: the model behind the session and, for scripted runs, the seed."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["scripted", "claude"] = "scripted"
    model: str | None = None
    seed: int = Field(default=0, ge=0)
    # Only for tasks without a template: what the agent is asked (default: the description).
    prompt: str = ""


def job_for_task(
    task: Task, params: CollectParams, library: TaskTemplateLibrary | None = None
) -> tuple[JobSpec, str]:
    """The spec and job kind that collect `task` with `params`."""
    template = _template_of(task, library)
    if template is not None:
        spec = template.job_spec(seed=params.seed, backend=params.backend)
        kind: str = template.job_kind
    else:
        spec, kind = _spec_without_template(task, params), JobKind.SESSION
    if params.model:
        spec = spec.model_copy(update={"model": params.model})
    return spec, kind


def _template_of(task: Task, library: TaskTemplateLibrary | None) -> TaskTemplate | None:
    if not task.source_template:
        return None
    library = library or TaskTemplateLibrary.load()
    try:
        return library.get(task.source_template)
    except KeyError:
        return None  # the template folder is gone: run the task as a plain one


def _spec_without_template(task: Task, params: CollectParams) -> JobSpec:
    prompt = params.prompt.strip() or task.description.strip() or task.name
    return JobSpec(
        prompt=prompt,
        allowed_tools=[str(tool) for tool in task.required_tools],
        backend=params.backend,
        # No script to play: the scripted model answers the prompt in one turn.
        policy="echo",
        seed=params.seed,
        verifier=str(task.metadata.get("verifier") or "") or None,
    )


def start_collection(
    task: Task,
    params: CollectParams,
    *,
    user: Any = None,
    library: TaskTemplateLibrary | None = None,
) -> CollectionJob:
    """Store a collection job for `task` and queue it once the transaction commits."""
    spec, kind = job_for_task(task, params, library)
    with transaction.atomic():
        return create_job(task, spec, kind=kind, user=user)


def cancel_collection(job: CollectionJob) -> CollectionJob:
    """Stop a job (now, when it is queued or its worker is gone; else at its worker's next
    check); raises `IllegalTransition` when it has finished already."""
    if job.is_finished:
        raise IllegalTransition(f"job {job.pk} has finished: nothing to cancel")
    stop_job(job)
    return job


def can_retry(job: CollectionJob) -> bool:
    """Whether the job page offers a retry: failed or cancelled, and not part of a batch."""
    return job.batch_id is None and job.can("requeue")


def retry_collection(job: CollectionJob) -> CollectionJob:
    """Run a failed or cancelled job again (the earlier execution stays, unlinked)."""
    if job.batch_id is not None:
        raise IllegalTransition(f"job {job.pk} belongs to a batch: resume the batch instead")
    with transaction.atomic():
        job.requeue()
    return job
