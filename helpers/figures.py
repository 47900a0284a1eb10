"""Regenerate the committed figures in figures/ (each from a CSV written next to it, each with its provenance).

`python -m helpers.figures` (or `make figures`). Only figures that need no GPU are made here; none uses a stand-in.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import pandas as pd

from helpers import data, memory, models, plots, structure


def figures_dir() -> Path:
    """The repository's figures/ folder."""
    return data.repo_root() / "figures"


def weights_per_stage(out_dir: Path) -> Path:
    """Bar chart: fp32 weights per stage of the esmfold_v1 architecture against a T4's budget (exact arithmetic)."""
    import matplotlib.pyplot as plt
    import transformers

    counts = models.component_parameters(models.meta_model("random-full"))
    stages = [k for k in counts if k != "total"]
    table = pd.DataFrame({"stage": stages, "parameters": [counts[s] for s in stages]})
    table["fp32 GiB"] = table["parameters"] * 4 / memory.GIB
    table.to_csv(out_dir / "01_weights_per_stage.csv", index=False)

    fig, ax = plt.subplots(figsize=(8, 3.6))
    left = 0.0
    colours = ["#4C72B0", "#DD8452", "#55A868", "#8172B3"]
    for (_, row), colour in zip(table.iterrows(), colours):
        ax.barh(["fp32 weights"], [row["fp32 GiB"]], left=left, color=colour,
                label=f"{row['stage']}: {row['parameters'] / 1e9:.3f} B params, {row['fp32 GiB']:.2f} GiB")
        left += row["fp32 GiB"]
    ax.axvline(memory.T4_BUDGET_GIB, color="red", ls="--", lw=1.5)
    ax.text(memory.T4_BUDGET_GIB + 0.1, 0, f"free Colab T4\n{memory.T4_BUDGET_GIB} GiB", color="red", va="center", fontsize=9)
    ax.set_xlim(0, 16.5)
    ax.set_yticks([])
    ax.set_xlabel("GiB")
    ax.set_title(f"ESMFold (esmfold_v1) weights in fp32: {left:.2f} GiB before any activation")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25), fontsize=8, ncol=1, frameon=False)
    fig.text(0.01, 0.01, f"Computed, not measured: parameter counts of the esmfold_v1 architecture × 4 bytes "
             f"(transformers {transformers.__version__}, {_dt.date.today().isoformat()}); device-independent.",
             fontsize=7, color="0.35")
    fig.subplots_adjust(bottom=0.45, top=0.88)
    path = out_dir / "01_weights_per_stage.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def reference_plddt(out_dir: Path) -> Path:
    """pLDDT per residue of the published ESMFold prediction of the ESM README's 65-residue example."""
    import matplotlib.pyplot as plt

    pdb = data.fetch("reference_predictions/esmfold_v1_fairesm_65aa.pdb").read_text()
    per_residue = structure.ca_bfactors(pdb)
    table = pd.DataFrame({"residue": list(per_residue), "pLDDT (CA B-factor)": list(per_residue.values())})
    table.to_csv(out_dir / "01_reference_plddt.csv", index=False)
    ax = plots.plot_plddt(
        table["pLDDT (CA B-factor)"].to_numpy(),
        title="A real ESMFold prediction: the ESM README's 65-residue example "
        f"(mean pLDDT over Cα {table['pLDDT (CA B-factor)'].mean():.1f})",
        provenance="Published prediction (fair-esm esmfold_v1, real weights), not run here: "
        "github.com/silviacambiago/esmfold-project result.pdb @ 0f9b49f; B-factors = pLDDT 0–100.",
    )
    path = out_dir / "01_reference_plddt.png"
    ax.figure.savefig(path, dpi=120)
    plt.close(ax.figure)
    return path


def main() -> None:
    """Write every figure that can be made without a GPU."""
    out_dir = figures_dir()
    out_dir.mkdir(exist_ok=True)
    for make in (weights_per_stage, reference_plddt):
        print("wrote", make(out_dir))


if __name__ == "__main__":
    main()
