from __future__ import annotations

from django.urls import path

from exports import views

urlpatterns = [
    path("", views.index, name="exports-index"),
    path("new/", views.create, name="exports-create"),
    path("<int:pk>/", views.job_detail, name="exports-job-detail"),
    path("<int:pk>/download/", views.download, name="exports-download"),
    path("<int:pk>/<str:action>/", views.job_action, name="exports-job-action"),
]
