"""A small demo pipeline for the ``DemoCam`` instrument that really runs under ``pipetask`` and BPS.

``step1`` (:class:`~demo_pipeline.tasks.Step1Task`, per exposure × detector) turns each ``raw`` (a
dict of synthetic image statistics, see :mod:`lsst_adapter.demo`) into a ``calexpSummary`` and a
``step1_metrics`` bundle; ``step2`` (:class:`~demo_pipeline.tasks.Step2Task`, per visit) gathers the
``calexpSummary`` of a visit's detectors into a ``visitSummary`` and a ``step2_metrics`` bundle.
The pipeline definition is ``pipelines/drp.yaml`` at the top of the project.

This module imports nothing from the LSST middleware, so importing the package is cheap; the
tasks live in :mod:`demo_pipeline.tasks`.
"""

__version__ = "0.1.0"
