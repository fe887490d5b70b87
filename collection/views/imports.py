"""Importing transcripts uploaded in the browser: the upload form and each upload's report."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import HttpResponseStopPolling

from collection.forms import ImportUploadForm
from collection.importers.watch import watched_folders
from collection.jobs.uploads import UploadError, receive_upload
from collection.models import ImportUpload
from collection.roles import IMPORT, require_perm, signed_in_user
from trainingdash.http import HtmxHttpRequest


@require_http_methods(["GET", "POST"])
@require_perm(IMPORT)
def import_list(request: HtmxHttpRequest) -> HttpResponse:
    form = ImportUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            record = receive_upload(form.cleaned_data["file"], signed_in_user(request))
        except UploadError as exc:
            form.add_error("file", str(exc))
        else:
            return redirect("collection-import-detail", pk=record.pk)
    uploads = ImportUpload.objects.select_related("created_by")[:50]
    status = 400 if form.errors else 200
    return render(
        request,
        "collection/import_list.html",
        {"form": form, "uploads": uploads, "watched": watched_folders()},
        status=status,
    )


@require_GET
@require_perm(IMPORT)
def import_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    record = get_object_or_404(ImportUpload, pk=pk)
    context = {"upload": record, "report": record.report}
    if not request.htmx:
        return render(request, "collection/import_detail.html", context)
    response = render(request, "collection/import_detail.html#report", context)
    return response if record.is_active else HttpResponseStopPolling(response.content)
