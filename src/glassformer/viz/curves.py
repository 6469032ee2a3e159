"""A training curve as inline SVG: cheap enough to redraw every few seconds while a model trains, and no network."""

from __future__ import annotations

import html
from typing import Sequence


def loss_curve_svg(steps: Sequence[int], losses: Sequence[float], *, width: int = 520, height: int = 180,
                   title: str = "training loss") -> str:
    """The loss against the step as an ``<svg>`` line chart with labelled axes; empty input gives an empty string.

    The last point is marked and its value printed, so a learner sees where the run is now.
    """
    if len(steps) != len(losses):
        raise ValueError(f"{len(steps)} steps but {len(losses)} losses")
    if not steps:
        return ""
    left, right, top, bottom = 52, 12, 24, 30
    x0, x1 = min(steps), max(max(steps), min(steps) + 1)
    y0, y1 = min(losses), max(losses)
    if y1 - y0 < 1e-9:
        y0, y1 = y0 - 0.5, y1 + 0.5

    def x(step: float) -> float:
        return left + (step - x0) / (x1 - x0) * (width - left - right)

    def y(loss: float) -> float:
        return top + (y1 - loss) / (y1 - y0) * (height - top - bottom)

    points = " ".join(f"{x(s):.1f},{y(v):.1f}" for s, v in zip(steps, losses))
    last_x, last_y = x(steps[-1]), y(losses[-1])
    text = 'font-size="11" font-family="system-ui, sans-serif" fill="#333"'
    parts = [
        f'<svg class="gf-loss-curve" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" data-points="{len(steps)}" role="img" aria-label="{html.escape(title)}">',
        f'<text x="{left}" y="14" {text} font-weight="600">{html.escape(title)}</text>',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="#999"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#999"/>',
        f'<text x="{left - 4}" y="{top + 4}" {text} text-anchor="end">{y1:.2f}</text>',
        f'<text x="{left - 4}" y="{height - bottom}" {text} text-anchor="end">{y0:.2f}</text>',
        f'<text x="{left}" y="{height - 10}" {text}>step {x0}</text>',
        f'<text x="{width - right}" y="{height - 10}" {text} text-anchor="end">step {max(steps)}</text>',
        f'<polyline class="gf-loss-line" fill="none" stroke="#4a7fc1" stroke-width="2" points="{points}"/>',
        f'<circle cx="{last_x:.1f}" cy="{last_y:.1f}" r="3.5" fill="#d62728"/>',
        f'<text x="{min(last_x, width - right - 60):.1f}" y="{max(last_y - 8, top):.1f}" {text}>'
        f"{losses[-1]:.3f}</text>",
        "</svg>",
    ]
    return "".join(parts)


def race_curve_svg(xs: Sequence[float], ys: Sequence[float], *, level: float | None = None, level_label: str = "",
                   title: str = "", x_unit: str = "step", note: str = "", width: int = 560,
                   height: int = 200) -> str:
    """A model's curve against a baseline's level: a line chart with the level drawn as a dashed horizontal line.

    The y range covers the curve and the level, so where the curve crosses the line shows; the last
    point is marked with its value. `note` is a line printed under the title (what the level is, or
    a baseline that has no place on this axis). With no points it draws the axes, the level and
    the note alone, so a tab shows what it waits for before the first point arrives.
    """
    if len(xs) != len(ys):
        raise ValueError(f"{len(xs)} x values but {len(ys)} y values")
    left, right, top, bottom = 52, 12, 24 + (14 if note else 0), 30
    values = list(ys) + ([level] if level is not None else [])
    if not values:
        values = [0.0, 1.0]
    y0, y1 = min(values), max(values)
    if y1 - y0 < 1e-9:
        y0, y1 = y0 - 0.5, y1 + 0.5
    pad = (y1 - y0) * 0.05
    y0, y1 = y0 - pad, y1 + pad
    x0 = min(xs) if xs else 0.0
    if x_unit != "step":  # time runs from the start of the run
        x0 = min(x0, 0.0)
    x1 = max(max(xs), x0 + 1e-9) if xs else 1.0
    if x1 - x0 < 1e-9:
        x1 = x0 + 1.0

    def x(value: float) -> float:
        return left + (value - x0) / (x1 - x0) * (width - left - right)

    def y(value: float) -> float:
        return top + (y1 - value) / (y1 - y0) * (height - top - bottom)

    text = 'font-size="11" font-family="system-ui, sans-serif" fill="#333"'
    level_attr = f' data-level="{level!r}"' if level is not None else ""
    parts = [
        f'<svg class="gf-race-curve" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" data-points="{len(xs)}"{level_attr} role="img" '
        f'aria-label="{html.escape(title)}">',
        f'<text x="{left}" y="14" {text} font-weight="600">{html.escape(title)}</text>',
    ]
    if note:
        parts.append(f'<text x="{left}" y="28" {text}>{html.escape(note)}</text>')
    parts += [
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="#999"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#999"/>',
        f'<text x="{left - 4}" y="{top + 4}" {text} text-anchor="end">{y1:.2f}</text>',
        f'<text x="{left - 4}" y="{height - bottom}" {text} text-anchor="end">{y0:.2f}</text>',
        f'<text x="{left}" y="{height - 10}" {text}>{x_unit} {x0:.3g}</text>',
        f'<text x="{width - right}" y="{height - 10}" {text} text-anchor="end">{x_unit} {x1:.3g}</text>',
    ]
    if level is not None:
        parts += [f'<line class="gf-level" x1="{left}" y1="{y(level):.1f}" x2="{width - right}" y2="{y(level):.1f}" '
                  f'stroke="#8c6d31" stroke-width="1.5" stroke-dasharray="6 4"/>',
                  f'<text x="{width - right}" y="{y(level) - 4:.1f}" {text} text-anchor="end" fill="#8c6d31">'
                  f"{html.escape(level_label)} {level:.3f}</text>"]
    if xs:
        points = " ".join(f"{x(a):.1f},{y(b):.1f}" for a, b in zip(xs, ys))
        last_x, last_y = x(xs[-1]), y(ys[-1])
        parts += [f'<polyline class="gf-race-line" fill="none" stroke="#4a7fc1" stroke-width="2" points="{points}"/>',
                  *(f'<circle cx="{x(a):.1f}" cy="{y(b):.1f}" r="2" fill="#4a7fc1"/>' for a, b in zip(xs, ys)
                    if len(xs) <= 40),  # a few validation points are marked; a long loss log is a line
                  f'<circle cx="{last_x:.1f}" cy="{last_y:.1f}" r="3.5" fill="#d62728"/>',
                  f'<text x="{min(last_x, width - right - 60):.1f}" y="{max(last_y - 8, top + 10):.1f}" {text}>'
                  f"{ys[-1]:.3f}</text>"]
    parts.append("</svg>")
    return "".join(parts)


def deletion_curve_svg(fractions: Sequence[float], probs: Sequence[float], *, width: int = 220, height: int = 120,
                       title: str = "deletion curve", color: str = "#4a7fc1") -> str:
    """p(target) as the top-scored units are removed (x: the fraction removed), as a small ``<svg>``.

    The y axis runs from 0 to 1 so that curves of different methods can be compared by eye; the area
    over the curve is shaded (its mean height over the points is the AOPC).
    """
    if len(fractions) != len(probs):
        raise ValueError(f"{len(fractions)} fractions but {len(probs)} probabilities")
    if not probs:
        return ""
    left, right, top, bottom = 30, 8, 18, 24

    def x(f: float) -> float:
        return left + f * (width - left - right)

    def y(p: float) -> float:
        return top + (1.0 - p) * (height - top - bottom)

    points = " ".join(f"{x(f):.1f},{y(p):.1f}" for f, p in zip(fractions, probs))
    ceiling = y(probs[0])
    area = f"{x(fractions[0]):.1f},{ceiling:.1f} {points} {x(fractions[-1]):.1f},{ceiling:.1f}"
    text = 'font-size="10" font-family="system-ui, sans-serif" fill="#333"'
    return "".join([
        f'<svg class="gf-deletion-curve" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" data-points="{len(probs)}" role="img" aria-label="{html.escape(title)}">',
        f'<text x="{left}" y="11" {text}>{html.escape(title)}</text>',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="#999"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#999"/>',
        f'<text x="{left - 3}" y="{top + 4}" {text} text-anchor="end">1</text>',
        f'<text x="{left - 3}" y="{height - bottom}" {text} text-anchor="end">0</text>',
        f'<text x="{left}" y="{height - 8}" {text}>0%</text>',
        f'<text x="{width - right}" y="{height - 8}" {text} text-anchor="end">100% removed</text>',
        f'<polygon fill="{color}" fill-opacity="0.18" stroke="none" points="{area}"/>',
        f'<polyline class="gf-deletion-line" fill="none" stroke="{color}" stroke-width="2" points="{points}"/>',
        "</svg>",
    ])
