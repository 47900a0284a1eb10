"""Maintainer tool: the lean trunk against the original on the same weights, full size (≈ 15 GB of RAM, minutes).

    python -m tools.lean_check check [recipe] [source]
"""

from __future__ import annotations

from helpers.lean import make_lean


def check_equivalence(variant: str = "fp32", source: str = "random-full", lengths=(64, 96), device: str = "cpu",
                      chunk_size: int | None = 64):
    """Fold sequences with the original and the lean model (same loaded weights; alone and as one padded batch) and
    return the largest differences per sequence. On the full-size stand-in on a CPU: ≈ 15 GB of RAM, minutes."""
    import pandas as pd

    from helpers import data, folding, models

    model, tokenizer = models.load_model(variant, device=device, source=source, chunk_size=chunk_size)
    sequences = [data.sequence_of_length(n)[0] for n in lengths]
    runs = {}
    for name in ("original", "lean"):
        if name == "lean":
            make_lean(model)
        runs[name] = ([folding.fold(model, tokenizer, s) for s in sequences],
                      folding.fold_many(model, tokenizer, sequences))
    rows = []
    for i, sequence in enumerate(sequences):
        for mode, k in (("alone", 0), ("padded batch", 1)):
            a, b = runs["original"][k][i], runs["lean"][k][i]
            rows.append({"variant": variant, "weights": source, "length": len(sequence), "mode": mode,
                         "max |Δ position| (Å)": float(abs(a.positions - b.positions).max()),
                         "max |Δ pLDDT|": float(abs(a.plddt - b.plddt).max()), "|Δ pTM|": abs(a.ptm - b.ptm)})
    return pd.DataFrame(rows)


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] != ["check"]:
        sys.exit("usage: python -m tools.lean_check check [recipe] [source]  — original vs lean on the same weights")
    print(check_equivalence(*sys.argv[2:4]).to_string())
