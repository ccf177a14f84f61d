"""Pure figure builders: selector output in, Plotly figure specs (plain dicts) out. No database access.

Figures are plain ``{"data": [...], "layout": {...}}`` dicts rather than ``plotly.graph_objects``
figures: building and serializing graph objects costs about a second per 20,000 points, and a
dashboard must answer in well under one. The dicts follow Plotly's JSON schema, so the page hands
them to ``Plotly.newPlot`` as they are.

Points that stand for an exposure carry its page URL in ``customdata``; the page's ``plotly_click``
handler (static/js/metrics.js) opens it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

Figure = dict[str, Any]

# Colours of the campaigns in a figure (Plotly's default cycle, so legends look familiar).
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
# Colours of the bands, as Rubin's plots draw them on a white background (lsst.utils.plotting's
# get_multiband_plot_colors); other bands take the campaign palette, points without a band grey.
BAND_COLOURS = {
    "u": "#1600ea",
    "g": "#31de1f",
    "r": "#b52626",
    "i": "#370201",
    "z": "#ba52ff",
    "y": "#61a2b3",
}
NO_BAND_COLOUR = "#8a93a3"
# Marker shapes of the campaigns when several share a figure coloured by band.
SYMBOLS = ("circle", "square", "diamond", "triangle-up", "x", "cross", "triangle-down", "star")
STATE_COLOURS = {
    "waiting": "#b0b8c6",
    "ready": "#2f6fed",
    "preflight": "#b7791f",
    "submitting": "#b7791f",
    "running": "#e0a100",
    "succeeded": "#1e8e3e",
    "accepted": "#57b46f",
    "failed": "#c0392b",
    "cancelled": "#8a93a3",
}
_BASE_LAYOUT: dict[str, Any] = {
    "margin": {"l": 60, "r": 20, "t": 40, "b": 50},
    "font": {"family": "system-ui, -apple-system, Segoe UI, Roboto, Arial, sans-serif", "size": 12},
    "paper_bgcolor": "#fff",
    "plot_bgcolor": "#fff",
    "hovermode": "closest",
    "legend": {"orientation": "h", "y": -0.2},
}


# --- inputs (what the selectors return) ----------------------------------------------------------------------


@dataclass
class HistogramSeries:
    """Counts of one campaign's values in equal bins ``edges[i] .. edges[i+1]``; ``nulls`` were NaN/inf."""

    label: str
    edges: list[float]
    counts: list[int]
    nulls: int = 0


@dataclass
class ExposurePoint:
    """One exposure's aggregate of a metric in one campaign (mean over its detectors)."""

    label: str
    repo: str
    exposure: int
    value: float | None
    count: int = 1
    day_obs: int | None = None
    begin: datetime | None = None
    ra: float | None = None
    dec: float | None = None
    band: str | None = None


@dataclass
class DetectorCell:
    detector: int
    value: float | None
    count: int = 0
    full_name: str = ""


@dataclass
class PairPoint:
    """One data ID measured by both campaigns of a comparison."""

    repo: str
    exposure: int | None
    detector: int | None
    data_id_key: str
    a: float | None
    b: float | None

    @property
    def diff(self) -> float | None:
        return None if self.a is None or self.b is None else self.b - self.a


@dataclass
class ProgressSeries:
    """How many groups are in a state (``running``, ``succeeded``: done, ``failed``) over time: ``counts[i]``
    from ``times[i]`` on."""

    state: str
    times: list[datetime] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)


def progress_series(
    moves: Iterable[tuple[datetime, int, str]],
    *,
    running: Iterable[str],
    done: Iterable[str],
    failed: Iterable[str],
) -> list[ProgressSeries]:
    """The number of groups running, done and failed at each moment, from the groups' state changes
    ``(at, group, to_status)`` in time order. A group counts where its latest change put it: running goes down
    again when a group ends, failed when a failed group is retried or accepted. Every line is carried on to the
    last change, so all of them end at the same time."""
    buckets = (("running", set(running)), ("succeeded", set(done)), ("failed", set(failed)))
    series = {name: ProgressSeries(name) for name, _ in buckets}
    level = dict.fromkeys(series, 0)
    state: dict[int, str] = {}
    last = None
    for at, group, to in moves:
        before = state.get(group)
        state[group] = to
        last = at
        for name, states in buckets:
            delta = (to in states) - (before in states)
            if not delta:
                continue
            level[name] += delta
            line = series[name]
            if line.times and line.times[-1] == at:  # several changes at one instant: the level after them
                line.counts[-1] = level[name]
            else:
                line.times.append(at)
                line.counts.append(level[name])
    for line in series.values():
        if line.times and last is not None and line.times[-1] != last:
            line.times.append(last)
            line.counts.append(line.counts[-1])
    return list(series.values())


# --- helpers -------------------------------------------------------------------------------------------------


def _finite(value: Any) -> float | None:
    """A float, or None for None/NaN/inf (JSON has no NaN, and Plotly skips None)."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _round(value: float | None, digits: int = 6) -> float | None:
    """Rounded to ``digits`` significant digits: keeps the payload small without changing what is drawn."""
    value = _finite(value)
    if value is None or value == 0:
        return value
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


def _axis_title(metric: str, unit: str = "") -> str:
    return f"{metric} [{unit}]" if unit else metric


def _layout(title: str, **extra: Any) -> dict[str, Any]:
    layout = {**_BASE_LAYOUT, "title": {"text": title, "x": 0.01, "font": {"size": 14}}}
    layout.update(extra)
    return layout


def exposure_url(template: str, repo: str, exposure: int) -> str:
    """The exposure page URL from a template with ``{repo}`` and ``{exposure}`` placeholders."""
    return template.replace("{repo}", str(repo)).replace("{exposure}", str(int(exposure)))


def empty_figure(title: str, message: str) -> Figure:
    """A figure that says why there is nothing to draw (instead of empty axes)."""
    return {
        "data": [],
        "layout": _layout(
            title,
            xaxis={"visible": False},
            yaxis={"visible": False},
            annotations=[{"text": message, "showarrow": False, "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5}],
        ),
    }


# --- metric explorer -----------------------------------------------------------------------------------------


def histogram_figure(series: Sequence[HistogramSeries], *, metric: str, unit: str = "") -> Figure:
    """Bars of binned counts (binned in SQL), one trace per campaign, overlaid."""
    traces = []
    for i, s in enumerate(series):
        if len(s.edges) != len(s.counts) + 1:
            raise ValueError(f"{s.label}: {len(s.counts)} counts need {len(s.counts) + 1} edges, not {len(s.edges)}")
        centres = [_round((lo + hi) / 2) for lo, hi in zip(s.edges[:-1], s.edges[1:], strict=True)]
        widths = [_round(hi - lo) for lo, hi in zip(s.edges[:-1], s.edges[1:], strict=True)]
        name = s.label + (f" ({s.nulls:,} NaN/inf not shown)" if s.nulls else "")
        traces.append(
            {
                "type": "bar",
                "name": name,
                "x": centres,
                "y": list(s.counts),
                "width": widths,
                "marker": {"color": PALETTE[i % len(PALETTE)]},
                "opacity": 0.6 if len(series) > 1 else 0.9,
                "hovertemplate": "%{x}: %{y:,} values<extra>" + s.label + "</extra>",
            }
        )
    if not any(sum(s.counts) for s in series):
        return empty_figure(f"Histogram of {metric}", "No finite values match the filters.")
    return {
        "data": traces,
        "layout": _layout(
            f"Histogram of {metric}",
            barmode="overlay",
            bargap=0,
            xaxis={"title": {"text": _axis_title(metric, unit)}},
            yaxis={"title": {"text": "values"}},
        ),
    }


def _point_text(p: ExposurePoint) -> str:
    parts = [f"exposure {p.exposure}"]
    if p.day_obs:
        parts.append(f"night {p.day_obs}")
    if p.band:
        parts.append(f"band {p.band}")
    if p.count > 1:
        parts.append(f"mean of {p.count} detectors")
    return ", ".join(parts)


def _by_label(points: Iterable[ExposurePoint]) -> dict[str, list[ExposurePoint]]:
    groups: dict[str, list[ExposurePoint]] = {}
    for p in points:
        groups.setdefault(p.label, []).append(p)
    return groups


def band_colour(band: str | None, others: dict[str, str]) -> str:
    """The colour of a band (Rubin's for ugrizy); another band gets the next palette colour, kept in ``others``."""
    if not band:
        return NO_BAND_COLOUR
    if band in BAND_COLOURS:
        return BAND_COLOURS[band]
    return others.setdefault(band, PALETTE[len(others) % len(PALETTE)])


def _band_order(band: str | None) -> tuple[int, str]:
    order = "ugrizy"
    return (order.index(band), band) if band and band in order else (len(order) + (band is None), band or "")


def time_figure(
    points: Sequence[ExposurePoint], *, metric: str, unit: str = "", url_template: str, x: str = "time"
) -> Figure:
    """The metric against observation time (``x="time"``) or night (``x="day_obs"``): one WebGL point per
    exposure, coloured by band (ugrizy as in Rubin's plots), one marker shape per campaign when there are several;
    clicking a point opens the exposure page."""
    if x not in ("time", "day_obs"):
        raise ValueError(f"x must be 'time' or 'day_obs', not {x!r}")
    traces = []
    campaigns = _by_label(points)
    others: dict[str, str] = {}
    for i, (label, group) in enumerate(campaigns.items()):
        usable = [p for p in group if _finite(p.value) is not None]
        if x == "time":
            usable = [p for p in usable if p.begin is not None]
        else:
            usable = [p for p in usable if p.day_obs is not None]
        bands: dict[str | None, list[ExposurePoint]] = {}
        for p in usable:
            bands.setdefault(p.band or None, []).append(p)
        for band in sorted(bands, key=_band_order):
            chosen = bands[band]
            xs: list[Any] = (
                [p.begin.isoformat(timespec="seconds") for p in chosen if p.begin is not None]
                if x == "time"
                else [_day_obs_date(p.day_obs) for p in chosen]
            )
            name = band or "no band"
            traces.append(
                {
                    "type": "scattergl",
                    "mode": "markers",
                    "name": f"{label}: {name}" if len(campaigns) > 1 else name,
                    "legendgroup": label,
                    "x": xs,
                    "y": [_round(p.value) for p in chosen],
                    "text": [_point_text(p) for p in chosen],
                    "customdata": [exposure_url(url_template, p.repo, p.exposure) for p in chosen],
                    "marker": {"size": 6, "color": band_colour(band, others), "symbol": SYMBOLS[i % len(SYMBOLS)]},
                    "hovertemplate": "%{y}<br>%{text}<br>%{x}<extra>" + label + "</extra>",
                }
            )
    if not any(t["x"] for t in traces):
        return empty_figure(f"{metric} over time", "No exposure with a finite value and a time matches the filters.")
    return {
        "data": traces,
        "layout": _layout(
            f"{metric} per exposure over {'time' if x == 'time' else 'nights'}, by band",
            xaxis={"title": {"text": "exposure start (UTC)" if x == "time" else "night (day_obs)"}, "type": "date"},
            yaxis={"title": {"text": _axis_title(metric, unit)}},
        ),
    }


def _day_obs_date(day_obs: int | None) -> str | None:
    if day_obs is None:
        return None
    text = str(int(day_obs))
    return f"{text[:4]}-{text[4:6]}-{text[6:8]}" if len(text) == 8 else None


def sky_figure(points: Sequence[ExposurePoint], *, metric: str, unit: str = "", url_template: str) -> Figure:
    """Exposures at their pointing (RA, Dec from the exposure mirror), coloured by the metric; RA grows to
    the left as on the sky. One WebGL trace; clicking a point opens the exposure page."""
    usable = [p for p in points if p.ra is not None and p.dec is not None and _finite(p.value) is not None]
    if not usable:
        return empty_figure(f"{metric} on the sky", "No exposure with a pointing and a finite value.")
    trace = {
        "type": "scattergl",
        "mode": "markers",
        "name": metric,
        "x": [_round(p.ra, 7) for p in usable],
        "y": [_round(p.dec, 7) for p in usable],
        "text": [f"{p.label}: {_point_text(p)}" for p in usable],
        "customdata": [exposure_url(url_template, p.repo, p.exposure) for p in usable],
        "marker": {
            "size": 7,
            "color": [_round(p.value) for p in usable],
            "colorscale": "Viridis",
            "showscale": True,
            "colorbar": {"title": {"text": unit or metric.rsplit(".", 1)[-1]}},
        },
        "hovertemplate": "RA %{x:.3f}°, Dec %{y:.3f}°<br>%{marker.color}<br>%{text}<extra></extra>",
    }
    ra_range, dec_range = sky_ranges(
        [p.ra for p in usable if p.ra is not None], [p.dec for p in usable if p.dec is not None]
    )
    return {
        "data": [trace],
        "layout": _layout(
            f"{metric} on the sky (mean per exposure)",
            # RA grows to the left; neither axis goes (or zooms, or pans) past the sky's bounds.
            xaxis={
                "title": {"text": "RA (deg)"},
                "range": [ra_range[1], ra_range[0]],
                "minallowed": 0,
                "maxallowed": 360,
            },
            yaxis={"title": {"text": "Dec (deg)"}, "range": list(dec_range), "minallowed": -90, "maxallowed": 90},
            showlegend=False,
        ),
    }


def sky_ranges(ras: Sequence[float], decs: Sequence[float]) -> tuple[tuple[float, float], tuple[float, float]]:
    """(RA low, high), (Dec low, high) of the points with a margin (5% of the span, at least 0.5 deg), within the
    sky: RA in [0, 360], Dec in [-90, 90]."""

    def padded(values: Sequence[float], lo: float, hi: float) -> tuple[float, float]:
        low, high = min(values), max(values)
        margin = max((high - low) * 0.05, 0.5)
        return round(max(lo, low - margin), 6), round(min(hi, high + margin), 6)

    return padded(ras, 0.0, 360.0), padded(decs, -90.0, 90.0)


_DETECTOR_NAME = re.compile(r"^R(\d)(\d)_S(\d)(\d)$")


def focal_plane_position(full_name: str) -> tuple[int, int] | None:
    """(column, row) of a detector on the focal-plane grid from its LSST name ``Rxy_Sxy``: rafts are 3x3
    sensors; raft ``R22`` sensor ``S11`` is the middle of the camera. None for names of another form."""
    match = _DETECTOR_NAME.match(full_name or "")
    if not match:
        return None
    raft_row, raft_col, sensor_row, sensor_col = (int(g) for g in match.groups())
    return raft_col * 3 + sensor_col, raft_row * 3 + sensor_row


def detector_label(cell: DetectorCell) -> str:
    """What a focal-plane cell shows: the detector's full name (``R22_S11``), else its id."""
    return cell.full_name or str(cell.detector)


def focal_plane_figure(cells: Sequence[DetectorCell], *, metric: str, unit: str = "", title: str = "") -> Figure:
    """A heat map of the per-detector mean, each detector at its place on the focal plane (from its full
    name ``R22_S11``); detectors with other names are laid out in id order on a square grid."""
    title = title or f"{metric} per detector"
    cells = [c for c in cells if c is not None]
    if not cells:
        return empty_figure(title, "No detector values match the filters.")
    placed = {c.detector: focal_plane_position(c.full_name) for c in cells}
    if any(pos is None for pos in placed.values()):
        side = math.ceil(math.sqrt(len(cells)))
        placed = {c.detector: (i % side, i // side) for i, c in enumerate(sorted(cells, key=lambda c: c.detector))}
    positions = [pos for pos in placed.values() if pos is not None]
    cols = sorted({p[0] for p in positions})
    rows = sorted({p[1] for p in positions})
    col_index = {c: i for i, c in enumerate(cols)}
    row_index = {r: i for i, r in enumerate(rows)}
    z: list[list[float | None]] = [[None] * len(cols) for _ in rows]
    labels: list[list[str]] = [[""] * len(cols) for _ in rows]
    hover: list[list[str]] = [[""] * len(cols) for _ in rows]
    for c in cells:
        pos = placed[c.detector]
        assert pos is not None
        r, k = row_index[pos[1]], col_index[pos[0]]
        z[r][k] = _round(c.value)
        labels[r][k] = detector_label(c)
        hover[r][k] = f"{c.full_name or c.detector} (id {c.detector}): {c.count:,} values"
    # Each detector is labelled in its cell; the text shrinks as the camera grows (189 science sensors).
    size = 11 if len(cells) <= 16 else 9 if len(cells) <= 64 else 6
    trace = {
        "type": "heatmap",
        "x": cols,
        "y": rows,
        "z": z,
        "text": labels,
        "texttemplate": "%{text}",
        "textfont": {"size": size},
        "customdata": hover,
        "colorscale": "Viridis",
        "xgap": 2,
        "ygap": 2,
        "colorbar": {"title": {"text": unit or "mean"}},
        "hovertemplate": "%{customdata}<br>mean %{z}<extra></extra>",
    }
    return {
        "data": [trace],
        "layout": _layout(
            title,
            xaxis={"visible": False, "constrain": "domain"},
            yaxis={"visible": False, "scaleanchor": "x"},
        ),
    }


# --- campaign A against campaign B ---------------------------------------------------------------------------


def comparison_scatter_figure(
    pairs: Sequence[PairPoint], *, metric: str, unit: str = "", label_a: str, label_b: str, url_template: str
) -> Figure:
    """B against A on the same data IDs (WebGL), with the line B = A; clicking a point opens its exposure."""
    usable = [p for p in pairs if _finite(p.a) is not None and _finite(p.b) is not None]
    if not usable:
        return empty_figure(f"{label_b} against {label_a}", "The two campaigns share no data ID with finite values.")
    lo = min(min(p.a for p in usable if p.a is not None), min(p.b for p in usable if p.b is not None))
    hi = max(max(p.a for p in usable if p.a is not None), max(p.b for p in usable if p.b is not None))
    points = {
        "type": "scattergl",
        "mode": "markers",
        "name": "data IDs",
        "x": [_round(p.a) for p in usable],
        "y": [_round(p.b) for p in usable],
        "text": [p.data_id_key for p in usable],
        "customdata": [
            exposure_url(url_template, p.repo, p.exposure) if p.exposure is not None else None for p in usable
        ],
        "marker": {"size": 4, "color": PALETTE[0], "opacity": 0.7},
        "hovertemplate": "A %{x}<br>B %{y}<br>%{text}<extra></extra>",
    }
    diagonal = {
        "type": "scatter",
        "mode": "lines",
        "name": "B = A",
        "x": [_round(lo), _round(hi)],
        "y": [_round(lo), _round(hi)],
        "line": {"color": "#8a93a3", "dash": "dot", "width": 1},
        "hoverinfo": "skip",
    }
    return {
        "data": [points, diagonal],
        "layout": _layout(
            f"{metric}: {label_b} against {label_a}",
            xaxis={"title": {"text": f"A: {label_a}" + (f" [{unit}]" if unit else "")}},
            yaxis={"title": {"text": f"B: {label_b}" + (f" [{unit}]" if unit else "")}},
        ),
    }


def difference_histogram_figure(series: HistogramSeries, *, metric: str, unit: str = "") -> Figure:
    figure = histogram_figure([series], metric=f"B − A of {metric}", unit=unit)
    if figure["data"]:
        figure["layout"]["shapes"] = [
            {
                "type": "line",
                "x0": 0,
                "x1": 0,
                "y0": 0,
                "y1": 1,
                "yref": "paper",
                "line": {"color": "#c0392b", "dash": "dot", "width": 1},
            }
        ]
    return figure


# --- campaign overview ---------------------------------------------------------------------------------------


PROGRESS_NAMES = {"running": "running", "succeeded": "done (succeeded or accepted)", "failed": "failed"}


def progress_figure(series: Sequence[ProgressSeries], *, total: int) -> Figure:
    """How many groups were running, done and failed at each moment (``progress_series``), as steps."""
    traces = []
    for s in series:
        if not s.times:
            continue
        traces.append(
            {
                "type": "scatter",
                "mode": "lines",
                "line": {"shape": "hv", "color": STATE_COLOURS.get(s.state, "#555")},
                "name": PROGRESS_NAMES.get(s.state, s.state),
                "x": [t.isoformat(timespec="seconds") for t in s.times],
                "y": list(s.counts),
                "hovertemplate": "%{y} groups %{x}<extra>" + PROGRESS_NAMES.get(s.state, s.state) + "</extra>",
            }
        )
    if not traces:
        return empty_figure("Progress", "No group has started yet.")
    return {
        "data": traces,
        "layout": _layout(
            "Groups running, done and failed over time",
            xaxis={"title": {"text": "time (UTC)"}, "type": "date"},
            yaxis={"title": {"text": f"groups (of {total:,})"}, "rangemode": "tozero"},
        ),
    }


def state_bar_figure(counts: dict[str, int]) -> Figure:
    states = [s for s, n in counts.items() if n]
    if not states:
        return empty_figure("Groups by state", "This campaign has no groups yet (it has not been launched).")
    return {
        "data": [
            {
                "type": "bar",
                "x": states,
                "y": [counts[s] for s in states],
                "marker": {"color": [STATE_COLOURS.get(s, "#555") for s in states]},
                "hovertemplate": "%{x}: %{y:,} groups<extra></extra>",
            }
        ],
        "layout": _layout("Groups by state", yaxis={"title": {"text": "groups"}}, showlegend=False),
    }


def count_bar_figure(rows: Sequence[tuple[str, int]], *, title: str, empty: str, colour: str = "#c0392b") -> Figure:
    """Horizontal bars of (label, count), largest on top."""
    rows = [(label or "(none)", n) for label, n in rows if n]
    if not rows:
        return empty_figure(title, empty)
    rows = sorted(rows, key=lambda r: r[1])
    return {
        "data": [
            {
                "type": "bar",
                "orientation": "h",
                "y": [r[0] for r in rows],
                "x": [r[1] for r in rows],
                "marker": {"color": colour},
                "hovertemplate": "%{y}: %{x:,}<extra></extra>",
            }
        ],
        "layout": _layout(
            title,
            xaxis={"title": {"text": "failed quanta"}},
            yaxis={"automargin": True},
            showlegend=False,
            height=max(260, 60 + 26 * len(rows)),
        ),
    }


def run_time_figure(durations: Sequence[tuple[str, float | None]]) -> Figure:
    """Box plots of submission durations (seconds) per step."""
    by_step: dict[str, list[float]] = {}
    for step, seconds in durations:
        value = _finite(seconds)
        if value is not None:
            by_step.setdefault(step, []).append(value)
    if not by_step:
        return empty_figure("Run times", "No submission has finished yet.")
    traces = [
        {"type": "box", "name": step, "y": [_round(v / 60) for v in values], "boxpoints": "outliers"}
        for step, values in by_step.items()
    ]
    return {
        "data": traces,
        "layout": _layout("Submission run times", yaxis={"title": {"text": "minutes"}}, showlegend=False),
    }
