from __future__ import annotations

from typing import Any

from django import forms

from collection.models import TEMPLATE_CATEGORIES, Difficulty
from collection.review import MAX_TAG_LENGTH


class ReviewForm(forms.Form):
    """The example page's and the queue's review form; its cleaned data is
    `collection.review.review_example`'s keyword arguments."""

    is_golden = forms.BooleanField(required=False, label="Golden")
    validated = forms.BooleanField(required=False)
    validator_notes = forms.CharField(
        required=False, max_length=10_000, label="Notes", widget=forms.Textarea(attrs={"rows": 3})
    )
    tags = forms.CharField(required=False, help_text="Comma-separated")
    quality_override = forms.FloatField(
        required=False,
        min_value=0,
        max_value=1,
        label="Quality override",
        help_text="0–1, replaces the scorer's score (rescoring keeps it). Empty: the scorer's.",
        widget=forms.NumberInput(attrs={"step": "0.01", "placeholder": "scorer's"}),
    )
    override_reason = forms.CharField(
        required=False,
        max_length=2000,
        label="Why override",
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def clean_tags(self) -> list[str]:
        raw = self.cleaned_data["tags"]
        tags = [t.strip() for t in raw.split(",") if t.strip()]
        too_long = [t for t in tags if len(t) > MAX_TAG_LENGTH]
        if too_long:
            raise forms.ValidationError(
                f"Tag {too_long[0][:20]!r}… is longer than {MAX_TAG_LENGTH} characters."
            )
        return tags

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        overriding = data.get("quality_override") is not None
        if overriding and not data.get("override_reason", "").strip():
            self.add_error("override_reason", "Say why you override the quality score.")
        return data


class StepMarkForm(forms.Form):
    """Mark a step of an example's trajectory bad (with an optional comment), or unmark it."""

    message = forms.IntegerField(min_value=1, help_text="the step's Message id")
    comment = forms.CharField(required=False, max_length=2000)
    action = forms.ChoiceField(choices=[("mark", "mark"), ("unmark", "unmark")])


def error_text(form: forms.Form) -> str:
    """A form's errors on one line, each naming its field: "message: Enter a whole number."."""
    return "; ".join(
        f"{name}: {' '.join(map(str, errors))}" if name != "__all__" else " ".join(map(str, errors))
        for name, errors in form.errors.items()
    )


class GenerateForm(forms.Form):
    examples_per_category = forms.IntegerField(min_value=1, max_value=1000, initial=2)
    categories = forms.MultipleChoiceField(
        choices=[(c, c) for c in TEMPLATE_CATEGORIES],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="none ticked: all",
    )
    difficulties = forms.MultipleChoiceField(
        choices=Difficulty.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="none ticked: all",
    )
    include_chains = forms.BooleanField(required=False, initial=True)
    include_multi_agent = forms.BooleanField(required=False, initial=True)
    seed = forms.IntegerField(
        required=False,
        min_value=0,
        help_text="Empty: a fresh random seed (shown on the batch's page). The same seed with the "
        "same settings and templates reproduces a batch exactly: same templates, same sessions.",
    )
    concurrency = forms.IntegerField(
        min_value=1, max_value=64, initial=2, help_text="sessions of this batch running at once"
    )
    backend = forms.ChoiceField(choices=[("scripted", "Scripted model"), ("claude", "Claude")])
    model = forms.CharField(
        required=False,
        max_length=100,
        help_text="For Claude: the model name (a gateway may route only some). Empty: the "
        "CLI's default.",
    )
    max_cost_usd = forms.FloatField(
        required=False,
        min_value=0.0001,
        label="Cost ceiling (USD)",
        help_text="No session starts once the spend plus the running sessions' budgets would "
        "pass it (a session's budget: its difficulty's cost budget).",
    )

    def params(self) -> dict:
        data = {k: v for k, v in self.cleaned_data.items() if v not in (None, [], "")}
        return data


class TemplateUploadForm(forms.Form):
    archive = forms.FileField(help_text="A .zip of one template folder (manifest.json, workspace/)")


class ImportUploadForm(forms.Form):
    file = forms.FileField(
        help_text="A Claude Code transcript (.jsonl), a stream-json log, a SWE-agent .traj, an "
        "OpenHands .json, or a .zip of any of these (e.g. a ~/.claude/projects folder)."
    )


def _lines(raw: str) -> list[str]:
    return [line.strip() for line in raw.splitlines() if line.strip()]


class TaskForm(forms.Form):
    """A task's fields as people type them; `collection.jobs.collections.save_task` stores
    them (the model's validators decide, so errors come back per field)."""

    name = forms.CharField(max_length=200)
    description = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="For a task without a template, this is what the agent is asked.",
    )
    category = forms.CharField(
        max_length=64,
        help_text=f"A lowercase slug: {', '.join(TEMPLATE_CATEGORIES)}, or your own.",
    )
    difficulty = forms.ChoiceField(choices=Difficulty.choices, initial=Difficulty.MEDIUM)
    required_tools = forms.CharField(required=False, help_text="Comma-separated: Read, Edit, Bash")
    expected_outcomes = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), help_text="One per line"
    )
    constraints = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), help_text="One per line"
    )

    def clean_required_tools(self) -> list[str]:
        return [t.strip() for t in self.cleaned_data["required_tools"].split(",") if t.strip()]

    def clean_expected_outcomes(self) -> list[str]:
        return _lines(self.cleaned_data["expected_outcomes"])

    def clean_constraints(self) -> list[str]:
        return _lines(self.cleaned_data["constraints"])


class CollectForm(forms.Form):
    """Start collecting one session of a task (see `collection.jobs.collections.CollectParams`)."""

    backend = forms.ChoiceField(choices=[("scripted", "Scripted model"), ("claude", "Claude")])
    model = forms.CharField(
        required=False,
        max_length=100,
        help_text="For Claude: the model name. Empty: the CLI's default.",
    )
    seed = forms.IntegerField(min_value=0, initial=0, help_text="Scripted: same seed, same run")
    prompt = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Tasks without a template: what the agent is asked. Empty: the description.",
    )

    def params(self) -> dict[str, object]:
        return {k: v for k, v in self.cleaned_data.items() if v not in (None, "")}
