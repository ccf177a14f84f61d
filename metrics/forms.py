"""Web forms of the metrics app: the explorer's filters and the threshold selection (the loop back)."""

from __future__ import annotations

from django import forms

from .selectors import OPERATORS


class MetricFilterForm(forms.Form):
    """Filters shared by the explorer and the comparison (read from the query string)."""

    metric = forms.CharField(required=False, max_length=200)
    band = forms.CharField(required=False, max_length=16)
    night_from = forms.IntegerField(required=False, min_value=19000101, max_value=29991231, label="Night from")
    night_to = forms.IntegerField(required=False, min_value=19000101, max_value=29991231, label="Night to")
    step = forms.CharField(required=False, max_length=100)
    detector = forms.IntegerField(required=False, min_value=0)
    value_min = forms.FloatField(required=False, label="Value ≥")
    value_max = forms.FloatField(required=False, label="Value ≤")
    x = forms.ChoiceField(
        required=False, choices=[("time", "exposure start time"), ("day_obs", "night")], label="Time axis"
    )

    def clean(self):
        data = super().clean()
        lo, hi = data.get("night_from"), data.get("night_to")
        if lo is not None and hi is not None and lo > hi:
            self.add_error("night_to", "The last night comes before the first.")
        lo, hi = data.get("value_min"), data.get("value_max")
        if lo is not None and hi is not None and lo > hi:
            self.add_error("value_max", "The upper value is below the lower one.")
        return data


class ThresholdSelectionForm(MetricFilterForm):
    """'Select where metric < or > threshold' with the explorer's filters: a new DataID set or reject tag table."""

    campaign = forms.IntegerField(widget=forms.HiddenInput)
    operator = forms.ChoiceField(choices=[("lt", "<"), ("gt", ">")])
    threshold = forms.FloatField()
    whole_exposures = forms.BooleanField(
        required=False, label="Whole exposures", help_text="One data ID per exposure instead of per detector."
    )
    statistic = forms.ChoiceField(
        required=False,
        choices=[("", "any detector"), ("median", "median"), ("mean", "mean"), ("min", "min"), ("max", "max")],
        label="Judged by",
        help_text="With whole exposures: which statistic of its detectors' values decides.",
    )
    store_as = forms.ChoiceField(
        choices=[("set", "a DataID set"), ("reject_table", "a reject tag table")], initial="set", required=False
    )
    name = forms.CharField(
        max_length=100, help_text="Name of the new DataID set or tag table (letters, digits, '-', '_', '.')."
    )
    reason = forms.CharField(max_length=1000, help_text="Why these data IDs are selected.")

    def clean_operator(self) -> str:
        value = self.cleaned_data["operator"]
        if value not in OPERATORS:
            raise forms.ValidationError("Choose < or >.")
        return value
