from __future__ import annotations

from django import forms

from collection.models import TEMPLATE_CATEGORIES, Difficulty


class ReviewForm(forms.Form):
    is_golden = forms.BooleanField(required=False, label="Golden")
    validated = forms.BooleanField(required=False)
    validator_notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    tags = forms.CharField(required=False, help_text="Comma-separated")

    def clean_tags(self) -> list[str]:
        raw = self.cleaned_data["tags"]
        tags = [t.strip() for t in raw.split(",") if t.strip()]
        too_long = [t for t in tags if len(t) > 50]
        if too_long:
            raise forms.ValidationError(f"Tag {too_long[0][:20]!r}… is longer than 50 characters.")
        return tags


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
