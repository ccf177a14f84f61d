"""Models of the tagging app. Butler repos live here because every selection is made against one."""

from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import models

label_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", "Use letters, digits, '-', '_' and '.', starting with a letter or digit."
)


class ButlerRepo(models.Model):
    """A configured LSST Butler data repository, known to users by its label (e.g. ``demo``)."""

    label = models.CharField(max_length=64, unique=True, validators=[label_validator])
    config_uri = models.CharField(max_length=1024, help_text="Path or URI of the repository root or its butler.yaml.")
    description = models.TextField(blank=True)
    default_instrument = models.CharField(max_length=64, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["label"]

    def __str__(self) -> str:
        return self.label
