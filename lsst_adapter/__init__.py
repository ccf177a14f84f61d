"""The one place that talks to the LSST middleware (daf_butler, pipe_base, ctrl_bps).

Inputs and outputs are plain Python (str, int, dict, list, dataclasses) so that
the rest of the code never imports ``lsst.*`` and the middleware's version can
move. Imports of the middleware are lazy, inside functions: importing
``lsst.daf.butler`` costs about a second and 140 MB, which Django start-up and
most requests do not need.

Modules:
- ``where``: Butler ``where``-expression syntax checks.
- ``demo``: the DemoCam instrument and the demo repository builder.
- ``registry``: reading dimension records (exposures, detectors) from a repo.
- ``dataids``: dimension groups, known values, queries, TAGGED collections, data-ID tables.
- ``bps``: rendering BPS submit files, preparing and running workflows, reading their progress.
- ``bps_noop``: a WMS service that does nothing, to measure our own orchestration cost.
"""

from .where import WhereError, check_where_syntax, where_tree

__all__ = ["WhereError", "check_where_syntax", "where_tree"]
