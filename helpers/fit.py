"""“Will it fit?” — predict a fold's peak GPU memory on the CPU, without weights or a GPU, by running the real model
code on fake tensors and counting the bytes of live tensors."""

from __future__ import annotations

import functools

import torch

from helpers.memory import LiveBytes


def clear_model_caches() -> None:
    """Empty the transformers ESMFold helpers' functools caches (cached tensors must not leak between fake and real runs)."""
    from transformers.models.esm import modeling_esmfold
    from transformers.models.esm.openfold_utils import residue_constants, rigid_utils

    for module in (rigid_utils, residue_constants, modeling_esmfold):
        for value in vars(module).values():
            if callable(getattr(value, "cache_clear", None)):
                value.cache_clear()


def _cast(module: torch.nn.Module, dtype: torch.dtype) -> None:
    """Cast floating parameters and buffers in place of `.to(dtype)` (which cannot swap fake tensors)."""
    for sub in module.modules():
        for name, param in list(sub._parameters.items()):
            if param is not None and param.is_floating_point():
                sub._parameters[name] = torch.nn.Parameter(param.to(dtype), requires_grad=False)
        for name, buf in list(sub._buffers.items()):
            if buf is not None and buf.is_floating_point():
                sub._buffers[name] = buf.to(dtype)


#: What nvidia-smi shows beyond the live tensors, in three parts (all measured on one H100 by `make gpu-check`,
#: figures/09_gpu_check.csv and 09_gpu_limits.csv; torch 2.11+cu130, transformers 5.17, driver 580, 2026-11-26):
#: the CUDA context and cuBLAS handle — device memory in use with no tensor kept (1.17 GiB − 0.03 GiB reserved);
#: a T4's was not measured.
CUDA_CONTEXT_GIB = 1.14
#: What PyTorch's caching allocator holds beyond the live tensors, as a share of a fold's activations: measured
#: 0.02–0.13 up to 384 aa and 0.37–0.40 at 480 aa right after a 384-aa fold (cached blocks too small to reuse).
#: 0.25 keeps the estimate at or above every nvidia-smi reading of the seed article (within +10 %) and gives the
#: right answer for every fold measured under a T4 cap; under a cap the allocator frees its cache before it fails.
CACHE_SHARE = 0.25
#: Quanto recipes: the seed's int8 readings lie ≈ 0.5 GiB above what its fp32/fp16 readings imply. Not reproduced
#: here — loading int8 with transformers 5.17, or layer by layer as transformers 4 did, leaves 0.03 GiB in the cache —
#: so an allowance taken from the seed's readings, not a measurement.
QUANTO_ALLOWANCE_GIB = 0.4


def nvidia_smi_estimate(variant: str, allocated_gib, weights_gib):
    """What nvidia-smi will show for a fold predicted to peak at `allocated_gib` (weights + activations, GiB) — the
    number to hold against a GPU's memory: the live tensors, the allocator's cache (CACHE_SHARE of the activations),
    the CUDA context, and for Quanto recipes an allowance. Works on numbers and on pandas columns alike."""
    from helpers import models

    quanto = variant in models.RECIPES and models.RECIPES[variant].quanto is not None
    activations = allocated_gib - weights_gib
    return (allocated_gib + CACHE_SHARE * activations + CUDA_CONTEXT_GIB
            + (QUANTO_ALLOWANCE_GIB if quanto else 0.0))


def activation_profile(variant: str) -> str:
    """Which fake model traces a recipe's activations: 'fp32', 'fp16-lm' or 'bf16' (`models.Recipe.profile`)."""
    from helpers import models

    if variant not in models.RECIPES:
        raise ValueError(f"No activation profile is known for recipe {variant!r}")
    return models.RECIPES[variant].profile


class FakeFolder:
    """The real ESMFold model code built on fake tensors (no memory, no weights) for one activation profile."""

    def __init__(self, profile: str = "fp32", source: str | None = None, lean=None):
        from torch._subclasses.fake_tensor import FakeTensorMode
        from transformers import EsmForProteinFolding

        from helpers import lean as lean_module, models

        self.profile = profile
        self.mode = FakeTensorMode(allow_non_fake_inputs=True)
        config = models.load_config(source or "random-full")
        config.esmfold_config.fp16_esm = False
        clear_model_caches()
        with self.mode:
            self.model = EsmForProteinFolding(config).eval()
            if profile == "fp16-lm":
                _cast(self.model.esm, torch.float16)
            elif profile == "bf16":
                _cast(self.model, torch.bfloat16)
        if lean is not None:  # the lean forward methods (helpers.lean) run on fake tensors like the original ones
            lean_module.make_lean(self.model, lean)
        clear_model_caches()

    def trace(self, length: int, chunk_size: int | None = None, num_recycles: int | None = None, batch: int = 1):
        """(weights bytes, peak live bytes) of one fold of `batch` sequences of `length` residues."""
        counter = LiveBytes()
        clear_model_caches()
        try:
            with self.mode, counter, torch.no_grad():
                weights = counter.track_module(self.model)
                counter.reset_peak()
                self.model.trunk.set_chunk_size(chunk_size)
                ids = torch.zeros(batch, length, dtype=torch.long)
                output = self.model(ids, num_recycles=num_recycles)
                del output
        finally:
            clear_model_caches()
        return weights, counter.peak


_FOLDERS: dict = {}


def fake_folder(profile: str, source: str | None = None, lean=None) -> FakeFolder:
    """The FakeFolder of an activation profile (and lean options), built once and reused."""
    key = (profile, source or "random-full", lean)
    if key not in _FOLDERS:
        _FOLDERS[key] = FakeFolder(profile, source, lean)
    return _FOLDERS[key]


@functools.lru_cache(maxsize=None)
def _largest_linear_bytes(source: str) -> int:
    """fp32 bytes of the architecture's largest Linear weight (Quanto dequantizes one such weight per multiply)."""
    from helpers import models

    return max(m.weight.numel() * 4 for m in models.meta_model(source).modules() if isinstance(m, torch.nn.Linear))


@functools.lru_cache(maxsize=None)
def _offloaded_lm_bytes(source: str) -> tuple[int, int]:
    """(fp16 bytes of the language model's parameters, fp16 bytes of its largest Linear layer): what LM offloading takes
    off the GPU, and the one layer accelerate has on the GPU at a time."""
    from helpers import models

    lm = models.meta_model(source).esm
    largest = max(sum(p.numel() for p in m.parameters()) for m in lm.modules() if isinstance(m, torch.nn.Linear))
    return sum(p.numel() for p in lm.parameters()) * 2, largest * 2


def _weights_and_temporary(variant: str, source: str | None, traced_weights):
    """(weight bytes, transient bytes) of a variant: the traced weights for unquantized variants; for quantized ones
    the exact quantized bytes, plus one dequantized fp32 weight for Quanto; for LM offloading the traced weights
    without the LM's parameters, plus one LM layer on the GPU at a time."""
    from helpers import models

    recipe = models.RECIPES[variant]
    if recipe.offload_lm:
        lm, layer = _offloaded_lm_bytes(source or "random-full")
        return traced_weights - lm, layer
    if not recipe.quantized:
        return traced_weights, 0
    temporary = 0 if recipe.torchao else _largest_linear_bytes(source or "random-full")
    return variant_weight_bytes(variant, source), temporary


@functools.lru_cache(maxsize=None)
def _committed_grid():
    """The committed predicted grid (local checkout, or the published repository), read once."""
    import pandas as pd

    from helpers import data

    return pd.read_csv(data.repo_file("figures/04_predicted_grid.csv"))


def variant_weight_bytes(variant: str, source: str | None = None) -> int:
    """Exact weight bytes of a loaded variant: from the committed per-variant table for esmfold_v1, else by loading."""
    import pandas as pd

    from helpers import data, models

    source = source or "random-full"
    if source in ("random-full", models.REAL_MODEL_ID):
        table = pd.read_csv(data.repo_file("figures/03_variant_weights.csv")).set_index("variant")
        return int(table.loc[variant, "total"])
    model, _ = models.load_model(variant, device="cpu", source=source)
    return models.weights_bytes(model)["total"]


def predict_peak(variant: str, length: int, chunk_size: int | None = None, num_recycles: int | None = None,
                 source: str | None = None, batch: int = 1, lean=None) -> dict:
    """Predicted peak GPU memory of one fold (what `torch.cuda.max_memory_allocated` would report), in GiB.

    `source` picks the architecture: the full-size esmfold_v1 by default (only its configuration is read), or 'tiny'.
    `lean` (a `helpers.lean.LeanOptions`) traces the memory-lean model of notebook 07 instead of the original.

    Runs the real transformers model code on fake tensors with the variant's activation precision, counting live
    tensor bytes. Quantized variants combine that exact activation trace with their exact quantized weight bytes
    (Quanto and torchao tensors do not run on fake tensors) plus one dequantized fp32 weight (Quanto's temporary).
    """
    import time

    start = time.perf_counter()
    folder = fake_folder(activation_profile(variant), source, lean)
    traced_weights, peak = folder.trace(length, chunk_size, num_recycles, batch)
    activations = peak - traced_weights
    weights, extra = _weights_and_temporary(variant, source, traced_weights)
    from helpers import models

    recipe = models.RECIPES[variant]
    gib = 1024**3
    return {
        "variant": variant,
        "length": length,
        "chunk size": chunk_size,
        "weights (GiB)": weights / gib,
        "activations peak (GiB)": (activations + extra) / gib,
        "predicted peak allocated (GiB)": (weights + activations + extra) / gib,
        "predicted nvidia-smi (GiB)": nvidia_smi_estimate(variant, (weights + activations + extra) / gib, weights / gib),
        "lean": lean is not None,
        "method": "fake-tensor trace" + (" of the lean model" if lean is not None else "")
        + (" + exact quantized weight bytes" if recipe.quantized else "")
        + (" − offloaded LM weights + one LM layer" if recipe.offload_lm else ""),
        "seconds to predict": time.perf_counter() - start,
    }


# --- the "Which recipe fits my hardware?" table ------------------------------------------------------------------

#: Grid of the committed prediction table: lengths × trunk chunk sizes, per activation profile.
GRID_LENGTHS = (64, 128, 256, 384, 512, 640, 768, 896, 1024, 1280, 1536)
GRID_CHUNKS = (None, 32, 64, 128)
GRID_PROFILES = ("fp32", "fp16-lm")
#: GPU memory sizes of the hardware table, GiB (a "4 GB" card has 4 GiB); the last is a free Colab T4's budget.
BUDGETS_GIB = {"4 GB": 4.0, "6 GB": 6.0, "8 GB": 8.0, "12 GB": 12.0, "T4 (14.56 GiB)": 14.56}


#: Lengths of the lean model's grid (notebook 07): it reaches further.
LEAN_GRID_LENGTHS = GRID_LENGTHS + (1792, 2048, 2560)
#: The "chunk size" label of the lean trunk in grids and tables.
LEAN = "lean"


@functools.lru_cache(maxsize=None)  # a trace off the grid takes seconds to minutes and always gives the same bytes
def _allocated_and_weights(variant: str, length: int, chunk_size, source: str | None) -> tuple[float, float]:
    """(predicted peak allocated GiB, weights GiB): from the committed grid when the point is on it, else traced now."""
    from helpers import models

    source = source or "random-full"
    if source in ("random-full", models.REAL_MODEL_ID):
        grid = _committed_grid()
        hit = grid[(grid["profile"] == activation_profile(variant)) & (grid["length"] == length)
                   & (grid["chunk size"].astype(str) == str(chunk_size or "none"))]
        if len(hit):
            weights, extra = _weights_and_temporary(variant, source, int(hit["weights bytes (traced)"].iloc[0]))
            return (weights + int(hit["activation bytes"].iloc[0]) + extra) / 1024**3, weights / 1024**3
    if chunk_size == LEAN:
        from helpers import lean

        result = predict_peak(variant, length, source=source, lean=lean.LeanOptions())
    else:
        result = predict_peak(variant, length, chunk_size, source=source)
    return result["predicted peak allocated (GiB)"], result["weights (GiB)"]


def forget_cached_predictions() -> None:
    """Drop the cached committed grid and traces (after the grid CSV was rewritten)."""
    _committed_grid.cache_clear()
    _allocated_and_weights.cache_clear()


def lookup_or_predict(variant: str, length: int, chunk_size: int | None, source: str | None = None) -> float:
    """Predicted peak allocated GiB (default: the full-size esmfold_v1 architecture): from the committed grid when
    the point is on it, else traced now. `source` names another architecture (e.g. 'tiny'); `chunk_size='lean'` is
    the lean trunk of notebook 07."""
    return _allocated_and_weights(variant, length, chunk_size, source)[0]


def predicted_nvidia_smi(variant: str, length: int, chunk_size: int | None, source: str | None = None) -> float:
    """What nvidia-smi is predicted to show for this fold (GiB): `lookup_or_predict` plus the allocator's cache, the
    CUDA context and, for Quanto, an allowance (`nvidia_smi_estimate`). The number to hold against a GPU's memory."""
    allocated, weights = _allocated_and_weights(variant, length, chunk_size, source)
    return nvidia_smi_estimate(variant, allocated, weights)


#: Variants in the hardware table (fp16-seed folds like fp16 but must first load in fp32; bf16 is not traced yet).
TABLE_VARIANTS = ("fp32", "fp16", "fp16-offload", "int8-lm", "int8", "float8", "int4", "torchao-int8wo")


def predicted_grid(source: str | None = None):
    """The committed grid with each variant's predicted peak allocated GiB (weights + traced activations)."""
    import pandas as pd

    grid = _committed_grid()
    rows = []
    for variant in TABLE_VARIANTS:
        part = grid[grid["profile"] == activation_profile(variant)].copy()
        if part.empty:
            continue
        weights, extra = _weights_and_temporary(variant, source, part["weights bytes (traced)"])
        part["variant"] = variant
        part["weights (GiB)"] = weights / 1024**3
        part["predicted peak allocated (GiB)"] = (weights + part["activation bytes"] + extra) / 1024**3
        part["predicted nvidia-smi (GiB)"] = nvidia_smi_estimate(variant, part["predicted peak allocated (GiB)"],
                                                                 part["weights (GiB)"])
        rows.append(part)
    return pd.concat(rows, ignore_index=True)


def hardware_table(source: str | None = None):
    """Longest grid length each variant folds within each GPU size (peak + CUDA context allowance), with the chunk
    size that gets there (the largest — fastest — chunk size that fits; 'none' = unchunked)."""
    import pandas as pd

    grid = predicted_grid(source)
    grid["trunk"] = (grid["chunk size"].astype(str) == LEAN).map({True: " + lean trunk", False: ""})
    rows = []
    for (variant, trunk), part in grid.groupby(["variant", "trunk"], sort=False):
        row = {"variant": variant + trunk, "weights (GiB)": round(float(part["weights (GiB)"].iloc[0]), 2)}
        for label, budget in BUDGETS_GIB.items():
            fit = longest_fitting(part, budget)
            if fit is None:
                row[label] = "does not fit"
                continue
            longest, best = fit
            beyond = part["length"].max() == longest
            row[label] = f"{'≥ ' if beyond else ''}{longest} aa" + (f" (chunk {best})" if best != LEAN else "")
        rows.append(row)
    return pd.DataFrame(rows)


_CHUNK_ORDER = {"none": 0, "128": 1, "64": 2, "32": 3, LEAN: 4}


def longest_fitting(part, budget_gib: float) -> tuple[int, str] | None:
    """(longest length, chunk label) of the rows of one variant's predicted grid whose nvidia-smi estimate fits
    `budget_gib`, taking the fastest chunk size at that length; None if no row fits."""
    fits = part[part["predicted nvidia-smi (GiB)"] <= budget_gib]
    if fits.empty:
        return None
    longest = int(fits["length"].max())
    chunks = fits[fits["length"] == longest]["chunk size"].astype(str)
    return longest, min(chunks, key=lambda c: _CHUNK_ORDER[c])


#: The order in which `recommend` tries recipes: most accurate and fastest first. Offloading keeps fp16's numbers
#: (it costs one copy of the LM weights over PCIe per fold); int8/int4 change the numbers a little (notebook 05).
RECOMMEND_LADDER = ("fp16", "fp16-offload", "int8-lm", "int8", "int4")
#: Trunk chunk sizes from fastest to leanest, then the lean trunk of notebook 07.
CHUNK_LADDER = (None, 128, 64, 32, LEAN)
#: Protein lengths (columns) of the recipe table.
RECIPE_LENGTHS = (256, 512, 768, 1024, 1280, 1536, 2048, 2560)


def recommend(budget_gib: float, length: int, source: str | None = None) -> tuple[str, int | None, float] | None:
    """(variant, chunk size, predicted GiB incl. CUDA context) of the first recipe in RECOMMEND_LADDER × CHUNK_LADDER
    predicted to fold `length` residues within `budget_gib` (the grid length at or above `length`); None if none fits."""
    grid = predicted_grid(source)
    longer = sorted(n for n in grid["length"].unique() if n >= length)
    if not longer:
        return None
    at = grid[grid["length"] == longer[0]]
    for variant in RECOMMEND_LADDER:
        for chunk in CHUNK_LADDER:
            row = at[(at["variant"] == variant) & (at["chunk size"].astype(str) == str(chunk or "none"))]
            if len(row):
                need = float(row["predicted nvidia-smi (GiB)"].iloc[0])
                if need <= budget_gib:
                    return variant, chunk, need
    return None


def recipe_table(source: str | None = None):
    """"I have X GB of GPU memory and a protein of L residues → use recipe Y": one row per GPU size, one column per
    length, each cell the recommended recipe and chunk size (predicted)."""
    import pandas as pd

    rows = []
    for label, budget in BUDGETS_GIB.items():
        row = {"GPU memory": label}
        for length in RECIPE_LENGTHS:
            pick = recommend(budget, length, source)
            trunk = "lean trunk" if pick and pick[1] == LEAN else f"chunk {pick[1] or 'none'}" if pick else ""
            row[f"≤ {length} aa"] = f"{pick[0]} · {trunk} ({pick[2]:.1f} GiB)" if pick else "no recipe fits"
        rows.append(row)
    return pd.DataFrame(rows)


def _trunk_label(chunk) -> str:
    """'chunk size 64', 'chunk size none' or 'the lean trunk (notebook 07)'."""
    return "the lean trunk (notebook 07)" if chunk == LEAN else f"chunk size {chunk or 'none'}"


def lean_steps(variant: str = "int8", lengths=(1000, 2000), chunk_size: int = 32):
    """Predicted peak (GiB, allocated) of one fold as the lean trunk's changes are switched on one after another,
    starting from the original model with trunk chunk `chunk_size` (notebook 07). Minutes at L = 2,000."""
    import pandas as pd

    from helpers import lean

    rows = []
    for length in lengths:
        steps = [("original model, chunk %d" % chunk_size, None)]
        steps += [(f"+ {change}", lean.LeanOptions.only(*lean.CHANGES[:i + 1])) for i, change in enumerate(lean.CHANGES)]
        for label, options in steps:
            result = predict_peak(variant, length, chunk_size, lean=options)
            rows.append({"variant": variant, "length": length, "step": label,
                         "predicted peak allocated (GiB)": result["predicted peak allocated (GiB)"],
                         "activations peak (GiB)": result["activations peak (GiB)"],
                         "seconds to predict": result["seconds to predict"]})
            print(rows[-1], flush=True)
    return pd.DataFrame(rows)


class TooLongError(ValueError):
    """A sequence predicted not to fit the GPU budget with the chosen recipe; the message names a recipe that does."""


#: Recipes from the most to the least precise: the order in which `check_fits` suggests the next one.
_LADDER = ("fp32", "fp16", "int8-lm", "int8", "int4")


def check_fits(variant: str, length: int, chunk_size: int | None = None, budget_gib: float | None = None) -> float:
    """Return the predicted peak (GiB, with the CUDA-context allowance) of folding `length` residues with `variant`;
    raise TooLongError naming the next recipe or chunk size that fits if it exceeds `budget_gib` (default: this GPU's
    memory, or a T4's). Uses the committed grid (rounded up to the next grid length), else a fresh trace."""
    if budget_gib is None:
        budget_gib = (torch.cuda.get_device_properties(0).total_memory / 1024**3 if torch.cuda.is_available()
                      else BUDGETS_GIB["T4 (14.56 GiB)"])
    grid = predicted_grid()
    longer = sorted(length_ for length_ in grid["length"].unique() if length_ >= length)

    def predicted(v, chunk):
        if longer:
            row = grid[(grid["variant"] == v) & (grid["length"] == longer[0])
                       & (grid["chunk size"].astype(str) == str(chunk or "none"))]
            if len(row):
                return float(row["predicted nvidia-smi (GiB)"].iloc[0])
        return predict_peak(v, length, chunk)["predicted nvidia-smi (GiB)"]

    need = predicted(variant, chunk_size)
    if need <= budget_gib:
        return need
    options = [(v, c) for v in _LADDER[_LADDER.index(variant) if variant in _LADDER else 0:]
               for c in (chunk_size, 64, 32, LEAN) if v != variant or c != chunk_size]
    for v, c in options:
        if v in set(grid["variant"]) and predicted(v, c) <= budget_gib:
            raise TooLongError(
                f"{length} residues with '{variant}' (chunk size {chunk_size or 'none'}) need about {need:.1f} GiB, "
                f"more than the {budget_gib:.1f} GiB budget. Predicted to fit: '{v}' with {_trunk_label(c)} "
                f"(≈ {predicted(v, c):.1f} GiB)."
            )
    raise TooLongError(
        f"{length} residues need about {need:.1f} GiB with '{variant}', more than the {budget_gib:.1f} GiB budget, and "
        "no recipe of notebooks 01–04 is predicted to fit: fold a shorter piece (a domain), or see notebooks 06–07 "
        "(offload, a leaner trunk)."
    )
