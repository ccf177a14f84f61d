"""Signals of the campaigns app, for the layers above it (metrics) to react without campaigns importing them.

``group_outputs_final``: a group ended with outputs that count: it succeeded, or a person accepted it as it is
(a partly failed group whose successful quanta stand). Sent inside the transaction that moved the group, with
``group_id`` and ``status``; receivers defer their work to the commit (``transaction.on_commit``). The metrics
app ingests the group's metric bundles (``MetricsConfig.ready`` connects it).
"""

from __future__ import annotations

from django.dispatch import Signal

group_outputs_final = Signal()
