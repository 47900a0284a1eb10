"""The prepared GPU check: measure what the series teaches on a real GPU, under a free Colab T4's memory cap.

    python -m tools.gpu_check --out DIR [--weights random-full] [--budget-s 430] [--max-length N] [--plan PLAN]

Writes `DIR/gpu_check.csv` (one row per load or fold, flushed as it goes) and `DIR/gpu_check.log`. Per recipe and
length: peak allocated and peak reserved (torch), device memory in use as nvidia-smi/NVML reports it (the peak,
sampled every few ms, and the reading after the step), load and fold seconds, and whether it ran out of memory.
Rows that are not measured say why (no CUDA, time budget). A GPU machine is lent for minutes at a time: rows run in
order of importance and none starts once `--budget-s` seconds have passed since the start.

Within one recipe the cache is not emptied between folds — as in a student's notebook, and as the seed article's
nvidia-smi readings were taken — so each reading includes what the caching allocator kept from the load and from
earlier, shorter folds.

On a CPU (CI: `--weights tiny --max-length 48`) the same plan runs end to end with the CUDA-only readings left empty.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import threading
import time
import traceback
import types
from dataclasses import dataclass, field
from pathlib import Path

import torch

from helpers import data, fit, folding, gpu, lean, memory, models, notebook

GIB = 1024**3
#: The seed article's lengths (30, 256 and 480 residues) and two between them.
SEED_LENGTHS = (30, 128, 256, 384, 480)
#: What a free Colab T4 leaves PyTorch (GiB), as everywhere in the series (`gpu.T4`).
T4_CAP_GIB = round(gpu.T4.usable_gib, 2)
FIELDS = [
    "step", "recipe", "length", "chunk size", "lean trunk", "lean changes", "recycles", "trunk passes", "cap (GiB)",
    "status",
    "seconds", "peak allocated (GiB)", "peak reserved (GiB)", "nvidia-smi peak (GiB)", "nvidia-smi after (GiB)",
    "allocated after (GiB)", "reserved after (GiB)", "allocator retries", "weights (GiB)", "LM parked",
    "GiB freed by parking", "attention kernel", "why", "sequence",
    "device", "driver", "torch", "transformers", "optimum-quanto", "allocator settings", "date", "weights",
]


@dataclass
class Fold:
    """One measured fold."""

    length: int
    chunk: int | None = None
    lean: bool = False
    recycles: int | None = None  # None = the default 4 trunk passes
    why: str = ""


@dataclass
class Step:
    """One load of a recipe (under a cap or not) and the folds measured on it, in order."""

    recipe: str
    cap: float | None
    folds: list[Fold] = field(default_factory=list)
    why: str = ""


def t4_limit(recipe: str, lean_trunk: bool = False) -> tuple[tuple[int, int | None], tuple[int, int | None] | None]:
    """((length, chunk), (next grid length, same chunk)) of the hardware table's T4 limit for `recipe` (`lean_trunk`:
    its lean-trunk row; chunk None; beyond the grid's longest length, half a step more)."""
    grid = fit.predicted_grid()
    part = grid[(grid["recipe"] == recipe) & ((grid["chunk size"].astype(str) == fit.LEAN) == lean_trunk)]
    length, chunk, _ = fit.longest_fitting(part, gpu.T4)
    chunk = None if chunk in ("none", fit.LEAN) else int(chunk)
    longer = sorted(n for n in part["length"].unique() if n > length)
    if lean_trunk and not longer:
        longer = [length + length // 6]  # the grid ends here: probe a step beyond it
    return (length, chunk), ((int(longer[0]), chunk) if longer else None)


def plan() -> list[Step]:
    """The check, most important first: the seed's three recipes and lengths (fp32, and the seed's fp16 route whose
    load holds fp32 weights, leave a T4 little room to fold: they run uncapped, like the seed's own GPU), then the T4
    limits, the lean trunk, int4."""
    seed = [Fold(n) for n in SEED_LENGTHS]
    steps = [
        Step("int8", T4_CAP_GIB, seed + [Fold(480, recycles=0, why="peak vs trunk passes: as the default row above")]),
        Step("fp32", None, list(seed), why="loads 13.1 GiB of weights: more than a T4 leaves for folding"),
        Step("fp16-seed", None, list(seed), why="loads fp32 first (13.1 GiB), then halves the language model"),
        Step("fp16", T4_CAP_GIB, list(seed)),
    ]
    for step in steps:
        if step.recipe in ("fp16", "int8"):
            limit, beyond = t4_limit(step.recipe)
            step.folds.append(Fold(*limit, recycles=0, why="the hardware table's predicted T4 limit"))
            if beyond:
                step.folds.append(Fold(*beyond, recycles=0, why="one grid step beyond the predicted T4 limit"))
    steps[0].folds += [Fold(1000, lean=True, recycles=0, why="lean trunk"),
                       Fold(1000, lean=True, recycles=1, why="lean trunk; peak vs trunk passes"),
                       Fold(2000, lean=True, recycles=0, why="lean trunk")]
    steps.append(Step("int4", T4_CAP_GIB, list(seed)))
    return steps


#: The recipe name of int8 loaded the way transformers 4.x did with Quanto (the seed's stack): see `load_int8_v4`.
INT8_V4 = "int8-transformers4-load"


def plan_limits() -> list[Step]:
    """Second check: where the T4 limits really are (each probe a fresh load, warm-up, then the one long fold — a
    student who restarts the runtime for a long protein), and whether the seed's extra int8 memory is what loading
    the transformers-4 way leaves in PyTorch's cache."""
    probes = [("int8", 1024, 64), ("int8", 1280, 64), ("int8", 1280, 32), ("fp16", 768, 64), ("fp16", 896, 64),
              ("fp16", 896, 32)]
    steps = [Step(INT8_V4, None, [Fold(n) for n in (30, 256, 480)],
                  why="int8 loaded as transformers 4.x did: fp32 weight to the GPU, then quantized, layer by layer")]
    steps += [Step(r, T4_CAP_GIB, [Fold(n, chunk, recycles=0, why="fresh load, then this fold")]) for r, n, chunk in probes]
    steps.append(Step("int8", T4_CAP_GIB, [Fold(2560, lean=True, recycles=0, why="fresh load; lean trunk")]))
    return steps


def plan_long() -> list[Step]:
    """Third check: the lean trunk's T4 limits (notebook 07's nine changes) — each after a run of shorter folds and
    on a fresh load, the next step beyond it, and seconds per trunk pass at 2,000 and 3,000 residues."""
    steps = []
    for recipe in ("int8", "fp16", "fp16-offload"):
        (limit, _), beyond = t4_limit(recipe, lean_trunk=True)
        session = [Fold(n, lean=True, recycles=0, why="lean trunk; seconds per pass")
                   for n in (1000, 2000, 3000) if n < limit]
        session.append(Fold(limit, lean=True, recycles=0, why="the lean trunk's predicted T4 limit, after shorter folds"))
        steps.append(Step(recipe, T4_CAP_GIB, session))
        fresh = [Fold(limit, lean=True, recycles=0, why="fresh load; the lean trunk's predicted T4 limit")]
        if beyond:
            fresh.append(Fold(beyond[0], lean=True, recycles=0, why="one step beyond the lean trunk's T4 limit"))
        steps.append(Step(recipe, T4_CAP_GIB, fresh))
    return steps


#: The length of notebook 07's longest protein (human ATM, UniProt Q13315), the hardware table's int8 + lean claim.
T4_LONGEST = 3056
#: `--plan t4-3056`: no fold starts after this many seconds, so the plan ends within 8 minutes on one H100 (a
#: 3,056-residue pass predicted ≈ 3.5 minutes there: 49 s measured at 2,000 residues, × (3,056 / 2,000)³).
T4_LONGEST_BUDGET_S = 270


def plan_t4_3056() -> list[Step]:
    """Fourth check (at most 8 minutes on an H100 capped to a T4): int8 + the lean trunk (every change) at 3,056
    residues, one trunk pass — whether the language model was parked and the GiB that freed, peak allocated and
    reserved, allocator retries, the attention kernel — then a second fold in the same process (the language model
    brought back, and parked again). The CUDA context is the `context` row."""
    return [Step("int8", T4_CAP_GIB, [
        Fold(T4_LONGEST, lean=True, recycles=0, why="int8 + lean trunk at notebook 07's longest length, one pass"),
        Fold(T4_LONGEST, lean=True, recycles=0, why="the same again in the same process: LM brought back, parked")])]


PLANS = {"seed": plan, "limits": plan_limits, "long": plan_long, "t4-3056": plan_t4_3056}
#: Plans with their own default time budget (`--budget-s`).
PLAN_BUDGETS = {"t4-3056": T4_LONGEST_BUDGET_S}


def load_int8_v4(device: str, source: str):
    """int8 weights the way transformers 4.x loaded them with Quanto (the seed article's stack): every Linear becomes
    a Quanto QLinear, its fp32 weight is copied to the GPU and quantized there (`freeze`), one layer after another;
    each fp32 copy is freed into PyTorch's cache. Transformers 5 quantizes without that round trip."""
    from optimum.quanto import qint8, quantize
    from optimum.quanto.nn import QModuleMixin

    model, tokenizer = models.load_model("fp32", device="cpu", source=source, allow_cpu=True)
    quantize(model, weights=qint8)
    for module in model.modules():
        if isinstance(module, QModuleMixin):
            module.to(device)
            module.freeze()
    return model.to(device), tokenizer


class DeviceMemory:
    """nvidia-smi's reading (NVML: memory in use on the whole device), sampled in a thread to catch the peak."""

    def __init__(self):
        self.handle = None
        self.driver = ""
        try:
            import pynvml

            pynvml.nvmlInit()
            self.handle = pynvml.nvmlDeviceGetHandleByIndex(torch.cuda.current_device())
            self.driver = pynvml.nvmlSystemGetDriverVersion()
            self._info = pynvml.nvmlDeviceGetMemoryInfo
        except Exception as err:  # noqa: BLE001 — without NVML, cudaMemGetInfo reads the same device-wide number
            print(f"NVML not available ({err}); reading cudaMemGetInfo instead", flush=True)
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = None

    def used_gib(self) -> float:
        if self.handle is not None:
            return self._info(self.handle).used / GIB
        free, total = torch.cuda.mem_get_info()
        return (total - free) / GIB

    def _sample(self):
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self.used_gib())

    def __enter__(self):
        self.peak = self.used_gib()
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.used_gib())


def quanto_version() -> str:
    try:
        from importlib.metadata import version

        return version("optimum-quanto")
    except Exception:  # noqa: BLE001
        return "not installed"


def unpack_bits(packed: torch.Tensor, bits: int) -> torch.Tensor:
    """Quanto's int4/int2 unpacking in plain PyTorch (its `quanto::unpack` default kernel): the `8 // bits` values of
    each byte, lowest bits first, concatenated along the first axis."""
    parts = [(packed & (2 ** (bits * (i + 1)) - 1)) >> (bits * i) for i in range(8 // bits)]
    return torch.cat(parts).to(torch.uint8)


def python_unpack_for_quanto() -> str:
    """Quanto unpacks int4 weights with a CUDA extension that it compiles on first use (minutes of nvcc); route it to
    Quanto's own pure-PyTorch unpack instead (same result; its temporaries are a few MB). Returns a note for the log."""
    try:
        import importlib

        cuda_ext = importlib.import_module("optimum.quanto.library.extensions.cuda")
    except Exception as err:  # noqa: BLE001 — no CUDA extension module: nothing to route
        return f"quanto CUDA extension not routed ({type(err).__name__})"
    cuda_ext.ext._lib = types.SimpleNamespace(unpack=unpack_bits)
    return "int4 unpack: Quanto's PyTorch implementation (its CUDA extension is not compiled here)"


def attention_kernels(model, device: str) -> str:
    """The SDPA operators the lean trunk's triangle attention runs on `device`, as PyTorch's profiler names them:
    one call of the first trunk block's attention on a small pair tensor (`lean.triangle_attention_`, the code of
    every fold)."""
    block = model.trunk.blocks[0]
    pair = torch.randn(1, 64, 64, block.tri_att_start.c_in, device=device)
    activities = [torch.profiler.ProfilerActivity.CPU]
    with torch.profiler.profile(activities=activities) as profile, torch.no_grad():
        lean.triangle_attention_(block.tri_att_start, pair, None, rows=16)
    names = sorted({event.key for event in profile.key_averages() if "scaled_dot_product" in event.key
                    and event.key != "aten::scaled_dot_product_attention"})
    return ", ".join(names) or "none seen"


class Check:
    """Runs the plan, writing one CSV row per load or fold."""

    def __init__(self, out: Path, weights: str, budget_s: float, max_length: int | None, plan: str = "seed",
                 recipes: list[str] | None = None):
        self.out, self.weights, self.budget_s, self.max_length = out, weights, budget_s, max_length
        self.steps = [s for s in PLANS[plan]() if not recipes or s.recipe in recipes]
        self.cuda = torch.cuda.is_available()
        self.device = "cuda" if self.cuda else "cpu"
        self.start = time.perf_counter()
        self.nvml = DeviceMemory() if self.cuda else None
        self.csv = out / ("gpu_check.csv" if plan == "seed" else f"gpu_check_{plan}.csv")
        self.csv.unlink(missing_ok=True)
        p = notebook.provenance(self.device, weights)
        self.common = {"device": p["device"], "driver": self.nvml.driver if self.nvml else "", "torch": p["torch"],
                       "transformers": p["transformers"], "optimum-quanto": quanto_version(),
                       "allocator settings": gpu.allocator_settings(), "date": p["date"],
                       "weights": f"{p['weights']} ({p['weights kind']})"}

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def write(self, row: dict) -> None:
        row = {**row, **self.common}
        for key, value in row.items():
            if isinstance(value, float):
                row[key] = round(value, 4)
        data.append_csv(self.csv, [row], FIELDS)
        shown = {k: row.get(k) for k in ("step", "recipe", "length", "chunk size", "lean trunk", "recycles", "status",
                                           "seconds", "peak allocated (GiB)", "peak reserved (GiB)",
                                           "nvidia-smi peak (GiB)")}
        print(f"[{self.elapsed():6.1f} s] {shown}", flush=True)

    def cap(self, gib: float | None) -> None:
        """Cap torch's CUDA memory (T4 emulation) or lift the cap; the cache is emptied first."""
        if not self.cuda:
            return
        memory.free_memory()
        gpu.cap(gib)

    def readings(self, record: dict) -> None:
        """Fill the CUDA readings of a row (peaks since the last reset, and the state now)."""
        if not self.cuda:
            record["why"] = (record.get("why", "") + "; " if record.get("why") else "") + "no CUDA: GPU readings skipped"
            return
        torch.cuda.synchronize()
        record["peak allocated (GiB)"] = torch.cuda.max_memory_allocated() / GIB
        record["peak reserved (GiB)"] = torch.cuda.max_memory_reserved() / GIB
        record["allocated after (GiB)"] = torch.cuda.memory_allocated() / GIB
        record["reserved after (GiB)"] = torch.cuda.memory_reserved() / GIB
        record["allocator retries"] = torch.cuda.memory_stats().get("num_alloc_retries", 0)  # cache freed to fit
        record["nvidia-smi peak (GiB)"] = self.nvml.peak
        record["nvidia-smi after (GiB)"] = self.nvml.used_gib()

    def timed(self, record: dict, work) -> object:
        """Run `work()` with peaks reset and NVML sampled; an out-of-memory error is recorded, not raised."""
        result = None
        gc.collect()
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            torch.cuda.reset_accumulated_memory_stats()  # allocator retries counted per row
        begin = time.perf_counter()
        try:
            if self.cuda:
                with self.nvml:
                    result = work()
            else:
                result = work()
            record["status"] = "ok"
        except Exception as err:  # noqa: BLE001 — OOM is a result; other errors are recorded and the check goes on
            record["status"] = "OOM" if memory.is_oom(err) else f"error: {type(err).__name__}: {str(err)[:200]}"
            if not memory.is_oom(err):
                traceback.print_exc()
            traceback.clear_frames(err.__traceback__)
            del err
        if self.cuda:
            torch.cuda.synchronize()
        record["seconds"] = time.perf_counter() - begin
        self.readings(record)
        return result

    def context(self) -> None:
        """The CUDA context: device memory in use once CUDA and cuBLAS are initialised, before any model."""
        record = {"step": "context", "recipe": "", "cap (GiB)": ""}
        if self.cuda:
            torch.ones(256, 256, device="cuda") @ torch.ones(256, 256, device="cuda")
            torch.cuda.synchronize()
            memory.free_memory()
            record.update(status="ok", **{"nvidia-smi after (GiB)": self.nvml.used_gib(),
                                           "reserved after (GiB)": torch.cuda.memory_reserved() / GIB})
            record["why"] = "CUDA context + cuBLAS handle, no tensors kept"
        else:
            record.update(status="skipped", why="no CUDA")
        self.write(record)

    def run_step(self, step: Step) -> None:
        base = {"recipe": step.recipe, "cap (GiB)": step.cap or "none"}
        if self.elapsed() > self.budget_s:
            for fold_ in [None] + step.folds:
                self.write({**base, "step": "load" if fold_ is None else "fold", "status": "skipped",
                            "why": "time budget spent", **({"length": fold_.length} if fold_ else {})})
            return
        self.cap(step.cap)
        load = {**base, "step": "load", "why": step.why}
        if step.recipe == INT8_V4:
            loaded = self.timed(load, lambda: load_int8_v4(self.device, self.weights))
        else:
            loaded = self.timed(load, lambda: models.load_model(step.recipe, device=self.device, source=self.weights))
        if loaded is not None:
            load["weights (GiB)"] = models.resident_bytes(loaded[0]) / GIB
        self.write(load)
        if loaded is None:
            return
        model, tokenizer = loaded
        folding.fold(model, tokenizer, "MKTAYIAK", num_recycles=0)  # warm-up: CUDA kernels and cuBLAS plans load once
        for fold_ in step.folds:
            length = min(fold_.length, self.max_length or fold_.length)
            row = {**base, "step": "fold", "length": length, "chunk size": fold_.chunk or "none",
                   "lean trunk": fold_.lean, "lean changes": ", ".join(lean.CHANGES) if fold_.lean else "",
                   "recycles": "default" if fold_.recycles is None else fold_.recycles,
                   "trunk passes": 4 if fold_.recycles is None else fold_.recycles + 1, "why": fold_.why}
            if length != fold_.length:
                row["why"] = f"{fold_.why}; rehearsal: {fold_.length} shortened to {length}".lstrip("; ")
            if self.elapsed() > self.budget_s:
                self.write({**row, "status": "skipped", "why": "time budget spent"})
                continue
            if fold_.lean:
                if lean.is_lean(model) != lean.LeanOptions():  # kept across folds: a parked LM comes back in the fold
                    lean.make_lean(model)
                    row["attention kernel"] = attention_kernels(model, self.device)
            else:
                lean.undo_lean(model)
            model.trunk.set_chunk_size(fold_.chunk)
            sequence, row["sequence"] = data.sequence_of_length(length)
            self.timed(row, lambda: folding.fold(model, tokenizer, sequence, num_recycles=fold_.recycles))
            if fold_.lean:
                parking = model._lm_parking.last
                row["LM parked"] = parking.get("parked", "")
                if parking.get("freed") is not None:
                    row["GiB freed by parking"] = parking["freed"] / GIB
                if parking.get("why"):
                    row["why"] = f"{row['why']}; not parked: {parking['why']}"
            self.write(row)
        del model, tokenizer, loaded
        memory.free_memory()

    def run(self) -> None:
        print(f"GPU check: {self.common}", flush=True)
        if self.cuda:
            print(python_unpack_for_quanto(), flush=True)
        build = {"step": "build stand-in", "recipe": "", "cap (GiB)": ""}
        begin = time.perf_counter()
        models.checkpoint_path(self.weights)  # builds a stand-in once (random weights), else nothing
        build.update(status="ok", seconds=time.perf_counter() - begin, why=models.checkpoint_path(self.weights))
        self.write(build)
        self.context()
        for step in self.steps:
            try:
                self.run_step(step)
            except Exception:  # noqa: BLE001 — one broken recipe must not cost the rest of a rare GPU lease
                traceback.print_exc()
                self.write({"step": "load", "recipe": step.recipe, "status": "error", "why": traceback.format_exc(-1)[-200:]})
        self.cap(None)
        print(f"done in {self.elapsed():.0f} s: {self.csv}", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="folder for gpu_check.csv and gpu_check.log")
    parser.add_argument("--weights", default=os.environ.get(models.WEIGHTS_ENV, "random-full"),
                        help="random-full (default), tiny, or real weights (a hub id or path)")
    parser.add_argument("--budget-s", type=float, default=None,
                        help="start no row after this many seconds (default 430; t4-3056: T4_LONGEST_BUDGET_S)")
    parser.add_argument("--max-length", type=int, default=None, help="shorten every fold to this (CPU rehearsal)")
    parser.add_argument("--plan", choices=sorted(PLANS), default="seed",
                        help="seed: the seed's recipes and lengths, T4 limits, lean trunk (default); limits: fresh-load "
                             "probes around the T4 limits and the transformers-4 int8 load; long: the lean trunk's "
                             "T4 limits (notebook 07), after shorter folds and fresh, with seconds per trunk pass; "
                             "t4-3056: int8 + lean at 3,056 residues, twice in one process (≤ 8 minutes)")
    parser.add_argument("--recipes", default="", help="comma-separated: only these recipes of the plan")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    log = open(args.out / f"gpu_check{'' if args.plan == 'seed' else '_' + args.plan}.log", "w")
    sys.stdout = _Tee(sys.stdout, log)
    sys.stderr = _Tee(sys.stderr, log)
    budget = args.budget_s if args.budget_s is not None else PLAN_BUDGETS.get(args.plan, 430.0)
    Check(args.out, args.weights, budget, args.max_length, args.plan,
          [r for r in args.recipes.split(",") if r]).run()
    return 0


class _Tee:
    """Write to the terminal and the log file at once."""

    def __init__(self, *streams):
        self.streams = streams

    def write(self, text):
        for stream in self.streams:
            stream.write(text)
            stream.flush()

    def flush(self):
        for stream in self.streams:
            stream.flush()


if __name__ == "__main__":
    sys.exit(main())
