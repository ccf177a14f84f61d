"""The figure builders, without a database: figure types, bins, NaN/None handling, click URLs."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import pytest

from metrics import charts
from metrics.charts import DetectorCell, ExposurePoint, HistogramSeries, PairPoint, ProgressSeries

URL = "/data/repos/{repo}/exposures/{exposure}/"


def point(exposure: int, value, **extra) -> ExposurePoint:
    defaults = {
        "label": "psf-a",
        "repo": "demo",
        "day_obs": 20251121,
        "begin": datetime(2025, 11, 22, 1, exposure % 60, tzinfo=UTC),
        "ra": 10.0 + exposure % 7,
        "dec": -30.0,
    }
    return ExposurePoint(exposure=exposure, value=value, **{**defaults, **extra})


def as_json(figure) -> str:
    # What the view does: plain JSON, no NaN allowed.
    return json.dumps(figure, allow_nan=False)


def test_histogram_figure_draws_one_bar_trace_per_campaign_at_the_bin_centres():
    a = HistogramSeries("psf-a", [0.0, 1.0, 2.0, 3.0], [1, 5, 2])
    b = HistogramSeries("psf-b", [0.0, 1.0, 2.0, 3.0], [0, 3, 4], nulls=2)
    figure = charts.histogram_figure([a, b], metric="demo.psf_fwhm", unit="arcsec")
    assert [t["type"] for t in figure["data"]] == ["bar", "bar"]
    assert figure["data"][0]["x"] == [0.5, 1.5, 2.5]
    assert figure["data"][0]["width"] == [1.0, 1.0, 1.0]
    assert figure["data"][1]["y"] == [0, 3, 4]
    assert "2 NaN/inf not shown" in figure["data"][1]["name"]
    assert figure["layout"]["barmode"] == "overlay"
    assert figure["layout"]["xaxis"]["title"]["text"] == "demo.psf_fwhm [arcsec]"
    as_json(figure)


def test_histogram_figure_refuses_edges_that_do_not_match_the_counts():
    with pytest.raises(ValueError, match="3 counts need 4 edges"):
        charts.histogram_figure([HistogramSeries("x", [0.0, 1.0], [1, 2, 3])], metric="m")


def test_histogram_with_no_finite_value_says_so_instead_of_empty_axes():
    figure = charts.histogram_figure([HistogramSeries("a", [0.0, 1.0], [0], nulls=7)], metric="m")
    assert figure["data"] == []
    assert "No finite values" in figure["layout"]["annotations"][0]["text"]


def test_time_figure_is_webgl_with_the_exposure_url_of_every_point_and_skips_nan_and_none():
    points = [point(1, 0.8), point(2, float("nan")), point(3, None), point(4, float("inf")), point(5, 0.9)]
    figure = charts.time_figure(points, metric="m", url_template=URL)
    (trace,) = figure["data"]
    assert trace["type"] == "scattergl"
    assert trace["y"] == [0.8, 0.9]
    assert trace["customdata"] == ["/data/repos/demo/exposures/1/", "/data/repos/demo/exposures/5/"]
    assert trace["x"][0].startswith("2025-11-22T01:01")
    assert figure["layout"]["xaxis"]["type"] == "date"
    as_json(figure)


def test_time_figure_against_nights_uses_day_obs_as_dates_and_one_trace_per_campaign():
    points = [point(1, 0.8), point(2, 0.7, label="psf-b", day_obs=20251122)]
    figure = charts.time_figure(points, metric="m", url_template=URL, x="day_obs")
    assert [t["name"] for t in figure["data"]] == ["psf-a", "psf-b"]
    assert figure["data"][1]["x"] == ["2025-11-22"]
    with pytest.raises(ValueError):
        charts.time_figure(points, metric="m", url_template=URL, x="seq_num")


def test_sky_figure_colours_points_by_value_reverses_ra_and_drops_points_without_pointing():
    figure = charts.sky_figure(
        [point(1, 0.8), point(2, 0.9, ra=None), point(3, None)], metric="m", unit="arcsec", url_template=URL
    )
    (trace,) = figure["data"]
    assert trace["type"] == "scattergl"
    assert trace["marker"]["color"] == [0.8]
    assert trace["customdata"] == ["/data/repos/demo/exposures/1/"]
    assert figure["layout"]["xaxis"]["autorange"] == "reversed"
    assert charts.sky_figure([point(2, 0.9, ra=None)], metric="m", url_template=URL)["data"] == []


@pytest.mark.parametrize(
    ("name", "position"), [("R22_S11", (7, 7)), ("R00_S00", (0, 0)), ("R01_S02", (5, 0)), ("R10_S21", (1, 5))]
)
def test_focal_plane_positions_come_from_raft_and_sensor_in_the_full_name(name, position):
    assert charts.focal_plane_position(name) == position


def test_focal_plane_heat_map_puts_each_detector_at_its_place_and_keeps_holes_empty():
    cells = [
        DetectorCell(0, 1.0, 10, "R22_S00"),
        DetectorCell(4, 2.0, 10, "R22_S11"),
        DetectorCell(8, None, 10, "R22_S22"),  # only NaN values: an empty cell, not a crash
        DetectorCell(5, float("nan"), 3, "R22_S12"),
    ]
    figure = charts.focal_plane_figure(cells, metric="m")
    (trace,) = figure["data"]
    assert trace["type"] == "heatmap"
    assert trace["x"] == [6, 7, 8] and trace["y"] == [6, 7, 8]
    assert trace["z"][0][0] == 1.0
    assert trace["z"][1][1] == 2.0
    assert trace["z"][2][2] is None
    assert trace["z"][1][2] is None
    assert trace["z"][0][2] is None  # R22_S02 has no value: a hole
    assert "R22_S11" in trace["text"][1][1]
    as_json(figure)


def test_focal_plane_falls_back_to_a_square_grid_for_other_detector_names():
    cells = [DetectorCell(i, float(i), 1, f"CCD{i}") for i in range(5)]
    (trace,) = charts.focal_plane_figure(cells, metric="m")["data"]
    assert len(trace["x"]) == 3 and len(trace["y"]) == 2
    assert trace["z"][1][1] == 4.0


def test_comparison_scatter_has_the_diagonal_and_click_urls_and_ignores_unpaired_values():
    pairs = [
        PairPoint("demo", 10, 1, "exposure=10,detector=1", 1.0, 1.5),
        PairPoint("demo", 11, 1, "exposure=11,detector=1", 2.0, None),
        PairPoint("demo", 12, 1, "exposure=12,detector=1", float("nan"), 2.0),
    ]
    figure = charts.comparison_scatter_figure(pairs, metric="m", label_a="A", label_b="B", url_template=URL)
    points, diagonal = figure["data"]
    assert points["type"] == "scattergl"
    assert points["x"] == [1.0] and points["y"] == [1.5]
    assert points["customdata"] == ["/data/repos/demo/exposures/10/"]
    assert diagonal["x"] == [1.0, 1.5] == diagonal["y"]
    assert pairs[0].diff == 0.5 and pairs[1].diff is None
    as_json(figure)


def test_difference_histogram_marks_zero():
    figure = charts.difference_histogram_figure(HistogramSeries("B − A", [-1.0, 0.0, 1.0], [2, 3]), metric="m")
    assert figure["data"][0]["type"] == "bar"
    assert figure["layout"]["shapes"][0]["x0"] == 0


def test_overview_figures_progress_states_failures_and_run_times():
    t = datetime(2025, 11, 22, 1, 0, tzinfo=UTC)
    progress = charts.progress_figure([ProgressSeries("succeeded", [t, t], [1, 2]), ProgressSeries("failed")], total=5)
    assert [tr["name"] for tr in progress["data"]] == ["succeeded"]
    assert progress["data"][0]["line"]["shape"] == "hv"
    states = charts.state_bar_figure({"succeeded": 2, "failed": 1, "waiting": 0})
    assert states["data"][0]["x"] == ["succeeded", "failed"]
    bars = charts.count_bar_figure([("isr", 2), ("calibrate", 5), ("", 1)], title="t", empty="none")
    assert bars["data"][0]["y"] == ["(none)", "isr", "calibrate"]  # largest on top
    runs = charts.run_time_figure([("step1", 600.0), ("step1", None), ("step2", float("nan")), ("step2", 120.0)])
    assert [(tr["type"], tr["name"], tr["y"]) for tr in runs["data"]] == [
        ("box", "step1", [10.0]),
        ("box", "step2", [2.0]),
    ]
    assert charts.run_time_figure([])["data"] == []
    assert charts.state_bar_figure({"waiting": 0})["data"] == []
    for figure in (progress, states, bars, runs):
        as_json(figure)


def test_values_are_rounded_to_six_significant_digits_to_keep_payloads_small():
    assert charts._round(0.123456789) == 0.123457
    assert charts._round(123456.789) == 123457.0
    assert charts._round(float("nan")) is None
    assert charts._round(0) == 0
    assert math.isclose(charts._round(1.0e-9 * 1.23456789), 1.23457e-9)
