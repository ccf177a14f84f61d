"""Web forms of exposure flags and the bad-data register (the services do the checking)."""

from __future__ import annotations

from django import forms

from .models import BadDataStatus, ButlerRepo, ExposureFlagValue


class FlagForm(forms.Form):
    message_text = forms.CharField(
        label="Message", widget=forms.Textarea(attrs={"rows": 2}), help_text="What is wrong or notable."
    )
    exposure_flag = forms.ChoiceField(label="Flag", choices=ExposureFlagValue.choices, initial=ExposureFlagValue.NONE)
    level = forms.TypedChoiceField(
        coerce=int,
        choices=[(10, "debug"), (20, "info"), (30, "warning"), (40, "error")],
        initial=20,
        help_text="As in the exposure log (Python logging levels).",
    )
    tags = forms.CharField(required=False, help_text="Words separated by spaces or commas, e.g. dome scattered-light")
    urls = forms.CharField(required=False, label="Links", help_text="URLs separated by spaces")


class FlagImportForm(forms.Form):
    repo = forms.ModelChoiceField(queryset=ButlerRepo.objects.all(), to_field_name="label", label="Butler repo")
    file = forms.FileField(help_text="A JSON export of exposure-log messages (a list of message objects).")


class BadDataForm(forms.Form):
    repo = forms.ModelChoiceField(queryset=ButlerRepo.objects.all(), to_field_name="label", label="Butler repo")
    summary = forms.CharField(max_length=200, help_text="What is wrong, in one line.")
    data_id = forms.CharField(
        required=False,
        label="Data ID",
        help_text="e.g. instrument=DemoCam, exposure=2025112100156, detector=4 (or obs_id=…, detector=R22_S11).",
    )
    dataset_type = forms.CharField(required=False, max_length=200)
    dataset_id = forms.CharField(required=False, label="Dataset id (UUID)")
    collection = forms.CharField(required=False, max_length=512)
    explanation = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    links = forms.CharField(required=False, help_text="URLs separated by spaces")
    status = forms.ChoiceField(choices=BadDataStatus.choices, initial=BadDataStatus.OPEN)

    def clean_data_id(self) -> dict:
        return parse_data_id(self.cleaned_data.get("data_id") or "")


def parse_data_id(text: str) -> dict:
    """``key=value`` pairs separated by commas (integers become numbers); the service checks them."""
    out: dict = {}
    for part in [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]:
        if "=" not in part:
            raise forms.ValidationError(f"Write key=value pairs separated by commas; {part!r} has no '='.")
        key, value = (s.strip() for s in part.split("=", 1))
        out[key] = int(value) if value.lstrip("-").isdigit() else value
    return out


class BadDataStatusForm(forms.Form):
    status = forms.ChoiceField(choices=BadDataStatus.choices)
    explanation = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    comment = forms.CharField(required=False)
