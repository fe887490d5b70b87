"""The task pages: list, detail, create, edit, and starting a collection from the browser."""

from __future__ import annotations

import pytest

from collection.jobs.collections import CollectParams, job_for_task
from collection.models import CollectionJob, JobKind, Task
from collection.task_templates import TaskTemplateLibrary
from tests.factories import make_execution, make_task

pytestmark = pytest.mark.django_db

NEW_TASK = {
    "name": "Parse dates",
    "description": "Write parse_date() for ISO dates",
    "category": "implementation",
    "difficulty": "easy",
    "required_tools": "Read, Write , Bash",
    "expected_outcomes": "tests pass\n\nno new dependency",
    "constraints": "",
}


def template_task() -> Task:
    template = TaskTemplateLibrary.load().templates(category="testing")[0]
    return template.task_definition().get_or_create_task()


@pytest.mark.parametrize("role", ["viewer", "reviewer", "admin_user"])
def test_every_role_reads_the_task_list_and_a_task(client, request, role):
    task = make_task(name="Fix the flaky test")
    make_execution(task)
    client.force_login(request.getfixturevalue(role))
    listing = client.get("/tasks/")
    assert listing.status_code == 200
    assert f'<a href="/tasks/{task.pk}/">Fix the flaky test</a>'.encode() in listing.content
    assert client.get(f"/tasks/{task.pk}/").status_code == 200


def test_the_list_shows_each_tasks_session_count(client, viewer):
    task = make_task()
    make_execution(task)
    make_execution(task, session_id="sess-2")
    client.force_login(viewer)
    page = client.get("/tasks/")
    assert page.context["tasks"][0].execution_count == 2


def test_the_list_filters_by_text_and_category(client, viewer):
    make_task(name="Fix the flaky test", category="debugging")
    make_task(name="Review the login code", category="code_review")
    client.force_login(viewer)
    names = [t.name for t in client.get("/tasks/?q=flaky").context["tasks"]]
    assert names == ["Fix the flaky test"]
    names = [t.name for t in client.get("/tasks/?category=code_review").context["tasks"]]
    assert names == ["Review the login code"]


def test_the_list_pages_by_cursor_newest_first(client, viewer, monkeypatch):
    monkeypatch.setattr("collection.views.tasks.PAGE_SIZE", 2)
    tasks = [make_task(name=f"task {i}") for i in range(5)]
    client.force_login(viewer)
    first = client.get("/tasks/")
    assert [t.name for t in first.context["tasks"]] == ["task 4", "task 3"]
    assert first.context["next_cursor"] == tasks[3].pk
    last = client.get(f"/tasks/?before={tasks[1].pk}")
    assert [t.name for t in last.context["tasks"]] == ["task 0"]
    assert last.context["next_cursor"] is None


def test_viewers_and_reviewers_see_no_create_edit_or_collect_controls(client, reviewer):
    task = make_task()
    client.force_login(reviewer)
    assert b'href="/tasks/new/"' not in client.get("/tasks/").content
    page = client.get(f"/tasks/{task.pk}/").content
    assert f'href="/tasks/{task.pk}/edit/"'.encode() not in page
    assert b'id="collect-form"' not in page


def test_an_admin_creates_a_task(client, admin_user):
    client.force_login(admin_user)
    response = client.post("/tasks/new/", NEW_TASK)
    task = Task.objects.get(name="Parse dates")
    assert response.status_code == 302
    assert response.headers["Location"] == f"/tasks/{task.pk}/"
    assert task.required_tools == ["Read", "Write", "Bash"]
    assert task.expected_outcomes == ["tests pass", "no new dependency"]
    assert task.constraints == []


def test_a_bad_category_is_refused_on_its_field(client, admin_user):
    client.force_login(admin_user)
    response = client.post("/tasks/new/", NEW_TASK | {"category": "Not A Slug"})
    assert response.status_code == 400
    assert "category" in response.context["form"].errors
    assert not Task.objects.exists()


def test_an_admin_edits_a_task_from_a_form_filled_with_it(client, admin_user):
    task = make_task(required_tools=["Read", "Bash"], expected_outcomes=["a", "b"])
    client.force_login(admin_user)
    form = client.get(f"/tasks/{task.pk}/edit/").context["form"]
    assert form.initial["required_tools"] == "Read, Bash"
    assert form.initial["expected_outcomes"] == "a\nb"
    response = client.post(f"/tasks/{task.pk}/edit/", NEW_TASK | {"name": "Renamed"})
    assert response.status_code == 302
    task.refresh_from_db()
    assert (task.name, task.category) == ("Renamed", "implementation")


def test_editing_a_missing_task_is_404(client, admin_user):
    client.force_login(admin_user)
    assert client.get("/tasks/999/edit/").status_code == 404


@pytest.mark.parametrize("role", ["viewer", "reviewer"])
def test_only_admins_create_edit_or_collect(client, request, role, stub_broker):
    task = make_task()
    client.force_login(request.getfixturevalue(role))
    assert client.get("/tasks/new/").status_code == 403
    assert client.post("/tasks/new/", NEW_TASK).status_code == 403
    assert client.post(f"/tasks/{task.pk}/edit/", NEW_TASK).status_code == 403
    assert client.post(f"/tasks/{task.pk}/collect/", {"backend": "scripted"}).status_code == 403
    assert Task.objects.count() == 1 and not CollectionJob.objects.exists()


def test_an_admin_starts_collecting_a_task_and_lands_on_its_job(
    client, admin_user, stub_broker, django_capture_on_commit_callbacks
):
    task = make_task(description="Say hello")
    client.force_login(admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        data = {"backend": "scripted", "seed": "4"}
        response = client.post(f"/tasks/{task.pk}/collect/", data)
    job = CollectionJob.objects.get()
    assert response.status_code == 302
    assert response.headers["Location"] == f"/jobs/{job.pk}/"
    assert (job.task, job.created_by, job.kind) == (task, admin_user, JobKind.SESSION)
    assert job.spec["prompt"] == "Say hello"
    assert (job.spec["backend"], job.spec["seed"], job.spec["policy"]) == ("scripted", 4, "echo")
    assert stub_broker.queues["collection"].qsize() == 1


def test_a_prompt_typed_in_the_form_replaces_the_description(client, admin_user, stub_broker):
    task = make_task(description="Say hello")
    client.force_login(admin_user)
    data = {"backend": "claude", "seed": "0", "model": "claude-x", "prompt": "Say bye"}
    client.post(f"/tasks/{task.pk}/collect/", data)
    spec = CollectionJob.objects.get().spec
    assert (spec["prompt"], spec["backend"], spec["model"]) == ("Say bye", "claude", "claude-x")


def test_a_bad_collect_form_answers_400_and_starts_nothing(client, admin_user, stub_broker):
    task = make_task()
    client.force_login(admin_user)
    response = client.post(f"/tasks/{task.pk}/collect/", {"backend": "gpt", "seed": "-1"})
    assert response.status_code == 400
    assert set(response.context["collect_form"].errors) == {"backend", "seed"}
    assert not CollectionJob.objects.exists()


def test_collect_is_post_only(client, admin_user):
    task = make_task()
    client.force_login(admin_user)
    assert client.get(f"/tasks/{task.pk}/collect/").status_code == 405


def test_a_template_task_runs_its_template():
    task = template_task()
    spec, kind = job_for_task(task, CollectParams(seed=2))
    template = TaskTemplateLibrary.load().get(task.source_template)
    assert spec == template.job_spec(seed=2)
    assert kind == template.job_kind


def test_a_task_whose_template_is_gone_runs_as_a_plain_task():
    task = make_task(source_template="no_such_template", description="Do it")
    spec, kind = job_for_task(task, CollectParams(model="m"))
    assert (spec.prompt, spec.workspace, spec.model, kind) == ("Do it", None, "m", JobKind.SESSION)


def test_the_template_task_page_hides_the_prompt_field(client, admin_user):
    task = template_task()
    client.force_login(admin_user)
    page = client.get(f"/tasks/{task.pk}/").content.decode()
    assert 'id="collect-form"' in page
    assert 'name="prompt"' not in page
    assert task.source_template in page
