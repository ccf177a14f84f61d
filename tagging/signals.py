"""Signals the tagging app sends for the other apps to follow (tagging depends on none of them)."""

from __future__ import annotations

from django.dispatch import Signal

#: Sent with ``repo`` (a ButlerRepo) once a mirror sync that added or removed exposures or detectors has
#: committed: what was worked out from the mirror before (which exposures a group covers) may have changed.
mirror_changed = Signal()
