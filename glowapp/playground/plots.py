"""Figures of the 2-D playground: panels of densities on a grid, and of samples.

Figures are built with :class:`matplotlib.figure.Figure` directly (no pyplot state), so they can
be saved from a script or shown in a notebook alike.
"""

from __future__ import annotations

from collections.abc import Callable

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import Tensor

from glowapp.playground.experiments import DatasetFit, EnergyFit
from glowapp.playground.grid import Grid

PANEL_INCHES = 1.7
CMAP = "magma"

Key = tuple[str, str]  # (row label, column label)


def _panels(keys: list[Key], draw: Callable[[Axes, Key], None], title: str = "") -> Figure:
    """A figure with one square panel per ``(row, column)`` key, rows and columns in order of
    first appearance, labelled on the left and on top; ``draw(ax, key)`` fills a panel."""
    rows = list(dict.fromkeys(row for row, _ in keys))
    columns = list(dict.fromkeys(column for _, column in keys))
    figure = Figure(figsize=(PANEL_INCHES * len(columns), PANEL_INCHES * len(rows) + 0.4))
    axes = figure.subplots(len(rows), len(columns), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for key in keys:
        ax = axes[rows.index(key[0]), columns.index(key[1])]
        ax.set_axis_on()
        ax.set_xticks([])
        ax.set_yticks([])
        draw(ax, key)
    for i, row in enumerate(rows):
        axes[i, 0].set_ylabel(row)
    for j, column in enumerate(columns):
        axes[0, j].set_title(column, fontsize=9)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure


def density_figure(log_densities: dict[Key, Tensor], grid: Grid, title: str = "") -> Figure:
    """Panels of densities ``exp(log p)`` from ``[size, size]`` log-images on ``grid`` (``z₂``
    up), each scaled to its own maximum."""

    def draw(ax: Axes, key: Key) -> None:
        image = log_densities[key].double()
        ax.imshow(
            (image - image.max()).exp().numpy(),
            origin="lower",
            extent=(grid.lo, grid.hi, grid.lo, grid.hi),
            cmap=CMAP,
            interpolation="nearest",
        )

    return _panels(list(log_densities), draw, title)


def samples_figure(samples: dict[Key, Tensor], grid: Grid, title: str = "") -> Figure:
    """Panels of 2-D histograms of point sets ``[N, 2]`` over ``grid``'s window (points
    outside it are not drawn)."""

    def draw(ax: Axes, key: Key) -> None:
        points = samples[key].detach().double().numpy()
        window = [[grid.lo, grid.hi], [grid.lo, grid.hi]]
        ax.hist2d(points[:, 0], points[:, 1], bins=grid.size // 2, range=window, cmap=CMAP)
        ax.set_aspect("equal")

    return _panels(list(samples), draw, title)


def energy_figures(
    true_log_densities: dict[str, Tensor], fits: list[EnergyFit], grid: Grid
) -> dict[str, Figure]:
    """Rezende & Mohamed's Figure 3: each energy's true density, then the learned ``q`` of each
    flow kind and length (``"energies"``), and samples of each ``q`` (``"energies_samples"``)."""
    densities = {(name, "exp(−U)"): image for name, image in true_log_densities.items()}
    densities |= {(f.energy, f"{f.flow} K={f.length}"): f.log_density for f in fits}
    samples = {(f.energy, f"{f.flow} K={f.length}"): f.samples for f in fits}
    return {
        "energies": density_figure(densities, grid, "Reverse-KL fits: learned density q"),
        "energies_samples": samples_figure(samples, grid, "Reverse-KL fits: samples of q"),
    }


def dataset_figures(
    data: dict[str, Tensor], fits: list[DatasetFit], grid: Grid
) -> dict[str, Figure]:
    """Each data set's maximum-likelihood fits: the learned densities (``"datasets"``), and the
    training points beside samples of each flow (``"datasets_samples"``)."""
    densities = {(f.dataset, f.flow): f.log_density for f in fits}
    samples = {(name, "data"): points for name, points in data.items()}
    samples |= {(f.dataset, f.flow): f.samples for f in fits}
    return {
        "datasets": density_figure(densities, grid, "Maximum-likelihood fits: learned density"),
        "datasets_samples": samples_figure(samples, grid, "Maximum-likelihood fits: samples"),
    }
