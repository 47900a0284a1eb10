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
