"""Shared look of the figures: one colour per fidelity, ordered from low to high level of theory."""

from __future__ import annotations

from collections.abc import Sequence

from plotly.colors import sample_colorscale

#: Font and margins used by every figure, so panels look like one application.
FONT = {"family": "Inter, 'Segoe UI', Helvetica, Arial, sans-serif", "size": 13, "color": "#1f2933"}
TEMPLATE = "plotly_white"


def fidelity_colors(names: Sequence[str]) -> dict[str, str]:
    """A colour per fidelity, taken in order (low to high rank) from the plasma scale.

    The scale stops short of its pale yellow end so every colour reads on white; the same
    fidelity gets the same colour in every figure of a dataset.
    """
    names = list(names)
    if not names:
        return {}
    if len(names) == 1:
        return {names[0]: sample_colorscale("Plasma", [0.1])[0]}
    positions = [0.85 * k / (len(names) - 1) for k in range(len(names))]
    return dict(zip(names, sample_colorscale("Plasma", positions), strict=True))


def base_layout(title: str, height: int, **extra) -> dict:
    """Layout keywords shared by the figures: title at the left, white template, compact margins."""
    layout = {
        "title": {"text": title, "x": 0.01, "xanchor": "left", "font": {"size": 16}},
        "template": TEMPLATE,
        "font": FONT,
        "height": height,
        "margin": {"l": 10, "r": 10, "t": 48, "b": 10},
    }
    layout.update(extra)
    return layout
