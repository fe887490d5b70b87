from __future__ import annotations

from django.urls import path

from exports.analytics import views

urlpatterns = [
    path("", views.index, name="analytics-index"),
    path("report.html", views.report_html, name="analytics-report-html"),
    path("report.zip", views.report_zip, name="analytics-report-zip"),
    path("plotly.min.js", views.plotly_js, name="analytics-plotly-js"),
    path("plotly.css", views.plotly_css, name="analytics-plotly-css"),
]
