"""“Will it fit?” — predict a fold's peak GPU memory on the CPU, without weights or a GPU, by running the real model
code on fake tensors and counting the bytes of live tensors."""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from typing import NamedTuple

import pandas as pd
import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from transformers import EsmForProteinFolding
from transformers.models.esm import modeling_esmfold
from transformers.models.esm.modeling_esmfold import EsmFoldTriangularSelfAttentionBlock
from transformers.models.esm.openfold_utils import residue_constants, rigid_utils

from helpers import data, gpu, models, recipes
from helpers.lean import LEAN, LeanOptions, cumulative_steps, make_block_lean, make_lean, parkable
from helpers.memory import LiveBytes


def clear_model_caches() -> None:
    """Empty the transformers ESMFold helpers' functools caches (cached tensors must not leak between fake and real runs)."""
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
#: The allocator settings the estimate is for: `helpers.gpu` sets them (expandable segments) before CUDA starts. The
#: CACHE_SHARE readings were taken without them; with them the allocator maps freed memory into the segment a larger
#: block needs instead of caching it beside, which can only lower what it holds beyond the tensors, so the share is
#: kept, unchanged, as the allowance. A process whose CUDA started first runs without them, and `gpu.configure_allocator`
#: says so. `make gpu-check` with `--plan t4-3056` measures a 3,056-residue fold with them (figures/09_*).
ALLOCATOR_SETTINGS = gpu.ALLOCATOR_SETTINGS
#: Quanto recipes: the seed's int8 readings lie ≈ 0.5 GiB above what its fp32/fp16 readings imply. Not reproduced
#: here — loading int8 with transformers 5.17, or layer by layer as transformers 4 did, leaves 0.03 GiB in the cache —
#: so an allowance taken from the seed's readings, not a measurement.
QUANTO_ALLOWANCE_GIB = 0.4


def nvidia_smi_estimate(recipe: str, allocated_gib, weights_gib, context_gib: float = CUDA_CONTEXT_GIB):
    """What nvidia-smi will show for a fold predicted to peak at `allocated_gib` (weights + activations, GiB): the
    live tensors, the allocator's cache (CACHE_SHARE of the activations, with ALLOCATOR_SETTINGS), the CUDA context
    (default: the H100's, as measured; `gpu.T4.context_gib` for a T4), and for Quanto recipes an allowance. Works on
    numbers and on pandas columns alike."""
    quanto = recipe in recipes.RECIPES and recipes.RECIPES[recipe].quanto is not None
    activations = allocated_gib - weights_gib
    return (allocated_gib + CACHE_SHARE * activations + context_gib
            + (QUANTO_ALLOWANCE_GIB if quanto else 0.0))


def activation_profile(recipe: str) -> str:
    """Which fake model traces a recipe's activations (`recipes.PROFILES`, `Recipe.profile`)."""
    return recipes.get(recipe).profile


class Trace(NamedTuple):
    """Live tensor bytes of one fake-tensor fold. The lean model's traces park the language model once it has run
    (`helpers.lean`, `park_lm`); their peaks are split at that moment, so one trace answers with and without parking."""

    weights: int  # every weight, the language model's included
    peak: int  # peak live bytes with every weight on the GPU throughout
    lm_weights: int = 0  # the language model's weights, when the trace parked them (else 0)
    lm_peak: int = 0  # peak live bytes until the language model was parked (every weight counted)
    parked_peak: int = 0  # peak live bytes after it was parked (its weights not counted)

    @property
    def lm_activations(self) -> int:
        """Activations at the peak before parking, over all weights."""
        return self.lm_peak - self.weights

    @property
    def parked_activations(self) -> int:
        """Activations at the peak after parking, over the weights left on the GPU."""
        return self.parked_peak - (self.weights - self.lm_weights)


#: Trunk passes a trace of the default recycles runs: every pass after the first allocates as the second does (the
#: first has no recycled state yet), so two give the default four passes' peak exactly, in half the time
#: (tests/test_fit.py and tests/test_lean.py check it on the original and the lean trunk).
TRACED_PASSES = 2


class FakeFolder:
    """The real ESMFold model code built on fake tensors (no memory, no weights) for one activation profile."""

    def __init__(self, profile: str = recipes.FP32_ACTIVATIONS, source: str | None = None, lean=None):
        if profile not in recipes.PROFILES:
            raise ValueError(f"Unknown activation profile {profile!r}; choose one of {recipes.PROFILES}")
        self.profile = profile
        self.mode = FakeTensorMode(allow_non_fake_inputs=True)
        config = models.load_config(source or models.FULL_SIZE_STAND_IN)
        config.esmfold_config.fp16_esm = False
        clear_model_caches()
        with self.mode:
            self.model = EsmForProteinFolding(config).eval()
            if profile == recipes.LM16_ACTIVATIONS:
                _cast(self.model.esm, torch.float16)
            elif profile == recipes.BF16_ACTIVATIONS:
                _cast(self.model, torch.bfloat16)
        self._counter = self._parked = None
        if lean is not None:  # the lean forward methods (helpers.lean) run on fake tensors like the original ones;
            # a lean trace parks the language model at every length (the predictor decides which answer applies)
            options = dataclasses.replace(lean, park_from=0) if lean.park_lm else lean
            make_lean(self.model, options, parking=self)
        clear_model_caches()

    def park(self, lm: torch.nn.Module) -> bool:
        """The lean model's `parking` during a trace: note the peak so far, then stop counting the LM's weights."""
        self._parked = (self._counter.peak, self._counter.forget_module(lm))
        self._counter.reset_peak()
        return True

    def unpark(self, lm: torch.nn.Module, device) -> None:
        """Nothing to move: every trace starts with every weight counted."""

    def trace(self, length: int, chunk_size: int | None = None, num_recycles: int | None = None,
              batch: int = 1) -> Trace:
        """Live bytes (weights, peaks) of one fold of `batch` sequences of `length` residues (default recycles:
        TRACED_PASSES trunk passes traced, the same peak)."""
        if num_recycles is None:
            num_recycles = min(self.model.config.esmfold_config.trunk.max_recycles, TRACED_PASSES) - 1
        counter = LiveBytes()
        self._counter, self._parked = counter, None
        clear_model_caches()
        try:
            # FakeTensorMode's dispatch cache costs more to key than it saves here: a fifth of a trace's time
            with torch._dynamo.config.patch(fake_tensor_cache_enabled=False), self.mode, counter, torch.no_grad():
                weights = counter.track_module(self.model)
                counter.reset_peak()
                self.model.trunk.set_chunk_size(chunk_size)
                ids = torch.zeros(batch, length, dtype=torch.long)
                output = self.model(ids, num_recycles=num_recycles)
                del output
        finally:
            clear_model_caches()
        if self._parked is None:
            return Trace(weights, counter.peak)
        lm_peak, lm_weights = self._parked
        return Trace(weights, max(lm_peak, counter.peak + lm_weights), lm_weights, lm_peak, counter.peak)


def block_peak(length: int, chunk_size: int | None = None, lean=None) -> dict:
    """One full-size trunk block (fp32) run on fake tensors — the predictor's method on a piece small enough to trace
    in seconds: GiB of its inputs and weights, and the peak of the activations it adds at `length` residues, original
    (with `chunk_size`) or lean (`lean`: a `helpers.lean.LeanOptions`)."""
    config = models.load_config(models.FULL_SIZE_STAND_IN).esmfold_config.trunk
    mode = FakeTensorMode(allow_non_fake_inputs=True)
    with mode:
        block = EsmFoldTriangularSelfAttentionBlock(config).eval()
        sequence = torch.zeros(1, length, config.sequence_state_dim)
        pair = torch.zeros(1, length, length, config.pairwise_state_dim)
        mask = torch.ones(1, length)
    if lean is not None:
        make_block_lean(block, lean)
    counter = LiveBytes()
    with mode, counter, torch.no_grad():
        for tensor in (sequence, pair, mask):
            counter.track(tensor)
        before = counter.track_module(block)
        counter.reset_peak()
        block(sequence, pair, mask=mask, chunk_size=chunk_size)
    gib = 1024**3
    return {"inputs and weights (GiB)": before / gib, "activations peak (GiB)": (counter.peak - before) / gib}


_FOLDERS: dict = {}


def fake_folder(profile: str, source: str | None = None, lean=None) -> FakeFolder:
    """The FakeFolder of an activation profile (and lean options), built once and reused."""
    key = (profile, source or models.FULL_SIZE_STAND_IN, lean)
    if key not in _FOLDERS:
        _FOLDERS[key] = FakeFolder(profile, source, lean)
    return _FOLDERS[key]


@functools.lru_cache(maxsize=None)
def _largest_linear_bytes(source: str) -> int:
    """fp32 bytes of the architecture's largest Linear weight (Quanto dequantizes one such weight per multiply)."""
    return max(m.weight.numel() * 4 for m in models.meta_model(source).modules() if isinstance(m, torch.nn.Linear))


@functools.lru_cache(maxsize=None)
def _offloaded_lm_bytes(source: str) -> tuple[int, int]:
    """(fp16 bytes of the language model's parameters, fp16 bytes of its largest Linear layer): what LM offloading takes
    off the GPU, and the one layer accelerate has on the GPU at a time."""
    lm = models.meta_model(source).esm
    largest = max(sum(p.numel() for p in m.parameters()) for m in lm.modules() if isinstance(m, torch.nn.Linear))
    return sum(p.numel() for p in lm.parameters()) * 2, largest * 2


def _weights_and_temporary(recipe: str, source: str | None, traced_weights):
    """(weight bytes, transient bytes) of a recipe: the traced weights for unquantized recipes; for quantized ones
    the exact quantized bytes, plus one dequantized fp32 weight for Quanto; for LM offloading the traced weights
    without the LM's parameters, plus one LM layer on the GPU at a time."""
    spec = recipes.get(recipe)
    if spec.offload_lm:
        lm, layer = _offloaded_lm_bytes(source or models.FULL_SIZE_STAND_IN)
        return traced_weights - lm, layer
    if not spec.quantized:
        return traced_weights, 0
    temporary = 0 if spec.torchao else _largest_linear_bytes(source or models.FULL_SIZE_STAND_IN)
    return models.expected_weights_bytes(recipe, source)["total"], temporary


@functools.lru_cache(maxsize=None)
def _committed_grid():
    """The committed predicted grid (local checkout, or the published repository), read once."""
    return pd.read_csv(data.repo_file("figures/04_predicted_grid.csv"))


def _peak_bytes(recipe: str, source: str | None, traced_weights, activations, parked: bool = False,
                lm_weights=0, lm_activations=0, parked_activations=0):
    """(weight bytes, peak allocated bytes, weight bytes on the GPU at that peak) of a recipe from a trace's numbers
    (scalars or pandas columns alike).

    `parked`: the lean model parks the language model once it has run, so the fold's peak is the larger of the
    language model's phase (every weight on the GPU) and the trunk's (the recipe's LM weights off the GPU). A recipe
    that offloads its LM never has it on the GPU; `_weights_and_temporary` already leaves it out."""
    weights, extra = _weights_and_temporary(recipe, source, traced_weights)
    spec = recipes.get(recipe)
    if parked and spec.offload_lm:
        lm = 0
    elif parked and spec.quantized:
        lm = models.expected_weights_bytes(recipe, source)["language model (ESM-2)"]
    else:
        lm = lm_weights  # traced in the recipe's own precision
    if parked and not spec.offload_lm and not parks_recipe_lm(recipe, source):
        parked = False  # too big for CPU RAM: the lean model keeps it on the GPU
    if not parked:
        return weights, weights + activations + extra, weights
    trunk_extra = 0 if spec.offload_lm else extra  # offloading's extra is one LM layer, gone once the LM has run
    before = weights + lm_activations + extra
    after = weights - lm + parked_activations + trunk_extra
    if hasattr(before, "where"):  # pandas columns
        return weights, before.where(before > after, after), (weights - lm + 0 * before).where(before <= after, weights)
    return (weights, before, weights) if before > after else (weights, after, weights - lm)


def parks_lm(lean, length: int) -> bool:
    """True when the lean model (`lean`: a `helpers.lean.LeanOptions`, or None) parks the LM at this length."""
    return lean is not None and lean.parks(length)


def lm_bytes(recipe: str, source: str | None = None) -> int:
    """Bytes of a recipe's language model as loaded, quantized tensors as stored (`models.expected_weights_bytes`,
    counted by `memory.stored_bytes` as the runtime's parking decision counts a loaded one)."""
    return models.expected_weights_bytes(recipe, source)["language model (ESM-2)"]


def parks_recipe_lm(recipe: str, source: str | None = None) -> bool:
    """Whether the lean model parks this recipe's language model (where it parks at all: `parks_lm`), as the predictor
    assumes: the runtime's rule (`lean.parkable`) on the LM's stored bytes; a recipe that offloads its LM has nothing
    on the GPU to park."""
    return not recipes.get(recipe).offload_lm and parkable(lm_bytes(recipe, source))


def predict_peak(recipe: str, length: int, chunk_size: int | None = None, num_recycles: int | None = None,
                 source: str | None = None, batch: int = 1, lean=None) -> dict:
    """Predicted peak GPU memory of one fold (what `torch.cuda.max_memory_allocated` would report), in GiB.

    `source` picks the architecture: the full-size esmfold_v1 by default (only its configuration is read), or 'tiny'.
    `lean` (a `helpers.lean.LeanOptions`) traces the memory-lean model of notebook 07 instead of the original.

    Runs the real transformers model code on fake tensors with the recipe's activation precision, counting live
    tensor bytes. Quantized recipes combine that exact activation trace with their exact quantized weight bytes
    (Quanto and torchao tensors do not run on fake tensors) plus one dequantized fp32 weight (Quanto's temporary).
    """
    start = time.perf_counter()
    folder = fake_folder(activation_profile(recipe), source, lean)
    trace = folder.trace(length, chunk_size, num_recycles, batch)
    parked = parks_lm(lean, length)
    lm_parked = parked and parks_recipe_lm(recipe, source)  # where the lean model parks, whether this LM may go
    weights, peak, resident = _peak_bytes(recipe, source, trace.weights, trace.peak - trace.weights, parked,
                                          trace.lm_weights, trace.lm_activations, trace.parked_activations)
    spec = recipes.get(recipe)
    gib = 1024**3
    return {
        "recipe": recipe,
        "length": length,
        "chunk size": chunk_size,
        "weights (GiB)": weights / gib,
        "activations peak (GiB)": (peak - resident) / gib,
        "weights at the peak (GiB)": resident / gib,
        "predicted peak allocated (GiB)": peak / gib,
        "predicted nvidia-smi (GiB)": nvidia_smi_estimate(recipe, peak / gib, resident / gib),
        "lean": lean is not None,
        "LM parked": lm_parked,
        "allocator settings assumed": ALLOCATOR_SETTINGS,
        "method": "fake-tensor trace" + (" of the lean model" if lean is not None else "")
        + (" + exact quantized weight bytes" if spec.quantized else "")
        + (" − offloaded LM weights + one LM layer" if spec.offload_lm else "")
        + (", LM parked in CPU RAM after it ran" if lm_parked else ""),
        "seconds to predict": time.perf_counter() - start,
    }


# --- the "Which recipe fits my hardware?" table ------------------------------------------------------------------

#: Grid of the committed prediction table: lengths × trunk chunk sizes, per activation profile.
GRID_LENGTHS = (64, 128, 256, 384, 512, 640, 768, 896, 1024, 1280, 1536)
GRID_CHUNKS = (None, 32, 64, 128)
#: The activation profiles of the hardware table's recipes: the committed grid traces these.
GRID_PROFILES = tuple(dict.fromkeys(recipes.get(r).profile for r in recipes.shown_in(recipes.HARDWARE_TABLE)))


#: Lengths of the lean model's grid (notebook 07): it reaches further.
LEAN_GRID_LENGTHS = GRID_LENGTHS + (1792, 2048, 2560, 3072)


#: The committed grid's columns of the lean model's traces that split the fold where the LM is parked (`Trace`).
PARKING_COLUMNS = ("LM weights bytes (traced)", "activation bytes, LM phase", "activation bytes, LM parked")


def _parked_on_grid(length: int, chunk_label: str) -> bool:
    """True where the committed grid's lean model parks the LM (default lean options)."""
    return chunk_label == LEAN and parks_lm(_default_lean(), length)


def _grid_row_peak(recipe: str, source, row, parked: bool, batch: int = 1):
    """(weights, peak allocated, weights on the GPU at the peak) in bytes of a grid row (or columns) for a recipe."""
    if parked:
        lm, before, after = (row[c] for c in PARKING_COLUMNS)
        return _peak_bytes(recipe, source, row["weights bytes (traced)"], row["activation bytes"] * batch, True, lm,
                           before * batch, after * batch)
    return _peak_bytes(recipe, source, row["weights bytes (traced)"], row["activation bytes"] * batch)


def _default_lean():
    return LeanOptions()


@functools.lru_cache(maxsize=None)  # a trace off the grid takes seconds to minutes and always gives the same bytes
def _allocated_and_weights(recipe: str, length: int, chunk_size, source: str | None,
                           num_recycles: int | None = None) -> tuple[float, float, float]:
    """(predicted peak allocated GiB, weights GiB, GiB of weights on the GPU at the peak): from the committed grid when
    the point is on it (default recycles), else traced now."""
    source = source or models.FULL_SIZE_STAND_IN
    gib = 1024**3
    if source in (models.FULL_SIZE_STAND_IN, models.REAL_MODEL_ID) and num_recycles is None:
        grid = _committed_grid()
        label = str(chunk_size or "none")
        hit = grid[(grid["profile"] == activation_profile(recipe)) & (grid["length"] == length)
                   & (grid["chunk size"].astype(str) == label)]
        if len(hit):
            weights, peak, resident = _grid_row_peak(recipe, source, hit.iloc[0], _parked_on_grid(length, label))
            return peak / gib, weights / gib, resident / gib
    if chunk_size == LEAN:
        result = predict_peak(recipe, length, num_recycles=num_recycles, source=source, lean=_default_lean())
    else:
        result = predict_peak(recipe, length, chunk_size, num_recycles=num_recycles, source=source)
    return result["predicted peak allocated (GiB)"], result["weights (GiB)"], result["weights at the peak (GiB)"]


def forget_cached_predictions() -> None:
    """Drop the cached committed grid and traces (after the grid CSV was rewritten)."""
    _committed_grid.cache_clear()
    _allocated_and_weights.cache_clear()


def lookup_or_predict(recipe: str, length: int, chunk_size: int | None, source: str | None = None,
                      num_recycles: int | None = None) -> float:
    """Predicted peak allocated GiB (default: the full-size esmfold_v1 architecture): from the committed grid when
    the point is on it, else traced now. `source` names another architecture (e.g. 'tiny'); `chunk_size='lean'` is
    the lean trunk of notebook 07; `num_recycles` other than the default is always traced."""
    return _allocated_and_weights(recipe, length, chunk_size, source, num_recycles)[0]


def _grid_chunk_label(chunk_size) -> str:
    """The committed grid's chunk column for a trunk chunk size: itself where the grid has it, else the next larger
    chunk the grid has (more memory: the estimate errs on the safe side), else 'none'."""
    if chunk_size in (None, "none"):
        return "none"
    if chunk_size == LEAN:
        return LEAN
    larger = [c for c in GRID_CHUNKS if c is not None and c >= int(chunk_size)]
    return str(min(larger)) if larger else "none"


@functools.lru_cache(maxsize=None)
def _grid_curve(profile: str, chunk_label: str):
    """The rows of one activation profile and chunk column of the committed grid, by length."""
    grid = _committed_grid()
    part = grid[(grid["profile"] == profile) & (grid["chunk size"].astype(str) == chunk_label)]
    return part.sort_values("length").set_index("length")


def _interpolate(curve, column: str, length: int) -> tuple[float, str]:
    """A column of a grid curve at `length`: exact at its lengths, a power law between two, the shortest length's
    below, L³ growth beyond the longest (said in the second value)."""
    lengths = list(curve.index)
    values = curve[column]
    if length in lengths:
        return float(values.loc[length]), "grid point"
    if length < lengths[0]:
        return float(values.iloc[0]), f"below the grid: its {lengths[0]}-residue point"
    if length > lengths[-1]:
        return float(values.iloc[-1]) * (length / lengths[-1]) ** 3, f"beyond the grid: L³ from {lengths[-1]} residues"
    i = next(i for i, n in enumerate(lengths) if n > length)
    low, high = float(values.iloc[i - 1]), float(values.iloc[i])
    exponent = math.log(high / low) / math.log(lengths[i] / lengths[i - 1])
    return low * (length / lengths[i - 1]) ** exponent, f"interpolated between {lengths[i - 1]} and {lengths[i]} residues"


def grid_estimate(recipe: str, length: int, chunk_size=None, batch: int = 1) -> dict:
    """Predicted peak memory of one fold of the full-size esmfold_v1, read from the committed grid without tracing
    (instant): exact at the grid's lengths, a power law between two of them, the shortest length's below the grid,
    L³ growth beyond it (stated in 'how'). A batch of padded sequences is counted as `batch` times one sequence's
    activations. GiB: weights, activations (over the weights on the GPU at the peak), peak allocated, and 'reserved'
    — what PyTorch will hold, the allocator's cache and Quanto's allowance included (`nvidia_smi_estimate` without
    the CUDA context)."""
    profile = activation_profile(recipe)
    if profile not in GRID_PROFILES:
        raise ValueError(f"The committed grid has no '{profile}' activations (recipe {recipe!r}): it covers "
                         f"{', '.join(GRID_PROFILES)}; trace it with `predict_peak` instead.")
    label = _grid_chunk_label(chunk_size)
    curve = _grid_curve(profile, label)
    row = {"weights bytes (traced)": int(curve["weights bytes (traced)"].iloc[0])}
    row["activation bytes"], how = _interpolate(curve, "activation bytes", length)
    if label == LEAN:
        row[PARKING_COLUMNS[0]] = int(curve[PARKING_COLUMNS[0]].iloc[0])
        for column in PARKING_COLUMNS[1:]:
            row[column] = _interpolate(curve, column, length)[0]
    weights, peak, resident = _grid_row_peak(recipe, None, row, _parked_on_grid(length, label), batch)
    gib = 1024**3
    return {"weights (GiB)": weights / gib, "activations (GiB)": (peak - resident) / gib, "allocated (GiB)": peak / gib,
            "reserved (GiB)": nvidia_smi_estimate(recipe, peak / gib, resident / gib, context_gib=0.0),
            "how": how + (f", × {batch} sequences" if batch > 1 else "")}


def predicted_nvidia_smi(recipe: str, length: int, chunk_size: int | None, source: str | None = None) -> float:
    """What nvidia-smi is predicted to show for this fold (GiB): `lookup_or_predict` plus the allocator's cache, the
    CUDA context and, for Quanto, an allowance (`nvidia_smi_estimate`). The number to hold against a GPU's memory."""
    allocated, _, resident = _allocated_and_weights(recipe, length, chunk_size, source)
    return nvidia_smi_estimate(recipe, allocated, resident)


def predicted_grid(source: str | None = None):
    """The committed grid with each recipe's predicted peak allocated GiB (weights + traced activations)."""
    grid = _committed_grid()
    rows = []
    for recipe in recipes.shown_in(recipes.HARDWARE_TABLE):
        part = grid[grid["profile"] == activation_profile(recipe)].copy()
        if part.empty:  # a recipe shown in the table needs its profile traced into the grid first
            raise ValueError(f"The committed grid has no '{activation_profile(recipe)}' rows for {recipe!r}: run "
                             f"`python -m tools.grid grid {recipe}` and `python -m tools.grid lean-grid {recipe}`")
        part["recipe"] = recipe
        parked = [_parked_on_grid(n, str(c)) for n, c in zip(part["length"], part["chunk size"])]
        for is_parked, group in part.groupby(parked):
            weights, peak, resident = _grid_row_peak(recipe, source, group, bool(is_parked))
            part.loc[group.index, "weights (GiB)"] = weights / 1024**3
            part.loc[group.index, "predicted peak allocated (GiB)"] = peak / 1024**3
            part.loc[group.index, "LM parked"] = bool(is_parked) and parks_recipe_lm(recipe, source)
            part.loc[group.index, "predicted nvidia-smi (GiB)"] = nvidia_smi_estimate(
                recipe, peak / 1024**3, resident / 1024**3)
        part["predicted reserved (GiB)"] = part["predicted nvidia-smi (GiB)"] - CUDA_CONTEXT_GIB
        rows.append(part)
    return pd.concat(rows, ignore_index=True)


def _card(card) -> "gpu.GPU":
    """A GPU to plan for: a `gpu.GPU`, or a card's memory in GiB (its CUDA context assumed, `gpu.ASSUMED_CONTEXT_GIB`)."""
    if isinstance(card, gpu.GPU):
        return card
    article = "an" if f"{card:g}".startswith(("8", "11", "18")) else "a"
    return gpu.GPU(f"{article} {card:g} GiB card", None, float(card), gpu.ASSUMED_CONTEXT_GIB)


def hardware_table(source: str | None = None):
    """Longest grid length each recipe folds on each card of `gpu.CARDS` (predicted memory PyTorch holds ≤ the card's
    usable memory), with the chunk size that gets there (the largest — fastest — that fits; 'none' = unchunked);
    "(borderline)" where that need is within `gpu.BORDERLINE_GIB` of the card's usable memory."""
    grid = predicted_grid(source)
    grid["trunk"] = (grid["chunk size"].astype(str) == LEAN).map({True: " + lean trunk", False: ""})
    rows = []
    for (recipe, trunk), part in grid.groupby(["recipe", "trunk"], sort=False):
        row = {"recipe": recipe + trunk, "weights (GiB)": round(float(part["weights (GiB)"].iloc[0]), 2)}
        for label, card in gpu.CARDS.items():
            fit = longest_fitting(part, card)
            if fit is None:
                row[label] = "does not fit"
                continue
            longest, best, need = fit
            beyond = part["length"].max() == longest
            row[label] = (f"{'≥ ' if beyond else ''}{longest} aa" + (f" (chunk {best})" if best != LEAN else "")
                          + (" (borderline)" if gpu.verdict(need, card.usable_gib) == "borderline" else ""))
            if card is gpu.T4:
                row[T4_MARGIN] = round((card.usable_gib - need) / pair_tensor_gib(longest), 2)
        rows.append(row)
    return pd.DataFrame(rows)


#: The hardware table's column of what is left of a free T4 at each recipe's T4 limit, in fp32 pair tensors at that
#: length: the unit in which a fold's need grows with length, so a margin of 0.25 is a quarter of one more tensor.
T4_MARGIN = "T4 margin at the limit (fp32 pair tensors)"


def pair_tensor_gib(length: int, channels: int = 128) -> float:
    """GiB of one fp32 pair tensor (L × L × 128 channels) of the full-size trunk."""
    return length**2 * channels * 4 / 1024**3


def t4_margin_sentence(table) -> str:
    """One sentence: the T4 margin at the limit of each lean-trunk row of a hardware table (`hardware_table`), in fp32
    pair tensors and GiB at that length."""
    t4 = next(label for label, card in gpu.CARDS.items() if card is gpu.T4)
    parts = []
    for _, row in table[table["recipe"].str.endswith(" + lean trunk")].iterrows():
        length = int(str(row[t4]).split(" aa")[0].lstrip("≥ "))
        parts.append(f"{row['recipe']} {row[T4_MARGIN]:.2f} at {length:,} aa "
                     f"({row[T4_MARGIN] * pair_tensor_gib(length):.2f} GiB)")
    return ("T4 margin at the limit, in fp32 pair tensors (L² × 128 × 4 bytes) at that length — what is left of "
            f"{gpu.T4.usable_gib:.2f} GiB once the predicted need is met: " + "; ".join(parts) + ".")


_CHUNK_ORDER = {"none": 0, "128": 1, "64": 2, "32": 3, LEAN: 4}


def longest_fitting(part, card) -> tuple[int, str, float] | None:
    """(longest length, chunk label, its predicted need in GiB of PyTorch memory) of the rows of one recipe's
    predicted grid that fit `card` (a `gpu.GPU` or GiB), taking the fastest chunk size at that length; None if none
    fits."""
    card = _card(card)
    fits = part[part["predicted reserved (GiB)"] <= card.usable_gib]
    if fits.empty:
        return None
    longest = int(fits["length"].max())
    at = fits[fits["length"] == longest].copy()
    at["label"] = at["chunk size"].astype(str)
    at["borderline"] = at["predicted reserved (GiB)"] > card.usable_gib - gpu.BORDERLINE_GIB
    # the fastest chunk size that fits with a margin; only if none does, the fastest borderline one
    best = min(at.itertuples(), key=lambda r: (r.borderline, _CHUNK_ORDER[r.label]))
    return longest, best.label, float(at.loc[best.Index, "predicted reserved (GiB)"])


#: Trunk chunk sizes from fastest to leanest, then the lean trunk of notebook 07.
CHUNK_LADDER = (None, 128, 64, 32, LEAN)
#: Protein lengths (columns) of the recipe table.
RECIPE_LENGTHS = (256, 512, 768, 1024, 1280, 1536, 2048, 2560, 3072)
#: The longest length the grid answers for (the lean trunk's longest grid point); longer is not guessed.
_LONGEST_PLANNED = max(LEAN_GRID_LENGTHS)


def recommend(card, length: int) -> tuple[str, int | str | None, float] | None:
    """(recipe, chunk size, predicted GiB on the card as nvidia-smi would show it) of the first of the recommendation
    ladder (`recipes.ladder()`) × CHUNK_LADDER predicted to fold `length` residues on `card` (a `gpu.GPU`, or its
    memory in GiB);
    None if none fits or the length is beyond the grid."""
    card = _card(card)
    if length > _LONGEST_PLANNED:
        return None
    candidates = [(recipe, chunk) for recipe in recipes.ladder() for chunk in CHUNK_LADDER
                  if chunk == LEAN or length <= max(GRID_LENGTHS)]
    needs = [grid_estimate(recipe, length, chunk)["reserved (GiB)"] for recipe, chunk in candidates]
    for margin in (gpu.BORDERLINE_GIB, 0.0):  # a recipe that fits with a margin first; a borderline one only if none
        for (recipe, chunk), need in zip(candidates, needs):
            if need <= card.usable_gib - margin:
                return recipe, chunk, need + card.context_gib
    return None


def recipe_table(source: str | None = None):
    """"I have X GB of GPU memory and a protein of L residues → use recipe Y": one row per card of `gpu.CARDS`, one
    column per length, each cell the recommended recipe and chunk size (predicted)."""
    rows = []
    for label, card in gpu.CARDS.items():
        row = {"GPU memory": label}
        for length in RECIPE_LENGTHS:
            pick = recommend(card, length)
            trunk = "lean trunk" if pick and pick[1] == LEAN else f"chunk {pick[1] or 'none'}" if pick else ""
            edge = pick and gpu.verdict(pick[2] - card.context_gib, card.usable_gib) == "borderline"
            row[f"≤ {length} aa"] = (f"{pick[0]} · {trunk} ({pick[2]:.1f} GiB{', borderline' if edge else ''})"
                                     if pick else "no recipe fits")
        rows.append(row)
    return pd.DataFrame(rows)


def _trunk_label(chunk) -> str:
    """'chunk size 64', 'chunk size none' or 'the lean trunk (notebook 07)'."""
    return "the lean trunk (notebook 07)" if chunk == LEAN else f"chunk size {chunk or 'none'}"


def lean_steps(recipe: str = "int8", lengths=(1000, 2000), chunk_size: int = 32, num_recycles: int | None = None,
               skip=()):
    """Predicted peak (GiB, allocated) of one fold as the lean trunk's changes are switched on one after another,
    starting from the original model with trunk chunk `chunk_size` (notebook 07); `skip`: (length, step) pairs not to
    trace (rows kept from an earlier run). Minutes at L = 2,000."""
    rows = []
    for length in lengths:
        for label, options in cumulative_steps(chunk_size):
            if (length, label) in skip:
                continue
            result = predict_peak(recipe, length, chunk_size, num_recycles=num_recycles, lean=options)
            rows.append({"recipe": recipe, "length": length, "step": label,
                         "predicted peak allocated (GiB)": result["predicted peak allocated (GiB)"],
                         "activations peak (GiB)": result["activations peak (GiB)"],
                         "seconds to predict": result["seconds to predict"]})
            print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def verdict(recipe: str, length: int, chunk_size=None, card=None) -> tuple[str, str]:
    """('fits' | 'borderline' | 'over', one sentence saying why) for one fold of the full-size model on `card` (a
    `gpu.GPU` or GiB; default: this GPU, else a free T4) — from the committed grid (`grid_estimate`)."""
    card = _card(card if card is not None else (gpu.current() or gpu.T4))
    need = grid_estimate(recipe, length, chunk_size)["reserved (GiB)"]
    said = gpu.verdict(need, card.usable_gib)
    words = {"fits": "fits (estimate)", "over": "does not fit (estimate)",
             "borderline": f"borderline (estimate): within {gpu.BORDERLINE_GIB} GiB of the limit, closer than the "
                           "estimate can promise — its allocator-cache and CUDA-context terms were measured on an H100 "
                           "or assumed"}
    return said, (f"{length} residues, '{recipe}', {_trunk_label(chunk_size)}: predicted {need:.2f} GiB of the "
                  f"{card.usable_gib:.2f} GiB PyTorch can use on a {card.name} — {words[said]}")


class TooLongError(ValueError):
    """A sequence predicted not to fit the GPU budget with the chosen recipe; the message names a recipe that does."""


def _how_read(how: str) -> str:
    """`grid_estimate`'s 'how', as a phrase for a message: which committed grid lengths the number was read from."""
    if how == "grid point":
        return "a length of the committed grid"
    return how.replace("residues", "residues of the committed grid", 1) if "between" in how else how


def _checked_trunk(chunk_size) -> str:
    """`_trunk_label`, plus the chunk size the grid was read at when it holds not the one asked (the next larger)."""
    label = _grid_chunk_label(chunk_size)
    if chunk_size in (None, "none", LEAN) or label == str(chunk_size):
        return _trunk_label(chunk_size)
    read_as = "no chunking" if label == "none" else f"chunk size {label}"
    return f"{_trunk_label(chunk_size)}, read as {read_as}: the grid's next larger, more memory"


def check_fits(recipe: str, length: int, chunk_size=None, card=None) -> float:
    """Return the predicted GPU memory (GiB, as nvidia-smi would show it on `card`) of folding `length` residues with
    `recipe`; raise TooLongError naming the next chunk size, or recipe down the recommendation ladder
    (`recipes.ladder()`), that fits if it does not fit `card` (a `gpu.GPU` or GiB; default: this GPU, else a free
    T4). Reads the committed grid at this very length (`grid_estimate`: a power law between the two grid lengths around it, not the next grid length), so it answers
    at once; the message says which grid lengths (and which chunk size, when the grid lacks the one asked) it read."""
    card = _card(card if card is not None else (gpu.current() or gpu.T4))

    def need(name, chunk):
        return grid_estimate(name, length, chunk)["reserved (GiB)"]

    asked = grid_estimate(recipe, length, chunk_size)
    if asked["reserved (GiB)"] <= card.usable_gib:
        return asked["reserved (GiB)"] + card.context_gib
    have = f"{card.name} ({card.usable_gib:.2f} GiB, PyTorch's budget after the CUDA context)"
    wanted = (f"{length} residues with '{recipe}' ({_checked_trunk(chunk_size)}) are predicted to need about "
              f"{asked['reserved (GiB)']:.1f} GiB ({_how_read(asked['how'])}), more than {have}.")
    ladder = recipes.ladder()
    below = ladder[ladder.index(recipe) + 1:] if recipe in ladder else ladder
    options = [(recipe, c) for c in (64, 32, LEAN) if c != chunk_size]
    options += [(name, c) for name in below for c in (chunk_size, 64, 32, LEAN)]
    for name, c in options:
        if need(name, c) <= card.usable_gib:
            raise TooLongError(f"{wanted} Predicted to fit: '{name}' with {_checked_trunk(c)} "
                               f"(≈ {need(name, c):.1f} GiB).")
    raise TooLongError(f"{wanted} No recipe of notebooks 01–07 is predicted to fit, the lean trunk included: fold a "
                       "shorter piece (a domain), or use a GPU with more memory.")
