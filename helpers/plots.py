"""Static matplotlib figures that render on GitHub (pLDDT per residue, with provenance footers)."""

from __future__ import annotations

import numpy as np

from helpers.structure import PLDDT_BANDS


def plot_plddt(plddt, title: str = "", provenance: str = "", ax=None):
    """pLDDT (0–100) per residue with the AlphaFold confidence bands shaded; returns the Axes."""
    import matplotlib.pyplot as plt

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


def plot_variant_bars(table, columns: list[str], title: str = "", provenance: str = "", budget_gib: float | None = None):
    """One bar panel per column of a variants table (index = variant); an optional GPU budget line; returns the Figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(columns), figsize=(3.4 * len(columns), 3.6), squeeze=False)
    for ax, column in zip(axes[0], columns):
        values = table[column].astype(float)
        ax.bar(range(len(values)), values, color="#4C72B0")
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
    """Per-residue pLDDT difference of each variant from the reference variant; returns the Axes."""
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=(9, 3.2))
    base = np.asarray(results[reference].plddt)
    for name, result in results.items():
        if name != reference and result is not None:
            ax.plot(np.arange(1, len(base) + 1), np.asarray(result.plddt) - base, lw=1, label=name)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xlabel("residue")
    ax.set_ylabel(f"pLDDT − pLDDT({reference})")
    ax.set_title(f"Per-residue pLDDT change against {reference}")
    ax.legend(fontsize=8)
    if provenance:
        ax.figure.text(0.01, 0.01, provenance, fontsize=7, color="0.35")
        ax.figure.subplots_adjust(bottom=0.25)
    return ax
