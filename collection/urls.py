from __future__ import annotations

from django.urls import path

from collection.views import batches, examples, imports, templates

urlpatterns = [
    path("", examples.dashboard, name="collection-dashboard"),
    path("examples/", examples.example_list, name="collection-example-list"),
    path("examples/<int:pk>/", examples.example_detail, name="collection-example-detail"),
    path("examples/<int:pk>/review/", examples.example_review, name="collection-example-review"),
    path("batches/", batches.batch_list, name="collection-batch-list"),
    path("batches/<int:pk>/", batches.batch_detail, name="collection-batch-detail"),
    path("batches/<int:pk>/<str:action>/", batches.batch_action, name="collection-batch-action"),
    path("templates/", templates.template_list, name="collection-template-list"),
    path("imports/", imports.import_list, name="collection-import-list"),
    path("imports/<int:pk>/", imports.import_detail, name="collection-import-detail"),
]
