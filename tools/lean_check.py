"""Maintainer tool: the lean trunk against the original on the same weights, full size (≈ 15 GB of RAM, minutes).

    python -m tools.lean_check check [recipe] [source] [change,change…]
        default: every change, then `one_projection` alone; writes figures/07_lean_check.csv (docs/results.md)
    python -m tools.lean_check wide [source]
        where the changes act: row blocks smaller than L (chunked, in-place updates at full width), a padded batch, a
        two-chain complex with its linker, and the bf16 CPU recipe, then what bf16 itself moves (transformers'
        forward in bf16 against fp32); adds its rows to figures/07_lean_check.csv
    python -m tools.lean_check bf16-cost [source]
        that reference alone
"""

from __future__ import annotations

import gc
import sys

import pandas as pd
import torch

from helpers import complexes, data, folding, models, notebook
from helpers.lean import CHANGES, LeanOptions, make_lean, undo_lean
from tools import figures

#: The original model's trunk chunk size in the comparison.
CHUNK_SIZE = 64
#: `wide`: the pair rows per chunk (fewer than every length, so each chunked update is compared at full width), the
#: lengths of the padded batch (the shorter one padded), the complex's two chains (joined by ESMFold's 25-glycine
#: linker), the length folded with the bf16 CPU recipe (bf16 is emulated on CPUs without AVX-512 BF16: slow), and the
#: trunk passes of each fold (two: the second starts from recycled state, so the recycling change acts too).
WIDE_ROWS, WIDE_LENGTHS, WIDE_CHAINS, WIDE_BF16_LENGTH, WIDE_RECYCLES = 16, (48, 64), (24, 24), 48, 1
#: The bf16 CPU recipe of notebook 08.
BF16_RECIPE = "bf16-lean"
#: What a row of 07_lean_check.csv says about its chunks when rows were not set: the default positions budget,
#: one chunk at these lengths.
WHOLE = "default (one chunk at these lengths)"
COLUMNS = ["recipe", "weights", "changes", "rows per chunk", "length", "mode", "max |Δ position| (Å)",
           "max |Δ pLDDT|", "|Δ pTM|", "provenance"]


def _difference(a, b) -> dict:
    return {"max |Δ position| (Å)": float(abs(a.positions - b.positions).max()),
            "max |Δ pLDDT|": float(abs(a.plddt - b.plddt).max()), "|Δ pTM|": abs(a.ptm - b.ptm)}


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
                rows.append({"recipe": recipe, "weights": source, "changes": changes,
                             "rows per chunk": opts.rows if opts is not None and opts.rows else WHOLE,
                             "length": len(sequence), "mode": mode, **_difference(original[k][i], lean[k][i])})
    return pd.DataFrame(rows)


class _Complex:
    """A complex's fold as the comparison needs it: every position's atoms (linker included), pLDDT and pTM."""

    def __init__(self, output):
        self.positions = output["positions"][-1, 0].float().numpy()
        self.plddt = (output["plddt"][0].float() * 100).numpy()
        self.ptm = float(output["ptm"])


def fold_complex_raw(model, tokenizer, chains, num_recycles=None) -> _Complex:
    """Fold chains joined as ESMFold joins them (`complexes.complex_inputs`: linker, residue-index gap)."""
    joined, residue_index, _ = complexes.complex_inputs(list(chains))
    inputs = tokenizer([joined], return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        return _Complex(model(**inputs, position_ids=torch.tensor([residue_index]), num_recycles=num_recycles))


def wide_cases(lengths=WIDE_LENGTHS, chains_lengths=WIDE_CHAINS, bf16_length=WIDE_BF16_LENGTH,
               recycles=WIDE_RECYCLES):
    """(recipe, mode, length, fold(model, tokenizer) → a result per sequence) of `check_wide`, most telling first."""
    sequences = [data.sequence_of_length(n)[0] for n in lengths]
    # two different pieces of one protein as the chains (a complex of a chain with itself would hide a swapped index)
    whole = data.sequence_of_length(sum(chains_lengths))[0]
    chains = [whole[:chains_lengths[0]], whole[chains_lengths[0]:]]
    joined = complexes.complex_inputs(chains)[0]
    cases = [("fp32", "alone", lengths[0], lambda m, t: [folding.fold(m, t, sequences[0], recycles)]),
             ("fp32", "padded batch", lengths, lambda m, t: folding.fold_many(m, t, sequences, recycles)),
             ("fp32", "two-chain complex with its linker", len(joined),
              lambda m, t: [fold_complex_raw(m, t, chains, recycles)])]
    if bf16_length:
        bf16 = data.sequence_of_length(bf16_length)[0]
        cases.append((BF16_RECIPE, "alone", bf16_length, lambda m, t: [folding.fold(m, t, bf16, recycles)]))
    return cases


def check_wide(source: str = models.FULL_SIZE_STAND_IN, rows: int = WIDE_ROWS, cases=None, write=None):
    """The lean trunk (every change, `rows` pair rows per chunk) against transformers' forward on the same loaded
    weights, case by case (`wide_cases`): fp32 alone, in one padded batch and as a two-chain complex; then the bf16
    CPU recipe. One model in RAM at a time (full size: the fp32 model's ≈ 14 GB, then bf16's ≈ 7 GB). `write(rows)`
    gets each case's rows as soon as they are measured."""
    table, recipe_loaded, model, tokenizer = [], None, None, None
    for recipe, mode, length, fold in cases if cases is not None else wide_cases():
        if recipe != recipe_loaded:
            model = tokenizer = None  # the last recipe's model leaves RAM before the next loads
            gc.collect()
            model, tokenizer = models.load_model(recipe, device="cpu", source=source, allow_cpu=True)
            recipe_loaded = recipe
        undo_lean(model)  # transformers' forward (the bf16 recipe loads lean)
        model.trunk.set_chunk_size(None)
        original = fold(model, tokenizer)
        make_lean(model, LeanOptions(rows=rows))
        lean = fold(model, tokenizer)
        lengths = length if isinstance(length, tuple) else (length,)
        new = [{"recipe": recipe, "weights": source, "changes": "all", "rows per chunk": rows, "length": n,
                "mode": mode, **_difference(a, b)} for n, a, b in zip(lengths, original, lean)]
        print(new, flush=True)
        table += new
        if write is not None:
            write(pd.DataFrame(new))
    return pd.DataFrame(table)


def bf16_cost(source: str = models.FULL_SIZE_STAND_IN, length: int = WIDE_BF16_LENGTH,
              recycles: int = WIDE_RECYCLES) -> pd.DataFrame:
    """What bf16 itself moves: transformers' forward of the bf16 CPU recipe against that of fp32, on the same
    checkpoint (no lean change) — the scale the lean trunk's bf16 differences compare to. One model in RAM at a time."""
    sequence = data.sequence_of_length(length)[0]
    results = []
    for recipe in ("fp32", BF16_RECIPE):
        model, tokenizer = models.load_model(recipe, device="cpu", source=source, allow_cpu=True)
        undo_lean(model)
        model.trunk.set_chunk_size(None)
        results.append(folding.fold(model, tokenizer, sequence, recycles))
        del model, tokenizer
        gc.collect()
    print(f"largest |coordinate|: {abs(results[0].positions).max():.1f} Å", flush=True)
    return pd.DataFrame([{"recipe": BF16_RECIPE, "weights": source, "changes": "none: bf16 against fp32",
                          "rows per chunk": "—", "length": length, "mode": "alone", **_difference(*results)}])


#: What the bf16 reference row compares, for its provenance.
BF16_COST = (f"{BF16_RECIPE} (every weight bf16) against fp32, both transformers' forward unchunked, "
             f"{WIDE_RECYCLES + 1} trunk passes, the same checkpoint")


def _provenance(recipe_part: str, source: str,
                what: str = "the same loaded weights folded by the original and the lean model") -> str:
    return f"measured: {notebook.provenance_line('cpu', source)}, {recipe_part}, {what}"


def add_rows(table: pd.DataFrame, path=None) -> pd.DataFrame:
    """`table`'s rows in figures/07_lean_check.csv, replacing rows of the same recipe, changes, chunk rows, length
    and mode (older rows gain the `rows per chunk` column); returns the whole table."""
    path = path or figures.figures_dir() / "07_lean_check.csv"
    old = pd.read_csv(path) if path.exists() else pd.DataFrame(columns=COLUMNS)
    if "rows per chunk" not in old:
        old.insert(old.columns.get_loc("length"), "rows per chunk", WHOLE)
    key = ["recipe", "changes", "rows per chunk", "length", "mode"]
    new_keys = set(table[key].astype(str).itertuples(index=False, name=None))
    kept = old[[k not in new_keys for k in old[key].astype(str).itertuples(index=False, name=None)]]
    merged = pd.concat([kept, table[COLUMNS]], ignore_index=True)
    merged.to_csv(path, index=False)
    return merged


if __name__ == "__main__":
    command = sys.argv[1:2]
    if command == ["wide"]:
        source = sys.argv[2] if len(sys.argv) > 2 else models.FULL_SIZE_STAND_IN

        def write(rows):
            rows["provenance"] = [_provenance(
                ("fp32" if r == "fp32" else f"{r} (every weight bf16)")
                + f", transformers' forward unchunked, {WIDE_RECYCLES + 1} trunk passes", source) for r in rows["recipe"]]
            add_rows(rows)

        check_wide(source, write=write)
        cost = bf16_cost(source)
        cost["provenance"] = _provenance(BF16_COST, source, "no lean change")
        add_rows(cost)
        sys.exit(0)
    if command == ["bf16-cost"]:  # that reference alone (`wide` ends with it)
        source = sys.argv[2] if len(sys.argv) > 2 else models.FULL_SIZE_STAND_IN
        cost = bf16_cost(source)
        cost["provenance"] = _provenance(BF16_COST, source, "no lean change")
        print(add_rows(cost).to_string())
        sys.exit(0)
    if command != ["check"]:
        sys.exit("usage: python -m tools.lean_check check|wide …  — original vs lean on the same weights")
    recipe = sys.argv[2] if len(sys.argv) > 2 else "fp32"
    source = sys.argv[3] if len(sys.argv) > 3 else models.FULL_SIZE_STAND_IN
    changes = LeanOptions.only(*sys.argv[4].split(",")) if len(sys.argv) > 4 else [None, LeanOptions.only("one_projection")]
    table = check_equivalence(recipe, source, options=changes)
    print(table.to_string())
    table["provenance"] = _provenance(f"{recipe}, chunk {CHUNK_SIZE}", source)
    if len(sys.argv) <= 4:
        add_rows(table)
