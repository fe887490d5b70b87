from __future__ import annotations

from django.urls import path

from collection.views import (
    batches,
    examples,
    imports,
    jobs,
    review,
    tasks,
    templates,
    trajectories,
)

urlpatterns = [
    path("", examples.dashboard, name="collection-dashboard"),
    # Finding examples: the list, its filters and bulk actions over a whole filtered result.
    path("examples/", examples.example_list, name="collection-example-list"),
    path("examples/bulk/", examples.example_bulk, name="collection-example-bulk"),
    # Reading a trajectory.
    path("examples/<int:pk>/", trajectories.example_detail, name="collection-example-detail"),
    path("executions/<int:pk>/", trajectories.execution_detail, name="collection-execution-detail"),
    path(
        "executions/<int:pk>/tool-calls/<int:call_pk>/",
        trajectories.tool_output,
        name="collection-tool-output",
    ),
    path(
        "executions/<int:pk>/messages/<int:message_pk>/raw/",
        trajectories.message_raw,
        name="collection-message-raw",
    ),
    # Reviewing.
    path("examples/<int:pk>/review/", review.example_review, name="collection-example-review"),
    path("examples/<int:pk>/steps/", review.step_mark, name="collection-example-step-mark"),
    path("review/", review.review_queue, name="collection-review-queue"),
    # Tasks and collection jobs.
    path("tasks/", tasks.task_list, name="collection-task-list"),
    path("tasks/new/", tasks.task_create, name="collection-task-create"),
    path("tasks/<int:pk>/", tasks.task_detail, name="collection-task-detail"),
    path("tasks/<int:pk>/edit/", tasks.task_edit, name="collection-task-edit"),
    path("tasks/<int:pk>/collect/", tasks.task_collect, name="collection-task-collect"),
    path("jobs/", jobs.job_list, name="collection-job-list"),
    path("jobs/<int:pk>/", jobs.job_detail, name="collection-job-detail"),
    path("jobs/<int:pk>/<str:action>/", jobs.job_action, name="collection-job-action"),
    # Generation, templates, imports.
    path("batches/", batches.batch_list, name="collection-batch-list"),
    path("batches/<int:pk>/", batches.batch_detail, name="collection-batch-detail"),
    path("batches/<int:pk>/<str:action>/", batches.batch_action, name="collection-batch-action"),
    path("templates/", templates.template_list, name="collection-template-list"),
    path("imports/", imports.import_list, name="collection-import-list"),
    path("imports/<int:pk>/", imports.import_detail, name="collection-import-detail"),
]
