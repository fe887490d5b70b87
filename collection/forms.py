from __future__ import annotations

from django import forms


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
