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


def test_time_figure_against_nights_uses_day_obs_as_dates_and_one_marker_shape_per_campaign():
    points = [point(1, 0.8, band="r"), point(2, 0.7, label="psf-b", day_obs=20251122, band="r")]
    figure = charts.time_figure(points, metric="m", url_template=URL, x="day_obs")
    assert [t["name"] for t in figure["data"]] == ["psf-a: r", "psf-b: r"]
    assert [t["marker"]["symbol"] for t in figure["data"]] == ["circle", "square"]
    assert figure["data"][0]["marker"]["color"] == figure["data"][1]["marker"]["color"] == charts.BAND_COLOURS["r"]
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
    assert figure["layout"]["xaxis"]["range"] == [11.5, 10.5]  # reversed: RA grows to the left
    assert charts.sky_figure([point(2, 0.9, ra=None)], metric="m", url_template=URL)["data"] == []


def test_time_figure_colours_points_by_band_in_rubins_colours_in_ugrizy_order():
    points = [point(1, 0.8, band="r"), point(2, 0.7, band="g"), point(3, 0.9, band="r"), point(4, 0.6, band=None)]
    points.append(point(5, 0.5, band="N921"))  # a narrow band: a palette colour of its own
    figure = charts.time_figure(points, metric="m", url_template=URL)
    assert [t["name"] for t in figure["data"]] == ["g", "r", "N921", "no band"]
    colours = [t["marker"]["color"] for t in figure["data"]]
    assert colours[:2] == [charts.BAND_COLOURS["g"], charts.BAND_COLOURS["r"]]
    assert colours[3] == charts.NO_BAND_COLOUR and len(set(colours)) == 4
    assert figure["data"][1]["y"] == [0.8, 0.9]
    assert figure["data"][1]["customdata"] == ["/data/repos/demo/exposures/1/", "/data/repos/demo/exposures/3/"]
    as_json(figure)


def test_sky_figure_keeps_dec_within_minus_90_and_90_and_ra_within_0_and_360():
    near_pole = [point(1, 0.8, ra=359.8, dec=-89.9), point(2, 0.7, ra=0.1, dec=-89.5)]
    layout = charts.sky_figure(near_pole, metric="m", url_template=URL)["layout"]
    assert layout["yaxis"]["range"] == [-90.0, -89.0]
    assert (layout["yaxis"]["minallowed"], layout["yaxis"]["maxallowed"]) == (-90, 90)
    assert layout["xaxis"]["range"] == [360.0, 0.0]
    assert (layout["xaxis"]["minallowed"], layout["xaxis"]["maxallowed"]) == (0, 360)
    assert "scaleanchor" not in layout["yaxis"]  # an anchored aspect ratio would widen Dec past the poles
    wide = [point(1, 0.8, ra=10, dec=-60.0), point(2, 0.7, ra=50, dec=20.0)]
    layout = charts.sky_figure(wide, metric="m", url_template=URL)["layout"]
    assert layout["yaxis"]["range"] == [-64.0, 24.0] and layout["xaxis"]["range"] == [52.0, 8.0]
    assert charts.sky_ranges([0.0], [0.0]) == ((0.0, 0.5), (-0.5, 0.5))


def test_focal_plane_cells_are_labelled_with_the_detector_names():
    cells = [DetectorCell(0, 1.0, 10, "R22_S00"), DetectorCell(4, 2.0, 10, "R22_S11"), DetectorCell(9, 1.5, 3, "")]
    (trace,) = charts.focal_plane_figure(cells, metric="m")["data"]
    assert trace["texttemplate"] == "%{text}"
    labels = [label for row in trace["text"] for label in row if label]
    assert sorted(labels) == ["9", "R22_S00", "R22_S11"]  # a detector without a full name: its id
    hovers = [h for row in trace["customdata"] for h in row if h]
    assert "R22_S11 (id 4): 10 values" in hovers
    many = [DetectorCell(i, 1.0, 1, f"R{r}{c}_S{x}{y}") for i, (r, c, x, y) in enumerate(
        (r, c, x, y) for r in range(5) for c in range(5) for x in range(3) for y in range(3)
    )]  # fmt: skip
    assert charts.focal_plane_figure(many, metric="m")["data"][0]["textfont"]["size"] < trace["textfont"]["size"]


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
    assert trace["text"][1][1] == "R22_S11" and "R22_S11 (id 4)" in trace["customdata"][1][1]
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


def test_progress_counts_the_groups_running_at_each_moment_not_a_running_total():
    t = [datetime(2025, 11, 22, 1, m, tzinfo=UTC) for m in range(10)]
    moves = [
        (t[0], 1, "preflight"),
        (t[0], 2, "preflight"),  # two start at once: one point, level 2
        (t[1], 1, "running"),  # preflight -> running: still running, no new point
        (t[2], 2, "failed"),
        (t[3], 1, "succeeded"),
        (t[4], 2, "ready"),  # retried
        (t[5], 2, "preflight"),
        (t[6], 2, "running"),
        (t[7], 2, "succeeded"),
        (t[8], 3, "failed"),
        (t[9], 3, "accepted"),
    ]
    series = {s.state: s for s in charts.progress_series(moves, running={"preflight", "submitting", "running"},
                                                          done={"succeeded", "accepted"}, failed={"failed"})}  # fmt: skip
    running = series["running"]
    assert running.counts == [2, 1, 0, 1, 0, 0] and running.times == [t[0], t[2], t[3], t[5], t[7], t[9]]
    assert series["succeeded"].counts == [1, 2, 3] and series["succeeded"].times == [t[3], t[7], t[9]]
    assert series["failed"].counts == [1, 0, 1, 0] and series["failed"].times == [t[2], t[4], t[8], t[9]]
    figure = charts.progress_figure(list(series.values()), total=3)
    assert [tr["name"] for tr in figure["data"]] == ["running", "done (succeeded or accepted)", "failed"]
    assert max(figure["data"][0]["y"]) == 2  # never more than were running at once
    as_json(figure)


def test_overview_figures_progress_states_failures_and_run_times():
    t = datetime(2025, 11, 22, 1, 0, tzinfo=UTC)
    progress = charts.progress_figure([ProgressSeries("succeeded", [t, t], [1, 2]), ProgressSeries("failed")], total=5)
    assert [tr["name"] for tr in progress["data"]] == ["done (succeeded or accepted)"]
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
