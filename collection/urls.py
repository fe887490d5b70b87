from __future__ import annotations

from django.urls import path

from collection import views

urlpatterns = [
    path("", views.dashboard, name="collection-dashboard"),
    path("examples/", views.example_list, name="collection-example-list"),
    path("examples/<int:pk>/", views.example_detail, name="collection-example-detail"),
    path("examples/<int:pk>/review/", views.example_review, name="collection-example-review"),
    path("batches/", views.batch_list, name="collection-batch-list"),
    path("batches/<int:pk>/", views.batch_detail, name="collection-batch-detail"),
    path("batches/<int:pk>/<str:action>/", views.batch_action, name="collection-batch-action"),
    path("templates/", views.template_list, name="collection-template-list"),
    path("imports/", views.import_list, name="collection-import-list"),
    path("imports/<int:pk>/", views.import_detail, name="collection-import-detail"),
]
