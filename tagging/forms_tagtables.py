"""Web forms of tag tables: a new table with its columns, a new column, an upload."""

from __future__ import annotations

from django import forms

from .models import ButlerRepo, ColumnType, Polarity, SetVisibility


class TagTableForm(forms.Form):
    repo = forms.ModelChoiceField(queryset=ButlerRepo.objects.all(), to_field_name="label", label="Butler repo")
    name = forms.CharField(max_length=100, help_text="Letters, digits, '-', '_', '.'; unique in the repo.")
    key_dimensions = forms.CharField(
        initial="exposure",
        label="Key dimensions",
        help_text="What a row is about, comma-separated: exposure; visit, detector; tract, patch.",
    )
    polarity = forms.ChoiceField(choices=Polarity.choices, initial=Polarity.NEUTRAL)
    visibility = forms.ChoiceField(choices=SetVisibility.choices, initial=SetVisibility.PRIVATE)
    purpose = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), help_text="What the rows are for, e.g. 'wonky for PSF work'."
    )
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def clean_key_dimensions(self) -> list[str]:
        return [d.strip() for d in self.cleaned_data["key_dimensions"].split(",") if d.strip()]


class TagColumnForm(forms.Form):
    name = forms.CharField(max_length=64, required=False)
    type = forms.ChoiceField(choices=ColumnType.choices, initial=ColumnType.STRING)
    enum_values = forms.CharField(required=False, label="Enum values", help_text="comma-separated, for enum")
    unit = forms.CharField(max_length=32, required=False)
    description = forms.CharField(required=False)
    required = forms.BooleanField(required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        number = int(self.prefix.rsplit("-", 1)[-1]) + 1 if self.prefix and self.prefix[-1].isdigit() else 0
        for name, field in self.fields.items():
            # The grid's column headers label these visually; screen readers get their own label.
            field.widget.attrs["aria-label"] = f"Column {number}: {field.label or name}"


TagColumnFormSet = forms.formset_factory(TagColumnForm, extra=4, max_num=100)


class TagRowsUploadForm(forms.Form):
    file = forms.FileField(
        help_text="CSV or JSON. Data-ID columns (exposure, or obs_id, or day_obs + seq_num; detector id or "
        "full name; visit id or name) and one column per table column, by name."
    )
    format = forms.ChoiceField(required=False, choices=[("", "from the file name"), ("csv", "CSV"), ("json", "JSON")])
    reason = forms.CharField(required=False, max_length=1000, help_text="Kept in every row's history.")
    drop_invalid = forms.BooleanField(
        required=False, label="Drop invalid rows", help_text="Store the valid rows and report the others."
    )
