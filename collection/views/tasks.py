"""Tasks: the list, one task with its recent jobs, creating and editing one (admins), and
starting a collection of it from the browser (admins)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Count, Q, QuerySet
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from collection.forms import CollectForm, TaskForm
from collection.jobs.collections import (
    CollectParams,
    save_task,
    start_collection,
    task_initial,
)
from collection.models import Execution, Task
from collection.roles import ADD_TASK, CHANGE_TASK, COLLECT, require_perm
from trainingdash.http import HtmxHttpRequest

PAGE_SIZE = 50


def _filtered_tasks(request: HtmxHttpRequest) -> QuerySet[Task]:
    tasks = Task.objects.only(
        "name", "category", "difficulty", "source_template", "created_at"
    ).order_by("-pk")
    if q := request.GET.get("q", "").strip():
        tasks = tasks.filter(Q(name__icontains=q) | Q(description__icontains=q))
    if category := request.GET.get("category", "").strip():
        tasks = tasks.filter(category=category)
    return tasks


def _page(tasks: QuerySet[Task], before: str) -> tuple[list[Task], int | None]:
    """One page of tasks, newest first, after the cursor `before` (a task id); and the next
    page's cursor, None on the last page. Keyset: a deep page costs what the first does."""
    if before.isdigit():
        tasks = tasks.filter(pk__lt=int(before))
    rows = list(tasks[: PAGE_SIZE + 1])
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    return rows, (rows[-1].pk if more else None)


def _execution_counts(tasks: list[Task]) -> dict[int, int]:
    """Sessions per task, for this page's tasks only."""
    counts = (
        Execution.objects.filter(task_id__in=[t.pk for t in tasks])
        .values("task_id")
        .annotate(n=Count("id"))
    )
    return {row["task_id"]: row["n"] for row in counts}


@require_GET
def task_list(request: HtmxHttpRequest) -> HttpResponse:
    tasks, next_cursor = _page(_filtered_tasks(request), request.GET.get("before", ""))
    counts = _execution_counts(tasks)
    for task in tasks:
        task.execution_count = counts.get(task.pk, 0)  # type: ignore[attr-defined]
    context = {
        "tasks": tasks,
        "next_cursor": next_cursor,
        "q": request.GET.get("q", ""),
        "category": request.GET.get("category", ""),
        "categories": Task.objects.values_list("category", flat=True).distinct().order_by(),
    }
    return render(request, "collection/task_list.html", context)


def _save(form: TaskForm, task: Task | None = None) -> Task | None:
    """Store a valid form's task; None (errors on the form) when the model says no."""
    try:
        return save_task(form.cleaned_data, task)
    except ValidationError as exc:
        form.add_error(None, exc)
        return None


def _task_form_page(request: HtmxHttpRequest, form: TaskForm, task: Task | None) -> HttpResponse:
    status = 400 if form.errors else 200
    context = {"form": form, "task": task}
    return render(request, "collection/task_form.html", context, status=status)


@require_http_methods(["GET", "POST"])
@require_perm(ADD_TASK)
def task_create(request: HtmxHttpRequest) -> HttpResponse:
    form = TaskForm(request.POST or None)
    if request.method == "POST" and form.is_valid() and (task := _save(form)):
        return redirect("collection-task-detail", pk=task.pk)
    return _task_form_page(request, form, None)


@require_http_methods(["GET", "POST"])
@require_perm(CHANGE_TASK)
def task_edit(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    task = get_object_or_404(Task, pk=pk)
    form = TaskForm(request.POST or None, initial=task_initial(task))
    if request.method == "POST" and form.is_valid() and _save(form, task):
        return redirect("collection-task-detail", pk=task.pk)
    return _task_form_page(request, form, task)


def _detail_context(task: Task, form: CollectForm | None = None) -> dict[str, Any]:
    jobs = task.jobs.select_related("execution__training_example", "created_by").order_by("-pk")
    return {
        "task": task,
        "collect_form": form or CollectForm(initial={"prompt": task.description}),
        "jobs": jobs[:20],
        "execution_count": task.executions.count(),
    }


@require_GET
def task_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    task = get_object_or_404(Task, pk=pk)
    return render(request, "collection/task_detail.html", _detail_context(task))


@require_POST
@require_perm(COLLECT)
def task_collect(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    task = get_object_or_404(Task, pk=pk)
    form = CollectForm(request.POST)
    if form.is_valid():
        try:
            params = CollectParams.model_validate(form.params())
            job = start_collection(task, params, user=request.user)
        except ValueError as exc:  # pydantic's ValidationError, or a spec the runner refuses
            form.add_error(None, str(exc))
        else:
            return redirect("collection-job-detail", pk=job.pk)
    context = _detail_context(task, form)
    return render(request, "collection/task_detail.html", context, status=400)
