"""Maintainer tool: the lean trunk against the original on the same weights, full size (≈ 15 GB of RAM, minutes).

    python -m tools.lean_check check [recipe] [source] [change,change…]
        default: every change, then `one_projection` alone; writes figures/07_lean_check.csv (docs/results.md)
"""

from __future__ import annotations

import sys

import pandas as pd

from helpers import data, folding, models, notebook
from helpers.lean import CHANGES, LeanOptions, make_lean
from tools import figures

#: The original model's trunk chunk size in the comparison.
CHUNK_SIZE = 64


def check_equivalence(recipe: str = "fp32", source: str = models.FULL_SIZE_STAND_IN, lengths=(64, 96),
                      device: str = "cpu", chunk_size: int | None = CHUNK_SIZE, options=None):
    """Fold sequences with the original and the lean model (same loaded weights, loaded once; alone and as one padded
    batch) and return the largest differences per sequence. `options`: a `LeanOptions`, or a list of them (each
    compared with the same original folds); default every change. On the full-size stand-in on a CPU: ≈ 15 GB of RAM,
    minutes."""
    model, tokenizer = models.load_model(recipe, device=device, source=source, chunk_size=chunk_size)
    sequences = [data.sequence_of_length(n)[0] for n in lengths]
    original = ([folding.fold(model, tokenizer, s) for s in sequences], folding.fold_many(model, tokenizer, sequences))
    rows = []
    for opts in options if isinstance(options, list) else [options]:
        make_lean(model, opts)
        lean = ([folding.fold(model, tokenizer, s) for s in sequences], folding.fold_many(model, tokenizer, sequences))
        changes = "all" if opts is None else ", ".join(c for c in CHANGES if getattr(opts, c))
        for i, sequence in enumerate(sequences):
            for mode, k in (("alone", 0), ("padded batch", 1)):
                a, b = original[k][i], lean[k][i]
                rows.append({"recipe": recipe, "weights": source, "changes": changes, "length": len(sequence),
                             "mode": mode, "max |Δ position| (Å)": float(abs(a.positions - b.positions).max()),
                             "max |Δ pLDDT|": float(abs(a.plddt - b.plddt).max()), "|Δ pTM|": abs(a.ptm - b.ptm)})
    return pd.DataFrame(rows)


if __name__ == "__main__":
    if sys.argv[1:2] != ["check"]:
        sys.exit("usage: python -m tools.lean_check check [recipe] [source] [change,change…]  — original vs lean on "
                 "the same weights")
    recipe = sys.argv[2] if len(sys.argv) > 2 else "fp32"
    source = sys.argv[3] if len(sys.argv) > 3 else models.FULL_SIZE_STAND_IN
    changes = LeanOptions.only(*sys.argv[4].split(",")) if len(sys.argv) > 4 else [None, LeanOptions.only("one_projection")]
    table = check_equivalence(recipe, source, options=changes)
    print(table.to_string())
    table["provenance"] = ("measured: " + notebook.provenance_line("cpu", source)
                           + f", {recipe}, chunk {CHUNK_SIZE}, the same loaded weights folded by the original and the "
                             "lean model")
    if len(sys.argv) <= 4:
        table.to_csv(figures.figures_dir() / "07_lean_check.csv", index=False)
