"""The tiny stand-in's rehearsal of a notebook as a free Colab T4 would run it, on any machine, in minutes.

`notebook.start()` installs it when the tiny stand-in is in use. From then on, in that notebook's kernel:

- every GPU question is answered as a T4 would answer it (`helpers.gpu.emulate`); a CPU notebook (08) is planned for
  a free Colab CPU runtime instead (12.7 GB of RAM, `cpu.COLAB_RAM_GB`);
- every fold of the tiny model is first predicted for the full-size model on that T4 (`fit.grid_estimate`, no trace)
  and raises `torch.OutOfMemoryError` where the prediction does not fit, or is borderline — the out-of-memory a
  student could meet, met on purpose; `$ESMFOLD_INJECT_OOM` ("fp32:259,int8:1280") names more folds to fail;
- a fold of more than `COMPUTED_RESIDUES` residues computes only its first `COMPUTED_RESIDUES` and repeats their
  outputs along the sequence (the notebook's lengths stay the real ones: minutes, not hours, on a CPU; the outputs of
  a stand-in are meaningless anyway);
- with `$ESMFOLD_REHEARSAL_LOG` set to a folder, every load, checkpoint read and fold is written there (one JSON line
  each) with the cell that ran it: `tools/plan.py` turns them into the T4 plan of the series (figures/t4_plan.csv).
"""

from __future__ import annotations

import gc
import hashlib
import inspect
import json
import os
import time
import weakref
from pathlib import Path

import safetensors.torch
import torch
from torch._subclasses.fake_tensor import FakeTensor
from transformers import EsmForProteinFolding
from transformers.models.esm.openfold_utils import make_atom14_masks

from helpers import fit, gpu, lean, memory, models

#: A folder: each notebook kernel appends its events to <folder>/<process id>.jsonl.
LOG_ENV = "ESMFOLD_REHEARSAL_LOG"
#: Folds to fail on purpose, as "recipe:length" pairs separated by commas (e.g. "fp32:259,int8:1280").
INJECT_ENV = "ESMFOLD_INJECT_OOM"
#: The tiny stand-in computes at most this many residues of a fold (a number no dimension of the tiny model has, so
#: that the residue axes of its outputs are unambiguous).
COMPUTED_RESIDUES = 41

_state: dict = {}


def active() -> bool:
    """True once `install` has run in this process."""
    return bool(_state)


def runtime() -> str | None:
    """'gpu' (a free T4), 'cpu' (a free Colab CPU runtime), or None outside a rehearsal."""
    return _state.get("runtime")


def _log(event: dict) -> None:
    folder = os.environ.get(LOG_ENV)
    if not folder:
        return
    event = {"cell": _state.get("cell"), "time": time.time(), **event}
    path = Path(folder) / f"{os.getpid()}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write(json.dumps(event, default=str) + "\n")


def cell_key(source: str) -> str:
    """The key that names a cell in the log: a hash of its source (the kernel is not told the cell's id)."""
    return hashlib.sha1(source.strip().encode()).hexdigest()[:12]


def _is_tiny(model) -> bool:
    """The tiny stand-in with real weights in memory (what the rehearsal computes with), recognised by its shape, not
    its folder; the predictor's models on fake tensors are not folds."""
    tiny = models.config_dict(models.TINY_STAND_IN)
    config = getattr(model, "config", None)
    if (getattr(config, "hidden_size", None), getattr(config, "num_hidden_layers", None)) != (
            tiny["hidden_size"], tiny["num_hidden_layers"]):
        return False
    weight = model.esm_s_combine
    return not isinstance(weight, FakeTensor) and weight.device.type != "meta"


def _injected() -> set[tuple[str, int]]:
    pairs = set()
    for item in filter(None, os.environ.get(INJECT_ENV, "").split(",")):
        recipe, _, length = item.strip().rpartition(":")
        pairs.add((recipe, int(length)))
    return pairs


def _plan_fold(model, batch: int, length: int, num_recycles) -> dict:
    """What this fold would be on the full-size model: recipe, trunk settings, predicted need, verdict."""
    recipe = models.recipe_of(model)
    lean_options = lean.is_lean(model)
    every_change = lean_options is not None and all(getattr(lean_options, c) for c in lean.CHANGES)
    # some of the changes only: planned as the original trunk with its chunk size (each change only lowers the peak)
    chunk = fit.LEAN if every_change else model.trunk.chunk_size
    # transformers: None runs max_recycles passes (4), num_recycles=N runs N + 1
    passes = model.config.esmfold_config.trunk.max_recycles if num_recycles is None else num_recycles + 1
    row = {"event": "fold", "recipe": recipe, "language model": models.precision_of(model.esm),
           "trunk": models.precision_of(model.trunk), "lean": every_change,
           "lean changes": None if lean_options is None else sum(getattr(lean_options, c) for c in lean.CHANGES),
           "chunk size": None if every_change else chunk, "length": length, "batch": batch,
           "trunk passes": passes, "prepared": memory.prepared_for_oom()}
    if runtime() == "gpu" and next(model.trunk.parameters()).device.type != "meta":
        planned = recipe or "fp16"  # the whole model cast to fp16: planned as the fp16 recipe (more memory, not less)
        estimate = fit.grid_estimate(planned, length, chunk, batch)
        others = _other_models_gib(model)
        need = estimate["reserved (GiB)"] + others
        budget = gpu.budget_gib()
        row.update({"planned as": planned, "need (GiB)": need, "other models loaded (GiB)": others,
                    "estimate": estimate["how"], "budget (GiB)": budget, "verdict": gpu.verdict(need, budget)})
    return row


def _other_models_gib(model) -> float:
    """Full-size weights (GiB) of the other models still loaded (on a T4 they would share its memory with this fold)."""
    _state.setdefault("models", []).append(weakref.ref(model))
    gc.collect()  # a model dropped with `del` but held by a reference cycle is not loaded any more
    alive = {id(m): m for m in (ref() for ref in _state["models"]) if m is not None}
    _state["models"] = [weakref.ref(m) for m in alive.values()]
    return sum(fit.grid_estimate(models.recipe_of(m) or "fp16", 64)["weights (GiB)"] for m in alive.values()
               if m is not model and next(m.trunk.parameters()).device.type != "meta")


_FORWARD_ARGS = None


def _call(self, *args, **kwargs):
    """`EsmForProteinFolding.__call__` under a rehearsal: plan, maybe fail, then fold at most COMPUTED_RESIDUES."""
    global _FORWARD_ARGS
    original = _state["call"]
    if not _is_tiny(self):
        return original(self, *args, **kwargs)
    if _FORWARD_ARGS is None:
        _FORWARD_ARGS = list(inspect.signature(type(self).forward).parameters)[1:]
    named = {**dict(zip(_FORWARD_ARGS, args)), **kwargs}
    ids = named["input_ids"]
    batch, length = ids.shape
    row = _plan_fold(self, batch, length, named.get("num_recycles"))
    injected = row.get("verdict") in ("over", "borderline") or (row["recipe"], length) in _injected()
    row["out of memory"] = injected
    start = time.perf_counter()
    try:
        if injected:
            need = f"{row['need (GiB)']:.2f} GiB" if "need (GiB)" in row else "a fold named in $" + INJECT_ENV
            raise torch.OutOfMemoryError(
                f"CUDA out of memory (rehearsal of a {gpu.emulated().name if gpu.emulated() else 'GPU'}): this fold "
                f"({row['recipe']}, {length} residues) is predicted to need {need} against "
                f"{row.get('budget (GiB)', float('nan')):.2f} GiB — {row.get('verdict', 'injected')}.")
        if length <= COMPUTED_RESIDUES:
            return original(self, **named)
        return _fold_the_start(self, original, named, length)
    finally:
        row["seconds"] = time.perf_counter() - start
        _log(row)


def _fold_the_start(model, original, named: dict, length: int):
    """Fold the first COMPUTED_RESIDUES residues and stretch every output along its residue axes to `length`: the
    outputs that depend only on the sequence (residue types, atom masks, residue index) are computed for all of it."""
    ids = named["input_ids"]
    mask = named.get("attention_mask")
    mask = torch.ones_like(ids) if mask is None else mask
    positions = named.get("position_ids")
    positions = torch.arange(length, device=ids.device).expand_as(ids) if positions is None else positions
    cut = COMPUTED_RESIDUES
    short = {**named, "input_ids": ids[:, :cut], "attention_mask": mask[:, :cut], "position_ids": positions[:, :cut]}
    output = original(model, **short)
    repeat = torch.arange(length, device=ids.device) % cut
    for key, value in list(output.items()):
        if not isinstance(value, torch.Tensor):
            continue
        for axis in [d for d, size in enumerate(value.shape) if size == cut and d > 0]:
            value = value.index_select(axis, repeat.to(value.device))
        output[key] = value
    masks = {"aatype": ids}
    make_atom14_masks(masks)
    for key in ("atom14_atom_exists", "atom37_atom_exists"):
        masks[key] = masks[key] * mask.unsqueeze(-1)
    for key in ("residx_atom14_to_atom37", "residx_atom37_to_atom14", "atom14_atom_exists", "atom37_atom_exists"):
        output[key] = masks[key]
    output["aatype"], output["residue_index"] = ids, positions
    return output


def _from_pretrained(original):
    def load(cls, path, *args, **kwargs):
        start = time.perf_counter()
        model = original(cls, path, *args, **kwargs)
        _state.setdefault("models", []).append(weakref.ref(model))
        _log({"event": "load", "recipe": models.recipe_of(model), "language model": models.precision_of(model.esm),
              "trunk": models.precision_of(model.trunk), "dtype": str(kwargs.get("dtype")),
              "quantization": type(kwargs.get("quantization_config")).__name__
              if kwargs.get("quantization_config") is not None else None,
              "seconds": time.perf_counter() - start})
        return model
    return classmethod(load)


def _load_file(original):
    def load_file(filename, *args, **kwargs):
        _log({"event": "read", "file": Path(filename).name,
              "quantized": (Path(filename).parent / "quantization_map.json").is_file()})
        return original(filename, *args, **kwargs)
    return load_file


def _pre_run_cell(info) -> None:
    _state["cell"] = cell_key(info.raw_cell)
    _state["cell started"] = time.perf_counter()


def _post_run_cell(result) -> None:
    if _state.get("cell") is not None:
        _log({"event": "cell", "seconds": time.perf_counter() - _state["cell started"],
              "error": None if result.success else type(result.error_in_exec or result.error_before_exec).__name__})
    _state["cell"] = None


def install(on_gpu: bool = True) -> None:
    """Start the rehearsal in this process (`notebook.start` calls it for the tiny stand-in); idempotent."""
    if active():
        return
    _state.update(runtime="gpu" if on_gpu else "cpu", call=EsmForProteinFolding.__call__, cell=None,
                  from_pretrained=EsmForProteinFolding.__dict__.get("from_pretrained"),
                  load_file=safetensors.torch.load_file)
    EsmForProteinFolding.__call__ = _call
    EsmForProteinFolding.from_pretrained = _from_pretrained(EsmForProteinFolding.from_pretrained.__func__)
    safetensors.torch.load_file = _load_file(safetensors.torch.load_file)
    if on_gpu:
        gpu.start_emulating(gpu.T4)
    try:
        shell = get_ipython()  # noqa: F821 — defined inside a notebook kernel
    except NameError:
        shell = None
    if shell is not None:
        shell.events.register("pre_run_cell", _pre_run_cell)
        shell.events.register("post_run_cell", _post_run_cell)
        _state["shell"] = shell
    _log({"event": "start", "runtime": _state["runtime"]})


def uninstall() -> None:
    """Undo `install` (tests)."""
    if not active():
        return
    EsmForProteinFolding.__call__ = _state["call"]
    if _state["from_pretrained"] is None:
        del EsmForProteinFolding.from_pretrained
    else:
        EsmForProteinFolding.from_pretrained = _state["from_pretrained"]
    safetensors.torch.load_file = _state["load_file"]
    shell = _state.get("shell")
    if shell is not None:
        shell.events.unregister("pre_run_cell", _pre_run_cell)
        shell.events.unregister("post_run_cell", _post_run_cell)
    gpu.start_emulating(None)
    _state.clear()
