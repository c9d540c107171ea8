"""Colours and chart settings shared by the views."""

SELECT_COLOR = "#ff0090"
PRUNED_COLOR = "#262730"
ROLE_NAMES = ("none", "local", "delimiter", "syntactic", "block", "several")
ROLE_COLORS = ("#e8e8e8", "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b")
KEPT_COLORS = ("#3a7dc9", "#e3e3e3")
PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#ff9da6", "#9d755d", "#bab0ac", "#eeca3b", "#222222")
CHART_CONFIG = {"displaylogo": False, "modeBarButtonsToRemove": ["autoScale2d", "toImage"]}
PLAIN_CONFIG = {"displaylogo": False}
