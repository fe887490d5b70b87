from __future__ import annotations

from django.urls import path

from collection import views

urlpatterns = [
    path("", views.dashboard, name="collection-dashboard"),
    path("examples/", views.example_list, name="collection-example-list"),
    path("examples/<int:pk>/", views.example_detail, name="collection-example-detail"),
    path("examples/<int:pk>/review/", views.example_review, name="collection-example-review"),
]
