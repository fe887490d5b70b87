"""The task template library: everyone reads it, admins add to it."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from collection.forms import TemplateUploadForm
from collection.models import TEMPLATE_CATEGORIES
from collection.roles import ADD_TEMPLATE, require_perm
from collection.task_templates import TaskTemplateLibrary, TemplateError
from collection.task_templates.upload import install_template_archive
from trainingdash.http import HtmxHttpRequest


@require_http_methods(["GET", "POST"])
@require_perm(ADD_TEMPLATE, methods=["POST"])
def template_list(request: HtmxHttpRequest) -> HttpResponse:
    form = TemplateUploadForm()
    added = None
    if request.method == "POST":
        form = TemplateUploadForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                added = install_template_archive(form.cleaned_data["archive"])
            except TemplateError as exc:
                form.add_error("archive", str(exc))
    library = TaskTemplateLibrary.load()
    context = {
        "form": form,
        "added": added,
        "library": library,
        "by_category": {c: library.templates(category=c) for c in TEMPLATE_CATEGORIES},
    }
    return render(
        request, "collection/template_list.html", context, status=400 if form.errors else 200
    )
