"""A template job's spec as this machine runs it: the one place a job's template reference
becomes paths. The web process stores specs that name their template and keep the placeholders
of its commands; the worker fills them right before the session starts, wherever it runs.

    spec = resolve_spec(JobSpec.model_validate(job.spec))
    spec.workspace   # this machine's copy of the template's workspace
    spec.verifier    # "{python} -m pytest -q {checks}" with this machine's interpreter and checks

A built-in template is this installation's; an uploaded one comes from the shared store (fetched
into this machine's cache by digest); a template of a TRAININGDASH_TEMPLATE_DIRS folder is looked
up by name in this machine's folders. A spec without a reference (a plain task, or a job stored
with absolute paths before references) is returned as it is.
"""

from __future__ import annotations

from collection.sessions.spec import JobSpec, TemplateRef

from .library import (
    BUILTIN_DIR,
    MANIFEST,
    TaskTemplate,
    _subfolders,
    expand,
    expand_script,
    load_template,
    settings_dirs,
    stored_template,
)
from .manifest import TemplateError


def find_template(ref: TemplateRef) -> TaskTemplate:
    """The template `ref` names, on this machine; `TemplateError` when it has none. Only its
    folder is read (not the whole library): this runs before every session."""
    if ref.digest:
        return stored_template(ref.name, ref.digest)
    roots = [BUILTIN_DIR] if ref.builtin else settings_dirs()
    for root in roots:  # in the library's order: the first folder of that name wins
        for category in _subfolders(root):
            if (category / ref.name / MANIFEST).is_file():
                return load_template(category / ref.name, builtin=ref.builtin)
    where = "built-in" if ref.builtin else "TRAININGDASH_TEMPLATE_DIRS"
    raise TemplateError(f"no {where} template named {ref.name!r} on this machine")


def resolve_spec(spec: JobSpec) -> JobSpec:
    """`spec` with its template's workspace and placeholders filled for this machine."""
    if spec.template is None:
        return spec
    root = find_template(spec.template).root
    chain = spec.chain
    if chain is not None:
        steps = [
            step.model_copy(
                update={"extra": step.extra | {"script": expand_script(step.extra["script"], root)}}
            )
            if "script" in step.extra
            else step
            for step in chain.steps
        ]
        chain = chain.model_copy(update={"steps": steps})
    return spec.model_copy(
        update={
            "workspace": str(root / "workspace"),
            "verifier": expand(spec.verifier, root) if spec.verifier else spec.verifier,
            "script": expand_script(spec.script, root),
            "chain": chain,
        }
    )
