"""ECharts options built on the server: each chart is a JSON document in a
``data-chart`` attribute, drawn by ``static/console.js``. ECharts 5 ships no map of
China, so places are bars by province."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

PALETTE: Final = ("#2f6fed", "#1aa36f", "#f0a020", "#d64545", "#7a5af8", "#0ea5b7", "#8a8f98")


def bar_chart(
    labels: Sequence[str],
    series: Mapping[str, Sequence[float | int | None]],
    *,
    horizontal: bool = False,
    stacked: bool = False,
) -> dict[str, Any]:
    """Bars per label, one series per entry of ``series`` (its name shown in the legend)."""
    category: dict[str, Any] = {"type": "category", "data": list(labels)}
    value: dict[str, Any] = {"type": "value"}
    if horizontal:
        category["inverse"] = True
    return {
        "color": list(PALETTE),
        "tooltip": {"trigger": "axis"},
        "legend": {"show": len(series) > 1, "top": 0},
        "grid": {"left": 8, "right": 16, "top": 32, "bottom": 8, "containLabel": True},
        "xAxis": value if horizontal else category,
        "yAxis": category if horizontal else value,
        "series": [
            {
                "name": name,
                "type": "bar",
                "data": list(values),
                **({"stack": "total"} if stacked else {}),
            }
            for name, values in series.items()
        ],
    }


def line_chart(
    labels: Sequence[str], series: Mapping[str, Sequence[float | int | None]]
) -> dict[str, Any]:
    return {
        "color": list(PALETTE),
        "tooltip": {"trigger": "axis"},
        "legend": {"show": len(series) > 1, "top": 0},
        "grid": {"left": 8, "right": 16, "top": 32, "bottom": 8, "containLabel": True},
        "xAxis": {"type": "category", "data": list(labels), "boundaryGap": False},
        "yAxis": {"type": "value"},
        "series": [
            {
                "name": name,
                "type": "line",
                "symbolSize": 5,
                "connectNulls": True,
                "data": list(data),
            }
            for name, data in series.items()
        ],
    }


def pie_chart(parts: Mapping[str, int | float]) -> dict[str, Any]:
    return {
        "color": list(PALETTE),
        "tooltip": {"trigger": "item", "formatter": "{b}: {c} ({d}%)"},
        "legend": {"bottom": 0},
        "series": [
            {
                "type": "pie",
                "radius": ["40%", "68%"],
                "label": {"show": False},
                "data": [{"name": name, "value": value} for name, value in parts.items()],
            }
        ],
    }


def percent_value(value: float | None) -> float | None:
    """A rate as a chart value in percent, one decimal (None stays a gap)."""
    return None if value is None else round(value * 100, 1)
