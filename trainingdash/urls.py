from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from collection import views as collection_views

urlpatterns = [
    path("", include("collection.urls")),
    path("exports/", include("exports.urls")),
    path("analytics/", include("exports.analytics.urls")),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("healthz", collection_views.healthz, name="healthz"),
]

# A database or broker outage met before any view (reading a signed-in user's session) still
# gets the page naming what is down.
handler500 = "trainingdash.http.server_error"
