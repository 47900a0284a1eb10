"""Static matplotlib figures that render on GitHub (pLDDT per residue, with provenance footers)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from helpers import recipes
from helpers.structure import PLDDT_BANDS

#: The line style of each trunk chunk size in the memory and time plots.
CHUNK_STYLES = {"none": "-", "128": "--", "64": "-.", "32": ":"}


def plot_plddt(plddt, title: str = "", provenance: str = "", ax=None):
    """pLDDT (0–100) per residue with the AlphaFold confidence bands shaded; returns the Axes."""
    plddt = np.asarray(plddt, dtype=float)
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 3.2))
    bounds = [100.0] + [low for low, _, _ in PLDDT_BANDS]
    for (low, colour, label), high in zip(PLDDT_BANDS, bounds):
        ax.axhspan(low, high, color=colour, alpha=0.18, lw=0, label=label)
    ax.plot(np.arange(1, len(plddt) + 1), plddt, color="black", lw=1.2)
    ax.set_xlim(1, max(len(plddt), 2))
    ax.set_ylim(0, 100)
    ax.set_xlabel("residue")
    ax.set_ylabel("pLDDT (0–100)")
    ax.set_title(title or f"pLDDT per residue (mean {plddt.mean():.1f})")
    ax.legend(loc="lower left", fontsize=8, ncol=4, framealpha=0.9)
    if provenance:
        ax.figure.text(0.01, 0.01, provenance, fontsize=7, color="0.35", ha="left", va="bottom")
        ax.figure.subplots_adjust(bottom=0.25)
    return ax


def plot_recipe_bars(table, columns: list[str], title: str = "", provenance: str = "", budget_gib: float | None = None):
    """One bar panel per column of a recipes table (index = recipe); an optional GPU budget line; returns the Figure."""
    fig, axes = plt.subplots(1, len(columns), figsize=(3.4 * len(columns), 3.6), squeeze=False)
    for ax, column in zip(axes[0], columns):
        values = table[column].astype(float)
        ax.bar(range(len(values)), values, color=[recipes.colour(name) or "#4C72B0" for name in table.index])
        ax.set_xticks(range(len(values)), [str(i) for i in table.index], rotation=45, ha="right", fontsize=8)
        ax.set_title(column, fontsize=9)
        for x, value in enumerate(values):
            if value == value:  # skip NaN
                ax.text(x, value, f"{value:.2f}", ha="center", va="bottom", fontsize=7)
        if budget_gib is not None and "GiB" in column:
            ax.axhline(budget_gib, color="red", ls="--", lw=1)
    fig.suptitle(title)
    if provenance:
        fig.text(0.01, 0.01, provenance, fontsize=7, color="0.35")
    fig.tight_layout(rect=(0, 0.05, 1, 0.95))
    return fig


def plot_plddt_differences(results: dict, reference: str = "fp32", provenance: str = ""):
    """Per-residue pLDDT difference of each recipe from the reference recipe; returns the Axes. Where the reference
    has no prediction (it ran out of memory or was skipped), the first recipe in `results` that has one is the
    reference: a printed line and the axis label say which."""
    folded = [name for name, result in results.items() if result is not None]
    if not folded:
        raise ValueError(f"no prediction to compare: none of {', '.join(results)} folded this protein")
    if results.get(reference) is None:  # e.g. the reference ran out of memory: compare with the first that folded
        print(f"{reference} has no prediction for this protein: the differences are against {folded[0]}")
        reference = folded[0]
    _, ax = plt.subplots(figsize=(9, 3.2))
    base = np.asarray(results[reference].plddt)
    for name, result in results.items():
        if name != reference and result is not None:
            ax.plot(np.arange(1, len(base) + 1), np.asarray(result.plddt) - base, lw=1, label=name,
                    color=recipes.colour(name))
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xlabel("residue")
    ax.set_ylabel(f"pLDDT − pLDDT({reference})")
    ax.set_title(f"Per-residue pLDDT change against {reference}")
    ax.legend(fontsize=8)
    if provenance:
        ax.figure.text(0.01, 0.01, provenance, fontsize=7, color="0.35")
        ax.figure.subplots_adjust(bottom=0.25)
    return ax


def plot_memory_vs_length(table, value: str = "peak allocated (GiB)", budget_gib: float | None = None,
                          seed: dict | None = None, title: str = "", provenance: str = "", ax=None,
                          budget_label: str | None = None):
    """Peak memory against sequence length, one line per (recipe, chunk size); weights floors dotted; the seed's
    published numbers (if given, in GB as `data.SEED_MEMORY_GB` holds them) as hollow markers; a GPU budget line,
    labelled `budget_label` (default: what a free T4 leaves PyTorch, the scale of peak allocated). Returns the Axes."""
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 5))
    for (recipe, chunk), part in table.groupby(["recipe", table["chunk size"].astype(str)], sort=False):
        part = part.dropna(subset=[value]).sort_values("length")
        ax.plot(part["length"], part[value], CHUNK_STYLES.get(chunk, "-"), marker="o", ms=3,
                color=recipes.colour(recipe), label=f"{recipe}, chunk {chunk}")
    for recipe, part in table.groupby("recipe", sort=False):
        ax.axhline(float(part["weights (GiB)"].iloc[0]), color=recipes.colour(recipe), lw=0.8, ls=(0, (1, 3)))
    for recipe, points in (seed or {}).items():  # the seed reports GB (10⁹ bytes); the axes are GiB
        ax.plot(list(points), [gb * 1e9 / 1024**3 for gb in points.values()], "s", mfc="none", ms=8, mew=1.5,
                color=recipes.colour(recipe) or "black", label=f"seed article, {recipe} (cited nvidia-smi, in GiB)")
    if budget_gib:
        ax.axhline(budget_gib, color="red", lw=1.5)
        label = budget_label or f"free T4: {budget_gib:.2f} GiB for PyTorch"
        ax.text(ax.get_xlim()[0], budget_gib, f" {label}", color="red", va="bottom", fontsize=8)
    ax.set_xlabel("sequence length L (residues)")
    ax.set_ylabel(value)
    ax.set_title(title or f"{value} against sequence length (dotted: weights only)")
    ax.legend(fontsize=7, ncol=2)
    if provenance:
        ax.figure.text(0.01, 0.005, provenance, fontsize=6.5, color="0.35")
        ax.figure.subplots_adjust(bottom=0.14)
    return ax


def plot_time_vs_length(table, seed: dict | None = None, provenance: str = "", ax=None, title: str = ""):
    """Seconds per fold against sequence length, one line per (recipe, chunk size); the seed's times if given."""
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 4.5))
    for (recipe, chunk), part in table.groupby(["recipe", table["chunk size"].astype(str)], sort=False):
        part = part[part["status"] == "ok"].sort_values("length")
        ax.plot(part["length"], part["seconds"], marker="o", ms=3, color=recipes.colour(recipe),
                ls=CHUNK_STYLES.get(chunk, "-"), label=f"{recipe}, chunk {chunk}")
    for recipe, points in (seed or {}).items():
        ax.plot(list(points), list(points.values()), "s", mfc="none", ms=8, color=recipes.colour(recipe) or "black",
                label=f"seed article, {recipe} (cited)")
    ax.set_xlabel("sequence length L (residues)")
    passes = sorted(set(table["trunk passes"])) if "trunk passes" in table else [4]
    ax.set_ylabel(f"seconds per fold ({'/'.join(map(str, passes))} trunk pass{'es' if passes != [1] else ''})")
    ax.set_title(title or "Time against sequence length")
    ax.legend(fontsize=7, ncol=2)
    if provenance:
        ax.figure.text(0.01, 0.005, provenance, fontsize=6.5, color="0.35")
        ax.figure.subplots_adjust(bottom=0.15)
    return ax


def _scatter_by_recipe(table, x: str, y: str, title: str, xlabel: str, ylabel: str, top: float, provenance: str,
                        ax, x_scale: float = 1.0, size=(5, 5)):
    """Points of y against x, one colour per recipe, with the y = x diagonal from 0 to `top`."""
    if ax is None:
        _, ax = plt.subplots(figsize=size)
    ok = table.dropna(subset=[x, y])
    for recipe, part in ok.groupby("recipe", sort=False):
        ax.plot(part[x] * x_scale, part[y], "o", color=recipes.colour(recipe), label=recipe, alpha=0.8)
    ax.plot([0, top], [0, top], color="black", lw=0.8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    if provenance:
        ax.figure.text(0.01, 0.005, provenance, fontsize=6.5, color="0.35")
    return ax


def plot_prediction_vs_measurement(table, provenance: str = "", ax=None):
    """Parity plot: the "will it fit?" prediction against the measured peak for every measured point."""
    measured, predicted = "peak allocated (GiB)", "predicted peak allocated (GiB)"
    ok = table.dropna(subset=[measured, predicted])
    top = max(ok[measured].max(), ok[predicted].max()) * 1.05
    return _scatter_by_recipe(table, measured, predicted, "“Will it fit?” prediction vs measurement",
                               "measured peak allocated (GiB)", "predicted peak allocated (GiB)", top, provenance, ax)


def plot_calibration(table, provenance: str = "", ax=None):
    """Mean pLDDT against lDDT-Cα to the experiment, one point per target and recipe; the diagonal is perfect calibration."""
    ax = _scatter_by_recipe(table, "lDDT-Cα", "mean pLDDT (Cα, scored residues)", "Is pLDDT calibrated?",
                             "lDDT-Cα to the experimental structure (× 100)", "mean pLDDT (Cα)", 100, provenance, ax,
                             x_scale=100, size=(5.5, 5))
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    return ax


def plot_metric_histograms(table, columns: list[str], seed_plddt: dict | None = None, provenance: str = ""):
    """One histogram panel per metric, one outline per recipe; the seed's published mean pLDDTs (cited) as lines."""
    fig, axes = plt.subplots(1, len(columns), figsize=(4.2 * len(columns), 3.6), squeeze=False)
    for ax, column in zip(axes[0], columns):
        for recipe, part in table.groupby("recipe", sort=False):
            values = part[column].dropna()
            if len(values):
                ax.hist(values, bins=10, histtype="step", lw=1.5, color=recipes.colour(recipe), label=recipe)
        if seed_plddt and "pLDDT" in column:
            for recipe, value in seed_plddt.items():
                ax.axvline(value, ls="--", lw=1, color=recipes.colour(recipe) or "black", label=f"seed, {recipe} (cited)")
        ax.set_title(column, fontsize=9)
        ax.set_ylabel("targets")
        ax.legend(fontsize=7)
    if provenance:
        fig.text(0.01, 0.005, provenance, fontsize=6.5, color="0.35")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig
