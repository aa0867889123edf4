"""The web console: server-rendered pages (Jinja2) with htmx for live parts and
ECharts for charts, both served from ``static/`` — no build step, no CDN."""

from echelon.console.app import create_console

__all__ = ["create_console"]
