"""Maintainer tool: trace the committed grid of predicted peaks behind the hardware table (figures/04_predicted_grid.csv).

    python -m tools.grid grid [RECIPE ...]        the original model, every length × chunk size (≈ 1 hour)
    python -m tools.grid lean-grid [RECIPE ...]   the lean trunk of notebook 07

Each RECIPE stands for its activation profile (default: the profiles of the hardware table's recipes).
"""

from __future__ import annotations

import csv
import datetime as dt
import sys

import torch
import transformers

from helpers import data, fit, recipes
from helpers.fit import GRID_CHUNKS, GRID_LENGTHS, GRID_PROFILES, LEAN, LEAN_GRID_LENGTHS
from helpers.lean import LeanOptions

def _grid_path():
    return data.repo_root() / "figures" / "04_predicted_grid.csv"


def build_grid(profile: str, path=None, lean: bool = False) -> None:
    """Trace every (length, chunk) of the grid for one activation profile, appending rows to the CSV (resumable);
    `lean` traces the lean model of notebook 07 instead (chunk size label 'lean')."""
    path = path or _grid_path()
    done = set()
    if path.exists():
        with open(path) as handle:
            done = {(r["profile"], int(r["length"]), r["chunk size"]) for r in csv.DictReader(handle)}
    if lean:
        folder = fit.fake_folder(profile, None, LeanOptions())
        points = [(LEAN, length) for length in LEAN_GRID_LENGTHS]
    else:
        folder = fit.fake_folder(profile, None)
        points = [(chunk, length) for chunk in GRID_CHUNKS for length in GRID_LENGTHS]
    fields = ["profile", "length", "chunk size", "weights bytes (traced)", "peak live bytes", "activation bytes",
              *fit.PARKING_COLUMNS, "recycles", "torch", "transformers", "date", "method"]
    unchunked = {}
    for chunk, length in points:
        if (profile, length, str(chunk or "none")) in done:
            continue
        if chunk not in (None, LEAN) and chunk >= length and length in unchunked:
            trace = unchunked[length]  # one chunk covering the whole sequence = unchunked
        elif chunk == LEAN:
            trace = folder.trace(length, None)
        else:
            trace = folder.trace(length, chunk)
        if chunk is None:
            unchunked[length] = trace
        what = "the lean model (helpers.lean) of " if lean else ""
        row = {"profile": profile, "length": length, "chunk size": chunk or "none",
               "weights bytes (traced)": trace.weights, "peak live bytes": trace.peak,
               "activation bytes": trace.peak - trace.weights,
               "recycles": f"default (4 passes), {fit.TRACED_PASSES} traced: later passes allocate as the second",
               "torch": torch.__version__,
               "transformers": transformers.__version__, "date": dt.date.today().isoformat(),
               "method": f"fake-tensor trace of {what}the esmfold_v1 architecture on CPU (prediction, not a measurement)"}
        if lean:
            row.update(zip(fit.PARKING_COLUMNS, (trace.lm_weights, trace.lm_activations, trace.parked_activations)))
        data.append_csv(path, [row], fields)
        print(profile, length, chunk, round(trace.peak / 1024**3, 3), flush=True)
    fit.forget_cached_predictions()


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] in ("grid", "lean-grid"):
        profiles = dict.fromkeys(recipes.get(name).profile for name in sys.argv[2:]) or GRID_PROFILES
        for profile in profiles:
            build_grid(profile, lean=sys.argv[1] == "lean-grid")
    else:
        sys.exit("usage: python -m tools.grid grid|lean-grid [RECIPE ...]")
