"""Load a recipe, fold a sequence, and record both steps' memory and time in one row (recipes compared side by side)."""

from __future__ import annotations

import time

import pandas as pd
import torch
from tqdm.auto import tqdm

from helpers import data, fit, folding, lean, memory, metrics, models, recipes, rehearsal


def load_and_fold(recipe: str, sequence: str, device: str, chunk_size: int | None = 64, source: str | None = None,
                  num_recycles: int | None = None):
    """Load `recipe`, fold `sequence` once, free the model; return (row of measurements, FoldResult or None)."""
    row = {"recipe": recipe, "description": recipes.get(recipe).description, "length": len(sequence),
           "chunk size": chunk_size}
    result = None
    model = None
    with memory.measure(f"load {recipe}", device=device) as load:
        model, tokenizer = models.load_model(recipe, device=device, source=source, chunk_size=chunk_size)
    row.update({f"load {k}": v for k, v in load.items() if k not in ("label", "device", "cpu peak is")})
    if load["status"] == "ok":
        row["weights (GiB)"] = models.resident_bytes(model) / memory.GIB  # offloaded weights not counted
        with memory.measure(f"fold {recipe}", device=device) as fold:
            result = folding.fold(model, tokenizer, sequence, num_recycles=num_recycles)
        row.update({f"fold {k}": v for k, v in fold.items() if k not in ("label", "device", "cpu peak is")})
        if result is not None:
            row.update(result.summary())
    del model
    memory.free_memory()
    return row, result


def agreement_table(results: dict, reference: str = "fp32") -> pd.DataFrame:
    """Agreement of every recipe's prediction with the reference recipe's (TM-score, RMSD, lDDT-Cα, ΔpLDDT, ΔpTM)."""
    base = results[reference]
    rows = {name: metrics.compare_predictions(base, other) for name, other in results.items() if other is not None}
    return pd.DataFrame(rows).T


def stage_times(model, tokenizer, sequence: str, num_recycles: int | None = None) -> dict:
    """Seconds and peak memory of each stage of one fold: the language model, each trunk pass (48 blocks) and the
    structure module (all passes).

    Forward hooks read a (CUDA-synchronised) clock and reset the peak-memory counter as each stage starts, and read
    both as it ends; "other" is the rest of the total time (input embedding, output heads). Peak memory is torch's
    peak allocated on CUDA, and the live tensor bytes counted on a CPU; it includes the weights. Because the counter
    is reset, a `memory.measure` around this call sees only the last stage's peak: read 'fold peak (GiB)' instead.
    """
    device = folding.input_device(model)  # not the LM's first weight: the lean model may have parked it in CPU RAM
    on_cuda = device.type == "cuda"
    counter = None if on_cuda else memory.LiveBytes()

    def now():
        if on_cuda:
            torch.cuda.synchronize()
        return time.perf_counter()

    def reset_peak():
        if on_cuda:
            torch.cuda.reset_peak_memory_stats()
        else:
            counter.reset_peak()

    def peak():
        return (torch.cuda.max_memory_allocated() if on_cuda else counter.peak) / memory.GIB

    spans = {"language model": [], "trunk pass": [], "structure module": []}
    peaks = {name: 0.0 for name in spans}
    starts = {}
    blocks = model.trunk.blocks
    watched = {"language model": (model.esm, model.esm), "trunk pass": (blocks[0], blocks[-1]),
               "structure module": (model.trunk.structure_module, model.trunk.structure_module)}

    def enter(name):
        reset_peak()
        starts[name] = now()

    def leave(name):
        spans[name].append(now() - starts[name])
        peaks[name] = max(peaks[name], peak())

    handles = []
    for name, (first, last) in watched.items():
        handles.append(first.register_forward_pre_hook(lambda *_, n=name: enter(n)))
        handles.append(last.register_forward_hook(lambda *_, n=name: leave(n)))
    try:
        if counter is not None:
            counter.__enter__()
            counter.track_module(model)
        begin = now()
        folding.fold(model, tokenizer, sequence, num_recycles=num_recycles)
        total = now() - begin
    finally:
        if counter is not None:
            counter.__exit__(None, None, None)
        for handle in handles:
            handle.remove()
    out = {"language model (s)": sum(spans["language model"])}
    for i, seconds in enumerate(spans["trunk pass"], 1):
        out[f"trunk pass {i} (s)"] = seconds
    out["structure module, all passes (s)"] = sum(spans["structure module"])
    out["other (s)"] = total - sum(sum(v) for v in spans.values())
    out["total (s)"] = total
    out["language model peak (GiB)"] = peaks["language model"]
    out["trunk pass peak (GiB)"] = peaks["trunk pass"]
    out["structure module peak (GiB)"] = peaks["structure module"]
    # the stages reset the peak counter as they start: the fold's own peak is the largest of theirs and of what came
    # after the last reset (the heads)
    out["fold peak (GiB)"] = max(*peaks.values(), peak())
    return out


def seconds_with_passes(stages: dict, passes: int) -> float:
    """Estimated seconds of the same fold with `passes` trunk passes, from `stage_times`' split: the language model and
    the rest once, each trunk pass (with its structure-module pass) `passes` times."""
    trunk = [v for k, v in stages.items() if k.startswith("trunk pass")]
    per_pass = (sum(trunk) + stages["structure module, all passes (s)"]) / len(trunk)
    return stages["language model (s)"] + stages["other (s)"] + passes * per_pass


def measure_fold(model, tokenizer, sequence: str, device: str, label: str = "", num_recycles: int | None = None,
                 may_run_out: bool = False) -> dict:
    """One fold inside `memory.measure` (OOM caught; `may_run_out`: expected at the edge of the GPU's memory);
    'peak allocated (GiB)' is torch's on CUDA and, on a CPU, the live tensor bytes counted as they are allocated
    (weights included)."""
    counter = None if device.startswith("cuda") else memory.LiveBytes()
    with memory.measure(label, device=device, may_run_out=may_run_out) as record:
        if counter is None:
            folding.fold(model, tokenizer, sequence, num_recycles=num_recycles)
        else:
            with counter:
                counter.track_module(model)
                folding.fold(model, tokenizer, sequence, num_recycles=num_recycles)
    if counter is not None:
        record["peak allocated (GiB)"] = counter.peak / memory.GIB
    return record


def _predicted(recipe: str, length: int, chunk, source: str | None, num_recycles: int | None) -> float:
    """The predictor's peak allocated (GiB) for a sweep point, for the model that computes it: the tiny stand-in's own
    trace (on a CPU the measurement must match it), else the full-size esmfold_v1 from the committed grid (instant) —
    also in a rehearsal, where the tiny model stands in for the full-size one."""
    if models.weights_source(source) == models.TINY_STAND_IN and not rehearsal.active():
        return fit.lookup_or_predict(recipe, length, chunk, models.TINY_STAND_IN, num_recycles)
    return fit.grid_estimate(recipe, length, chunk)["allocated (GiB)"]


def sweep(recipe_names, lengths, chunk_sizes, device: str, source: str | None = None, predict: bool = True,
          num_recycles: int | None = None) -> pd.DataFrame:
    """Measure peak memory and time of one fold per (recipe, chunk size, length): one load per recipe, peaks reset
    before each point, a progress bar; a sweep looks for the edge of the GPU's memory, so a fold that runs out is
    expected — its recipe/chunk size skips the longer lengths. `num_recycles=0` times one trunk pass (the peak is the
    same as with the default 4; the time is about a quarter).

    On CUDA, "peak allocated" is torch's; on a CPU, the live tensor bytes are counted as they are allocated. With
    `predict`, each row also carries the "will it fit?" prediction for the same point.
    """
    rows = []
    bar = tqdm(total=len(recipe_names) * len(lengths) * len(chunk_sizes), desc="sweep")
    for recipe in recipe_names:
        model, tokenizer = models.load_model(recipe, device=device, source=source)
        weights = models.resident_bytes(model) / memory.GIB
        passes = model.config.esmfold_config.trunk.max_recycles if num_recycles is None else num_recycles + 1
        for chunk in chunk_sizes:
            if chunk == lean.LEAN:  # the lean trunk of notebook 07
                lean.make_lean(model)
            else:
                lean.undo_lean(model)
            model.trunk.set_chunk_size(None if chunk == lean.LEAN else chunk)
            stopped = False
            for length in sorted(lengths):
                row = {"recipe": recipe, "chunk size": chunk or "none", "length": length, "weights (GiB)": weights,
                       "trunk passes": passes}
                if stopped:
                    row["status"] = "skipped (shorter length ran out of memory)"
                else:
                    sequence, origin = data.sequence_of_length(length)
                    record = measure_fold(model, tokenizer, sequence, device, f"{recipe} L={length}",
                                          num_recycles=num_recycles, may_run_out=True)
                    row.update({k: v for k, v in record.items() if k not in ("label", "cpu peak is")})
                    row["sequence"] = origin
                    stopped = record["status"] == "OOM"
                    if predict and not stopped:
                        row["predicted peak allocated (GiB)"] = _predicted(recipe, length, chunk, source, num_recycles)
                rows.append(row)
                bar.update()
        del model
        memory.free_memory()
    bar.close()
    return pd.DataFrame(rows)
