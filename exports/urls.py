from __future__ import annotations

from django.urls import path

from exports import views

urlpatterns = [
    path("", views.index, name="exports-index"),
]
