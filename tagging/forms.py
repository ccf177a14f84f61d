"""Web forms of the tagging app."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat

from .models import ButlerRepo, SetVisibility


class DataIdSetUploadForm(forms.Form):
    source = forms.ChoiceField(
        choices=[("file", "Upload a file"), ("query", "Run a Butler query")], widget=forms.RadioSelect, initial="file"
    )
    repo = forms.ModelChoiceField(queryset=ButlerRepo.objects.all(), to_field_name="label", label="Butler repo")
    name = forms.CharField(
        max_length=100, help_text="Letters, digits, '-', '_', '.'. An existing set of yours gets a new version."
    )
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), help_text="Why this set exists.")
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    visibility = forms.ChoiceField(choices=SetVisibility.choices, initial=SetVisibility.PRIVATE)
    file = forms.FileField(
        required=False,
        help_text="JSON, CSV, ECSV, VOTable, Parquet or FITS. Dimension names or alternate keys "
        "(obs_id, day_obs + seq_num, detector full name, visit name) as columns.",
    )
    format = forms.ChoiceField(
        required=False,
        choices=[
            ("", "from the file name"),
            ("json", "JSON"),
            ("csv", "CSV"),
            ("ecsv", "ECSV"),
            ("votable", "VOTable"),
            ("parquet", "Parquet"),
            ("fits", "FITS"),
        ],
    )
    query = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "class": "mono"}),
        label="Butler 'where' expression",
        help_text="e.g. instrument = 'DemoCam' AND exposure.day_obs = 20251121 AND band = 'r'",
    )
    dimensions = forms.CharField(
        required=False, help_text="Comma-separated, e.g. exposure, detector. Needed for a query; optional for a file."
    )
    drop_invalid = forms.BooleanField(
        required=False, label="Drop invalid data IDs", help_text="Store the valid ones and keep a report of the others."
    )
    comment = forms.CharField(required=False, max_length=1000)

    def clean_dimensions(self) -> list[str]:
        return [d.strip() for d in self.cleaned_data["dimensions"].split(",") if d.strip()]

    def clean(self):
        data = super().clean()
        if data.get("source") == "file":
            upload = data.get("file")
            if not upload:
                self.add_error("file", "Choose a file.")
            elif upload.size > settings.CM_DATAID_UPLOAD_MAX_BYTES:
                self.add_error(
                    "file",
                    f"The file is {filesizeformat(upload.size)}; at most {filesizeformat(settings.CM_DATAID_UPLOAD_MAX_BYTES)}.",
                )
        elif data.get("source") == "query":
            if not (data.get("query") or "").strip():
                self.add_error("query", "Write the query.")
            if not data.get("dimensions"):
                self.add_error("dimensions", "Say which dimensions the query returns.")
        return data
