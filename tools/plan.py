"""Maintainer tool: the T4 plan of the series — what each notebook's Run all does on a free Colab runtime, and how
long it should take there.

    python -m tools.plan           rehearse every notebook (the tiny stand-in on this CPU: minutes), then write
                                   figures/t4_plan.csv and the estimates it gives to the notebooks' headers, the
                                   README's series table and the instructor guide
    python -m tools.plan 03 07     rehearse only these notebooks (their rows are replaced, the others kept)
    python -m tools.plan --render  only rewrite the headers, README, guide and results page from the committed plan
    python -m tools.plan --reprice recompute the committed plan's GPU fold seconds with today's time model (no
                                   rehearsal: what the notebooks do is unchanged), then render

The rehearsal (`helpers.rehearsal`) records every checkpoint read, load and fold a notebook's cells perform, with its
real lengths and settings, and the memory each fold is predicted to need on a free T4 (`fit.grid_estimate`). This
tool turns the records into T4 seconds with the time model below: seconds measured on an H100 (figures/09_*.csv)
scaled by a cited T4 factor per kind of work, disk and network rates for reads and the download, the notebook's own
CPU work as measured in the rehearsal, and for the CPU notebook (08) the fold times measured per CPU class
(figures/08_cpu_classes.csv). Every number it writes is an estimate, labelled as one.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import nbformat
import pandas as pd
from nbclient import NotebookClient

from helpers import cpu, gpu, models, notebook, recipes, rehearsal
from helpers import lean as lean_module

ROOT = Path(__file__).resolve().parent.parent
PLAN_CSV = ROOT / "figures" / "t4_plan.csv"
#: Per notebook: the plan's totals (`totals`), with the plan's provenance.
TOTALS_CSV = ROOT / "figures" / "t4_plan_totals.csv"

# --- the time model -------------------------------------------------------------------------------------------------

#: FP32 throughput, H100 SXM (67 TFLOPS) over a T4 (8.1 TFLOPS), both from NVIDIA's datasheets: the factor for the
#: trunk's fp32 work (sources: `time_model_rows`).
COMPUTE_FACTOR = 67 / 8.1
#: Memory bandwidth, H100 SXM (3,350 GB/s) over a T4 (300 GB/s), both from NVIDIA's datasheets: the factor for
#: memory-bound work — the language model and structure module at these lengths, quantizing while loading.
MEMORY_FACTOR = 3350 / 300
#: A short fold is host-bound: the CPU's Python and kernel launches, not the GPU, set its time. That part does not
#: scale by the GPUs' ratios; a Colab runtime's CPU (a 2.2 GHz Xeon, COLAB_CPU) is assumed twice as slow at it as the
#: H100 machine's host (not measured).
HOST_FACTOR = 2.0
#: A measured pass counts as GPU-bound where it takes more than this × the host-bound floor (the shortest folds').
HOST_BOUND_MARGIN = 1.25
#: Hugging Face hub → a Colab runtime, MB/s: downloads at these rates were reported there (`time_model_rows`).
REPORTED_DOWNLOAD_MB_S = (106, 175)
#: The rate planned for: a little below the reports, to be safe. Slower days happen.
DOWNLOAD_MB_S = 100
#: Reading the cached checkpoint from a Colab runtime's disk, MB/s: an assumption (Colab does not publish its disk's
#: speed); a second read may come faster from the page cache.
DISK_MB_S = 150
#: The setup cell's installs (py3Dmol, biotite, optimum-quanto, …, and this repository's helpers), seconds: assumed.
SETUP_S = 60
#: Copies of the language model's weights between CPU RAM and a T4 (offloading streams its 5.3 GiB of fp16 to the GPU
#: in every fold; the lean model's parking copies it out and back), GB/s: an assumption for pageable memory over a
#: T4's PCIe 3.0 × 16 (about 16 GB/s at best).
PCIE_GB_S = 3.0
#: The checkpoint on the hub (bytes): 2.83 B fp16 language-model parameters + 0.69 B fp32 others.
CHECKPOINT_BYTES = 8_440_000_000

#: Where the time model's numbers come from: NVIDIA's datasheets for the two GPUs, Colab's issue tracker for its CPU.
H100_DATASHEET = "https://resources.nvidia.com/en-us-tensor-core/nvidia-tensor-core-gpu-datasheet"
T4_DATASHEET = "https://www.nvidia.com/content/dam/en-zz/Solutions/Data-Center/tesla-t4/t4-tensor-core-datasheet-951643.pdf"
COLAB_CPU = "https://github.com/googlecolab/colabtools/issues/1937"
COLAB_DOWNLOADS = "https://github.com/turboderp-org/exllamav2/issues/761"
#: The results page's section that lists them (the notebooks' run-time headers link to it).
SOURCES_PAGE = "../docs/results.md#how-the-t4-run-times-are-estimated"


def time_model_rows() -> list[tuple[str, str, str]]:
    """(term, value, where it comes from) of the time model behind every T4 run time of the series."""
    model = _per_pass_curves()
    return [
        ("trunk compute, T4 ÷ H100", f"× {COMPUTE_FACTOR:.1f}",
         f"fp32 throughput: H100 SXM 67 TFLOPS ([NVIDIA datasheet]({H100_DATASHEET})), T4 8.1 TFLOPS ([NVIDIA "
         f"datasheet]({T4_DATASHEET}))"),
        ("memory-bound steps, T4 ÷ H100", f"× {MEMORY_FACTOR:.1f}",
         f"memory bandwidth: H100 SXM 3,350 GB/s ([NVIDIA datasheet]({H100_DATASHEET})), T4 300 GB/s ([NVIDIA "
         f"datasheet]({T4_DATASHEET}))"),
        ("a fold's fixed cost on the H100", fixed_cost_text(),
         f"its shortest folds ({model['shortest']} aa, 4 trunk passes, figures/09_*.csv): host-bound, the time any fold "
         "call takes however short, once per call — a padded batch of several sequences pays it once"),
        ("a fold's fixed cost, T4 ÷ H100", f"× {HOST_FACTOR:g}",
         "assumed, not measured: the fixed cost is the host's (Python and kernel launches, measured on the H100 as "
         f"its shortest folds' time), and a Colab runtime's CPU is a [2.2 GHz Xeon]({COLAB_CPU})"),
        ("the 8.4 GB download", f"{DOWNLOAD_MB_S} MB/s",
         f"below the {REPORTED_DOWNLOAD_MB_S[0]}–{REPORTED_DOWNLOAD_MB_S[1]} MB/s [reported on Colab]"
         f"({COLAB_DOWNLOADS})"),
        ("reading the cached checkpoint", f"{DISK_MB_S} MB/s", "assumed: Colab does not publish its disks' speed"),
        ("the setup cell's installs", f"{SETUP_S} s", "assumed"),
        ("copies of the language model over PCIe", f"{PCIE_GB_S:g} GB/s",
         "assumed: pageable memory over a T4's PCIe 3.0 × 16 (32 GB/s both ways together, [NVIDIA datasheet]"
         f"({T4_DATASHEET}))"),
        ("fold times", "measured", "an H100 under a T4's memory cap (`make gpu-check`, figures/09_*.csv), per "
                                   "trunk pass, by length"),
    ]


def fixed_cost_text() -> str:
    """The fixed cost of a default fold (4 trunk passes) on the H100, per kind of trunk weights: "0.95 s (fp16), …"."""
    model = _per_pass_curves()
    return ", ".join(f"{fixed_seconds({'trunk passes': 4, 'recipe': kind}, model):.2f} s ({kind})"
                     for kind in ("fp16", "int8", "int4"))


def _h100_rows() -> pd.DataFrame:
    """The H100's measured folds and loads (figures/09_gpu_check, 09_gpu_recheck, 09_gpu_limits), ok rows only."""
    frames = [pd.read_csv(ROOT / "figures" / name) for name in ("09_gpu_check.csv", "09_gpu_recheck.csv",
                                                                "09_gpu_limits.csv")]
    rows = pd.concat(frames, ignore_index=True)
    return rows[rows["status"] == "ok"]


def _per_pass_curves() -> dict:
    """The H100's fold times split into what a T4 scales and what it does not, all from the measured folds:

    - `base`: seconds outside the trunk passes (language model, structure module, heads), from the folds measured
      with 1 and with several passes, at `base length` residues (their GPU work grows in proportion to the length);
    - `fixed`: per kind of trunk weights (fp16-like, int8, int4), seconds per trunk pass at the shortest measured
      length, where a pass is host-bound — Python and kernel launches, not GPU work;
    - `curves`: seconds of GPU work per pass against length for an fp32 trunk, original and lean — the measured
      per-pass seconds where they lie clearly above the host-bound floor, and below that a power law extrapolated
      from the two shortest such points (the GPU work at short lengths hides under the host's);
    - `extra`: each quantized trunk's extra seconds per pass over fp16 where the passes are GPU-bound (it
      dequantizes every weight in every block)."""
    rows = _h100_rows()
    folds = rows[rows["step"] == "fold"].copy()
    folds["passes"] = folds["trunk passes"].astype(float)
    folds["length"] = folds["length"].astype(int)
    folds["lean"] = folds["lean trunk"].astype(str) == "True"
    # Outside the passes: where the same fold ran with 1 and 4 passes, the difference is 3 passes.
    outside, at_lengths = [], []
    for (_, length, _), part in folds.groupby(["recipe", "length", "lean"]):
        by = part.groupby("passes")["seconds"].median()
        if len(by) > 1:
            per_pass = (by.iloc[-1] - by.iloc[0]) / (by.index[-1] - by.index[0])
            outside.append(max(0.0, by.iloc[0] - by.index[0] * per_pass))
            at_lengths.append(length)
    base = float(pd.Series(outside).median()) if outside else 0.1
    base_length = float(pd.Series(at_lengths).median()) if at_lengths else 500.0
    folds["per pass"] = (folds["seconds"] - base) / folds["passes"]
    folds["kind"] = folds["recipe"].map(_quantized_like)
    original = folds[~folds["lean"]]
    shortest = int(original["length"].min())
    fixed = {kind: float(part["per pass"].median())
             for kind, part in original[original["length"] == shortest].groupby("kind")}
    # A quantized trunk's extra seconds per pass over fp16 where the passes are GPU-bound: at the longest length every
    # kind was measured at with the default passes (shorter folds' extra is host time, in `fixed`).
    default = original[original["passes"] == original["passes"].max()]
    common = max(set.intersection(*(set(part["length"]) for _, part in default.groupby("kind"))))
    at = default[default["length"] == common].groupby("kind")["per pass"].median()
    extra = {kind: max(0.0, float(at[kind]) - float(at["fp16"])) for kind in at.index}
    folds["fp32 trunk"] = folds["per pass"] - folds["kind"].map(lambda k: extra.get(k, 0.0))
    floor = fixed["fp16"]
    curves = {}
    for name, part in folds.groupby(folds["lean"].map({True: "lean", False: "original"})):
        points = sorted((int(n), float(s)) for n, s in part.groupby("length")["fp32 trunk"].median().items())
        bound = [(n, s) for n, s in points if s > HOST_BOUND_MARGIN * floor]  # GPU-bound: clearly above the floor
        if name == "original" and len(bound) >= 2:
            (l0, t0), (l1, t1) = bound[0], bound[1]
            exponent = math.log(t1 / t0) / math.log(l1 / l0)
            bound = [(n, t0 * (n / l0) ** exponent) for n, _ in points if n < l0] + bound
        curves[name] = bound or points
    return {"base": base, "base length": base_length, "fixed": fixed, "shortest": shortest, "curves": curves,
            "extra": extra}


def _interpolate(points: list[tuple[int, float]], length: int) -> float:
    """Power law between the measured points around `length`; the shortest point's value below them; L³ growth beyond
    the longest."""
    points = sorted(points)
    if length <= points[0][0]:
        return points[0][1]
    if length >= points[-1][0]:
        return points[-1][1] * (length / points[-1][0]) ** 3
    for (l0, t0), (l1, t1) in zip(points, points[1:]):
        if l0 <= length <= l1:
            if t0 <= 0 or t1 <= 0:
                return t0 + (t1 - t0) * (length - l0) / (l1 - l0)
            exponent = math.log(t1 / t0) / math.log(l1 / l0)
            return t0 * (length / l0) ** exponent
    raise AssertionError("unreachable")


def _quantized_like(recipe: str | None) -> str:
    """The measured recipe whose per-pass extra a recipe is given (its trunk's weights are stored the same way)."""
    spec = recipes.RECIPES.get(recipe or "fp16")
    if spec is None or not spec.quantized or spec.lm_only:
        return "fp16"
    return "int4" if spec.quanto == "int4" else "int8"


def fixed_seconds(row: dict, model: dict) -> float:
    """The H100 seconds of a fold call that do not depend on its length or its batch: the host's work (Python and
    kernel launches) outside the passes and in each pass, as measured at the shortest folds."""
    return model["base"] + int(row["trunk passes"]) * model["fixed"].get(_quantized_like(row.get("recipe")),
                                                                         model["fixed"]["fp16"])


def gpu_work_seconds(row: dict, model: dict) -> tuple[float, float]:
    """(outside the passes, in the passes): the H100 seconds of GPU work of one sequence of a fold — outside the passes
    in proportion to its length, each pass's work at its length (the fp32 trunk's curve plus the quantized trunk's
    extra)."""
    lean = bool(row.get("lean"))
    curve = model["curves"]["lean" if lean else "original"]
    if lean and row["length"] < curve[0][0]:  # below the lean trunk's measured lengths: as the original trunk
        curve = model["curves"]["original"]
    per_pass = _interpolate(curve, int(row["length"])) + model["extra"].get(_quantized_like(row.get("recipe")), 0.0)
    return model["base"] * int(row["length"]) / model["base length"], int(row["trunk passes"]) * per_pass


def gpu_fold_seconds(row: dict, model: dict) -> tuple[float, float]:
    """(H100 seconds, T4 seconds) of one planned GPU fold call (a padded batch is one call). A call takes the longer
    of its host time and its GPU time. The host time is the fixed cost measured on the H100, once per call, × the
    host factor (the CPU driving the GPU, not the GPU); the GPU time is every sequence's work, × the memory factor
    outside the passes and × the compute factor in them."""
    batch = int(row.get("batch") or 1)
    fixed = fixed_seconds(row, model)
    outside, passes = gpu_work_seconds(row, model)
    h100 = max(fixed, batch * (outside + passes))
    t4 = max(fixed * HOST_FACTOR, batch * (outside * MEMORY_FACTOR + passes * COMPUTE_FACTOR))
    lean = bool(row.get("lean"))
    if row.get("recipe") and recipes.get(row["recipe"]).offload_lm:  # the LM's weights stream over PCIe once
        t4 += lm_weight_bytes(row["recipe"]) / (PCIE_GB_S * 1e9)
    elif lean and row.get("recipe") and int(row["length"]) >= lean_module.PARK_FROM:
        t4 += parking_seconds(row["recipe"])
    return h100, t4


def parking_seconds(recipe: str) -> float:
    """T4 seconds the lean model's parking adds to a fold (an estimate): its language model's weights to CPU RAM and,
    at the next fold, back — two copies at PCIE_GB_S."""
    return 2 * lm_weight_bytes(recipe) / (PCIE_GB_S * 1e9)


def lm_weight_bytes(recipe: str) -> int:
    """Bytes of a recipe's language-model weights: what offloading streams and parking moves over PCIe (computed
    from the architecture, once per recipe)."""
    return models.expected_weights_bytes(recipe)["language model (ESM-2)"]


def load_seconds(row: dict) -> float:
    """T4 seconds of one load: the checkpoint read from disk, plus the H100's quantize or upcast time beyond an fp16
    load, scaled as memory-bound work."""
    rows = _h100_rows()
    loads = rows[rows["step"] == "load"].groupby("recipe")["seconds"].median()
    extra = max(0.0, float(loads.get(row.get("recipe") or "fp16", loads.get("int8", 0))) - float(loads["fp16"]))
    if row.get("quantization") and row.get("recipe") not in loads.index:
        extra = max(extra, float(loads["int8"]) - float(loads["fp16"]))
    return CHECKPOINT_BYTES / (DISK_MB_S * 1e6) + extra * MEMORY_FACTOR


#: The CPU classes a Colab CPU runtime is planned as: the slowest (cpu.COLAB_CPU_CLASS), and one with bf16
#: instructions, where notebook 08 chooses another recipe and loads more recipes to compare; its header gives the
#: longer of the two.
PLANNED_CPU_CLASSES = (cpu.COLAB_CPU_CLASS, "AVX-512 BF16")


def cpu_fold_seconds(row: dict) -> float:
    """Seconds of one fold on a Colab CPU runtime of the row's CPU class (cpu.COLAB_CPU_CLASS if none): the measured
    fold of the CPU recipe (figures/08_cpu_classes.csv; the benchmark's where the class lacks the recipe), per trunk
    pass, by length."""
    classes = pd.read_csv(ROOT / "figures" / "08_cpu_classes.csv")
    recipe = cpu_recipe_name(row)
    planned = row.get("CPU class") if isinstance(row.get("CPU class"), str) else cpu.COLAB_CPU_CLASS
    if not cpu.CPU_CLASSES[planned][1]:  # the uncapped class is the benchmark's machine: its lengths fill the gaps
        bench = pd.read_csv(ROOT / "figures" / "08_cpu_benchmark.csv").assign(**{"CPU class": planned})
        mine = classes[classes["CPU class"] == planned]
        known = set(zip(mine["recipe"], mine["length"]))
        bench = bench[[(r, n) not in known for r, n in zip(bench["recipe"], bench["length"])]]
        classes = pd.concat([classes, bench[["CPU class", "recipe", "length", "fold seconds"]]], ignore_index=True)
    part = classes[(classes["CPU class"] == planned) & (classes["recipe"] == recipe)]
    if part.empty:
        part = classes[(classes["CPU class"] == planned) & (classes["recipe"] == cpu.FP32_ARITHMETIC_RECIPE)]
    seconds = part.groupby("length")["fold seconds"].median()
    per_fold = _interpolate([(int(n), float(t)) for n, t in seconds.items()], int(row["length"]))
    return per_fold * int(row["trunk passes"]) / 4 * int(row.get("batch") or 1)


def cpu_recipe_name(row: dict) -> str:
    """notebook 08's name for a fold's weights: the first recipe of its table with these precisions and trunk."""
    found = recipes.matching(row.get("language model"), row.get("trunk"), lean=bool(row.get("lean")),
                             table=recipes.CPU_TABLE)
    return found[0] if found else cpu.FP32_ARITHMETIC_RECIPE


# --- rehearsing -----------------------------------------------------------------------------------------------------

def series(names: list[str] | None = None) -> list[Path]:
    paths = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    return [p for p in paths if not names or p.name[:2] in names]


def rehearse(path: Path, log_dir: Path, timeout: int = 1800, cpu_class: str | None = None) -> Path:
    """Execute one notebook with the tiny stand-in, its rehearsal writing into `log_dir` (a CPU runtime answering as
    `cpu_class`, default cpu.COLAB_CPU_CLASS); return the log folder."""
    os.environ[models.WEIGHTS_ENV] = "tiny"
    os.environ[rehearsal.LOG_ENV] = str(log_dir)
    before = os.environ.pop(cpu.REHEARSAL_CLASS_ENV, None)
    if cpu_class:
        os.environ[cpu.REHEARSAL_CLASS_ENV] = cpu_class
    try:
        nb = nbformat.read(path, as_version=4)
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        os.environ.pop(cpu.REHEARSAL_CLASS_ENV, None)
        if before is not None:
            os.environ[cpu.REHEARSAL_CLASS_ENV] = before
    return log_dir


def rehearse_rows(path: Path, log_dir: Path, h100_model: dict | None = None, other_classes: bool = True) -> list[dict]:
    """A notebook's plan rows from its rehearsal in `log_dir` (rehearsed now if it is not there); with
    `other_classes`, a CPU notebook is rehearsed again as each other class of PLANNED_CPU_CLASSES, in a folder of its
    own."""
    events = events_of(path, log_dir)
    if not events:
        rehearse(path, log_dir)
        events = events_of(path, log_dir)
    rows = plan_rows(path, events, h100_model)
    if rows and rows[0]["runtime"] == "cpu" and other_classes:
        for name in PLANNED_CPU_CLASSES[1:]:
            with tempfile.TemporaryDirectory(prefix="rehearsal-") as other:
                rehearse(path, Path(other), cpu_class=name)
                rows += plan_rows(path, events_of(path, Path(other)), h100_model, cpu_class=name)
    return rows


def _cells(path: Path) -> list[dict]:
    """Each code cell of a notebook: its index among code cells, key (`rehearsal.cell_key`), section and tags."""
    nb = nbformat.read(path, as_version=4)
    section, cells, index = "", [], 0
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            headings = re.findall(r"^## (.+)$", cell.source, re.M)
            section = headings[-1].strip() if headings else section
            continue
        index += 1
        tags = cell.get("metadata", {}).get("tags", [])
        cells.append({"cell": index, "key": rehearsal.cell_key(cell.source), "section": section,
                      "solution": "solution" in tags, "optional": "optional" in tags})
    return cells


def events_of(path: Path, log_dir: Path) -> list[dict]:
    """The rehearsal's events for one notebook (the log file whose cells are this notebook's)."""
    cells = {c["key"]: c for c in _cells(path)}
    best, events = 0, []
    for log in Path(log_dir).glob("*.jsonl"):
        rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        logged = {row["cell"] for row in rows if row.get("cell")}
        known = len(logged & cells.keys())
        # every cell of the notebook's own log is one of its cells; another notebook's log may share a cell or two
        if known > best and known == len(logged):
            best, events = known, rows
    out = []
    for row in events:
        cell = cells.get(row.get("cell"))
        if cell is not None:
            out.append({**row, "cell": cell["cell"], "section": cell["section"], "solution": cell["solution"],
                        "optional": cell["optional"]})
        elif row.get("event") == "start":  # logged while the parameter cell ran notebook.start()
            out.append({**row, "cell": 0, "section": "Parameters", "solution": False, "optional": False})
    return out


def plan_rows(path: Path, events: list[dict], h100_model: dict | None = None,
              cpu_class: str | None = None) -> list[dict]:
    """The plan rows of one notebook: the download, then every read, load and fold, then the notebook's CPU work —
    each with its estimated seconds on a free Colab runtime (a CPU runtime: of class `cpu_class`, default
    cpu.COLAB_CPU_CLASS, the class the rehearsal answered as)."""
    h100_model = h100_model or _per_pass_curves()
    notebook = path.stem
    runtime = next((e.get("runtime") for e in events if e.get("event") == "start"), "gpu")
    planned = (cpu_class or cpu.COLAB_CPU_CLASS) if runtime == "cpu" else None
    rows = [{"notebook": notebook, "runtime": runtime, "CPU class": planned, "cell": 0, "section": "Setup", "solution": False,
             "optional": False, "event": "setup and download", "checkpoint reads": 0,
             "estimated seconds": SETUP_S + CHECKPOINT_BYTES / (DOWNLOAD_MB_S * 1e6),
             "basis": f"installs (assumed {SETUP_S} s) + {CHECKPOINT_BYTES / 1e9:.2f} GB at {DOWNLOAD_MB_S} MB/s"}]
    spent: dict[int, float] = {}
    for e in events:
        kind = e["event"]
        common = {"notebook": notebook, "runtime": runtime, "CPU class": planned, "cell": e["cell"], "section": e["section"],
                  "solution": e["solution"], "optional": bool(e.get("optional"))}
        if kind in ("load", "fold"):
            spent[e["cell"]] = spent.get(e["cell"], 0.0) + float(e.get("seconds") or 0.0)
        if kind == "load":
            seconds = load_seconds(e) if runtime == "gpu" else _cpu_load_seconds(e)
            rows.append({**common, "event": "load", "recipe": e.get("recipe"), "checkpoint reads": 1,
                         "estimated seconds": seconds,
                         "basis": f"8.44 GB read at {DISK_MB_S} MB/s" + (" + quantizing (H100 × memory factor)"
                                                                         if e.get("quantization") else "")})
        elif kind == "read":
            size = _saved_bytes() if e.get("quantized") else 0
            rows.append({**common, "event": "read saved checkpoint", "recipe": "int8" if e.get("quantized") else None,
                         "checkpoint reads": 0, "estimated seconds": size / (DISK_MB_S * 1e6),
                         "basis": f"{size / 1e9:.2f} GB read at {DISK_MB_S} MB/s"})
        elif kind == "fold":
            row = {**common, "event": "fold", "recipe": e.get("recipe") or e.get("planned as"),
                   "language model": e.get("language model"), "trunk": e.get("trunk"), "lean": e.get("lean"),
                   "chunk size": e.get("chunk size"), "length": e["length"], "batch": e.get("batch", 1),
                   "trunk passes": e["trunk passes"], "checkpoint reads": 0}
            if runtime == "gpu":
                h100, t4 = gpu_fold_seconds(row, h100_model)
                row.update({"predicted need (GiB)": e.get("need (GiB)"), "budget (GiB)": e.get("budget (GiB)"),
                            "verdict": e.get("verdict"), "estimate": e.get("estimate"),
                            "prepared for out-of-memory": e.get("prepared"), "out of memory": e.get("out of memory"),
                            "H100 seconds (model)": h100,
                            # a fold predicted over the budget fails at once; a borderline one may well run: counted
                            "estimated seconds": 0.0 if e.get("verdict") == "over" else t4,
                            "basis": "H100 seconds: fixed cost × host factor or GPU work × T4 factors" + (
                                "; fails at once (out of memory)" if e.get("verdict") == "over" else "")})
            else:
                row.update({"verdict": "fits", "recipe": cpu_recipe_name(row),
                            "estimated seconds": cpu_fold_seconds({**row, "CPU class": planned}),
                            "basis": f"measured per CPU class ({planned}), figures/08_cpu_classes.csv"})
            rows.append(row)
    for e in events:  # what the cells spent outside loads and folds: the notebook's own CPU work, measured here
        if e["event"] == "cell":
            work = float(e["seconds"]) - spent.get(e["cell"], 0.0)
            if work >= 1.0:
                rows.append({"notebook": notebook, "runtime": runtime, "CPU class": planned, "cell": e["cell"],
                             "section": e["section"],
                             "solution": e["solution"], "optional": bool(e.get("optional")), "event": "CPU work", "checkpoint reads": 0,
                             "estimated seconds": round(work),
                             "basis": "measured in the rehearsal on 2 CPU cores"})
    return rows


def _cpu_load_seconds(event: dict) -> float:
    """A load on a Colab CPU runtime: the checkpoint read from disk, plus the load time measured in notebook 08's
    benchmark for its recipe (there the checkpoint came from the page cache: that time is the conversion)."""
    bench = pd.read_csv(ROOT / "figures" / "08_cpu_benchmark.csv")
    loads = bench.groupby("recipe")["load seconds"].median()
    recipe = cpu_recipe_name({**event, "lean": False})
    return CHECKPOINT_BYTES / (DISK_MB_S * 1e6) + float(loads.get(recipe, loads.get("fp16", 0.0)))


def _saved_bytes() -> int:
    """Bytes of the saved Quanto int8 checkpoint (its exact weight bytes)."""
    return models.expected_weights_bytes("int8")["total"]


def provenance() -> str:
    """The plan's provenance: how it was rehearsed (versions and date as `notebook.provenance` gives them)."""
    p = notebook.provenance("cpu", models.TINY_STAND_IN)
    return (f"T4 plan: the tiny stand-in's rehearsal of each notebook (its real lengths and settings; memory predicted "
            f"for the full-size esmfold_v1 on a free T4, {gpu.T4.usable_gib:.2f} GiB usable) on "
            f"{os.cpu_count()} CPU cores, torch {p['torch']}, transformers {p['transformers']}, "
            f"{p['date']}; seconds are ESTIMATES (tools/plan.py: H100 measurements × T4 factors "
            f"{COMPUTE_FACTOR:.1f} compute / {MEMORY_FACTOR:.1f} memory / {HOST_FACTOR:g} a fold's fixed host cost, "
            f"download {DOWNLOAD_MB_S} MB/s, disk {DISK_MB_S} MB/s); no T4 was measured")


# --- what the plan says --------------------------------------------------------------------------------------------

def load_plan() -> pd.DataFrame:
    """The committed plan."""
    return pd.read_csv(PLAN_CSV)


def _scenarios(whole: pd.DataFrame) -> list[pd.DataFrame]:
    """A notebook's plan rows, one frame per CPU class it was rehearsed as (a GPU notebook: one frame)."""
    if "CPU class" not in whole or whole["CPU class"].isna().all():
        return [whole]
    return [part for _, part in whole.groupby("CPU class", sort=False)]


def totals(plan: pd.DataFrame) -> pd.DataFrame:
    """Per notebook: checkpoint reads, loads, folds (and how many are predicted not to fit), estimated minutes — of a
    Run all with the optional section off (cells tagged "optional" run only when the reader switches them on), and
    the minutes that section adds. A CPU notebook rehearsed as several CPU classes gives the class that takes longest
    (column `planned as`)."""
    out = []
    for name, whole in plan.groupby("notebook", sort=True):
        found = []
        for scenario in _scenarios(whole):
            optional = scenario.get("optional", pd.Series(False, index=scenario.index)).astype(str) == "True"
            part = scenario[~optional]
            folds = part[part["event"] == "fold"]
            planned = scenario["CPU class"].dropna() if "CPU class" in scenario else pd.Series(dtype=object)
            found.append({"notebook": name, "runtime": part["runtime"].iloc[0],
                          "planned as": planned.iloc[0] if len(planned) else "free T4",
                          "checkpoint reads": int(part["checkpoint reads"].sum()),
                          "loads": int((part["event"] == "load").sum()), "folds": len(folds),
                          "folds at the edge": int(folds["verdict"].isin(["over", "borderline"]).sum()),
                          "minutes": part["estimated seconds"].sum() / 60,
                          "download minutes": part.loc[part["event"] == "setup and download",
                                                       "estimated seconds"].sum() / 60,
                          "optional minutes": scenario.loc[optional, "estimated seconds"].sum() / 60})
        out.append(max(found, key=lambda row: row["minutes"]))
    return pd.DataFrame(out)


def reprice(plan: pd.DataFrame, h100_model: dict | None = None) -> pd.DataFrame:
    """The plan with every GPU fold's seconds recomputed by today's time model from its own columns, and each row's
    section title as the notebook reads today (what the notebook does is unchanged: no rehearsal needed)."""
    h100_model = h100_model or _per_pass_curves()
    plan = plan.copy()

    def plain(value):
        return None if isinstance(value, float) and math.isnan(value) else value

    for index, row in plan[(plan["event"] == "fold") & (plan["runtime"] == "gpu")].iterrows():
        fold = {key: plain(value) for key, value in row.to_dict().items()}
        fold["lean"] = str(fold.get("lean")) == "True"
        h100, t4 = gpu_fold_seconds(fold, h100_model)
        plan.loc[index, "H100 seconds (model)"] = h100
        plan.loc[index, "estimated seconds"] = 0.0 if fold.get("verdict") == "over" else t4
    for path in series():  # section titles as the notebooks read today
        sections = {c["cell"]: c["section"] for c in _cells(path)}
        rows = (plan["notebook"] == path.stem) & (plan["cell"] > 0)
        plan.loc[rows, "section"] = plan.loc[rows, "cell"].map(sections).fillna(plan.loc[rows, "section"])
    # the rehearsal's part of each row's provenance stays; the part that says how seconds are estimated is today's
    estimate = "; seconds are ESTIMATES" + provenance().split("; seconds are ESTIMATES", 1)[1]
    plan["provenance"] = plan["provenance"].str.split("; seconds are ESTIMATES").str[0] + estimate
    plan.loc[(plan["event"] == "fold") & (plan["runtime"] == "gpu"), "basis"] = plan.loc[
        (plan["event"] == "fold") & (plan["runtime"] == "gpu"), "verdict"].map(
        lambda v: "H100 seconds: fixed cost × host factor or GPU work × T4 factors" + (
            "; fails at once (out of memory)" if v == "over" else ""))
    return plan


def header_line(row: dict) -> str:
    """A notebook's header line on its run time, from its plan totals: the minutes, and a link to how they are
    estimated (the basis is stated once, on the results page)."""
    where = "a free Colab T4" if row["runtime"] == "gpu" else "a free Colab CPU runtime"
    optional = (f"; the optional last section adds about {math.ceil(row['optional minutes'])}"
                if row.get("optional minutes", 0) > 0 else "")
    return (f"**Estimated run time on {where}:** about {math.ceil(row['minutes'])} minutes, download included"
            f"{optional} ([how it is estimated]({SOURCES_PAGE})).")


def table_cell(row: dict) -> str:
    """A notebook's run time in the README's series table."""
    where = "" if row["runtime"] == "gpu" else " (CPU runtime)"
    optional = f" (+ {math.ceil(row['optional minutes'])} optional)" if row.get("optional minutes", 0) > 0 else ""
    return f"≈ {math.ceil(row['minutes'])} min{optional}{where}, download included"


#: The line that opens an optional section (cells tagged "optional"), with the plan's minutes for it.
OPTIONAL = re.compile(r"^# \*\*This optional section on a free Colab T4:\*\* about \S+ minutes[^\n]*$", re.M)


def optional_line(row: dict) -> str:
    """The opening line of a notebook's optional section: its estimated T4 minutes, from the plan."""
    return (f"# **This optional section on a free Colab T4:** about {math.ceil(row['optional minutes'])} minutes "
            "(an estimate from the run plan, as in the header).")


HEADER = re.compile(r"^# \*\*Estimated run time on a free Colab [^\n]*?\*\*.*?(?=\n#\s*\n|\n\n)", re.M | re.S)
#: The blocks of README.md and the instructor guide that this tool writes: <!-- plan:NAME --> … <!-- /plan:NAME -->.
BLOCK = "<!-- plan:{name} -->\n{body}\n<!-- /plan:{name} -->"


def wrapped(text: str, width: int = 118, prefix: str = "# ") -> str:
    """`text` as commented lines of a py:percent markdown cell."""
    return "\n".join(prefix + line for line in textwrap.wrap(text, width - len(prefix), break_on_hyphens=False))


def schedule_rows(summary: pd.DataFrame) -> str:
    """The instructor guide's schedule table: each block's teaching and exercise minutes and the plan's run time."""
    minutes = {row["notebook"][:2]: math.ceil(row["minutes"]) for _, row in summary.iterrows()}
    blocks = [("0:00–0:10", "welcome, open Colab, select *T4 GPU*, *Run all* on notebook 01 (its section 4 starts the "
               "8.4 GB download)", 10, 0, None),
              ("0:10–0:45", "**01** fp32 baseline", 20, 15, "01"),
              ("0:45–1:15", "**02** fp16", 15, 15, "02"),
              ("1:15–1:25", "break (let notebook 03 run its loads)", 0, 0, None),
              ("1:25–2:00", "**03** Quanto int8/int4, torchao, save/reload", 20, 15, "03"),
              ("2:00–2:25", "**04** memory vs length, “will it fit?” (the sweep times one trunk pass per fold)", 15, 10,
               "04"),
              ("2:25–2:30", "wrap-up: the hardware table; **05**–**08** as homework or a second session", 5, 0, None)]
    lines = ["| time | block | teaching | hands-on | run time on a free T4 (plan) |", "|---|---|---|---|---|"]
    for time, block, teaching, hands_on, number in blocks:
        run = f"≈ {minutes[number]} min" if number else "—"
        lines.append(f"| {time} | {block} | {teaching or '—'} | {hands_on or '—'} | {run} |")
    workshop = sum(minutes[n] for n in ("01", "02", "03", "04"))
    later = ", ".join(f"{n} ≈ {minutes[n]} min" for n in ("05", "06", "07", "08"))
    lines.append("")
    lines.append(f"Run time of notebooks 01–04, each in a fresh runtime with its own download: {workshop} minutes of "
                 f"the 150 (the plan's estimates, figures/t4_plan.csv). Homework: {later} (08 on a CPU runtime).")
    return "\n".join(lines)


def plan_table(summary: pd.DataFrame) -> str:
    """The results page's table of each notebook's plan: what its Run all does and its estimated minutes."""
    lines = ["| notebook | planned as | checkpoint reads | folds (at the edge of memory) | download (min) | "
             "Run all (min, estimate) | optional section (min) |", "|---|---|---|---|---|---|---|"]
    for _, row in summary.iterrows():
        edge = f" ({row['folds at the edge']})" if row["folds at the edge"] else ""
        optional = f"{math.ceil(row['optional minutes'])}" if row.get("optional minutes", 0) > 0 else "—"
        lines.append(f"| {row['notebook']} | {row['planned as']} | {row['checkpoint reads']} | {row['folds']}{edge} | "
                     f"{row['download minutes']:.1f} | {math.ceil(row['minutes'])} | {optional} |")
    return "\n".join(lines)


def renderings(summary: pd.DataFrame) -> dict[Path, str]:
    """The text the plan's numbers give each notebook's script (its header), the README (its series table's times)
    and the instructor guide (its schedule block): {file: text}, whether or not it differs from the file today."""
    out = {}
    for _, row in summary.iterrows():
        script = ROOT / "notebooks" / f"{row['notebook']}.py"
        text = HEADER.sub(lambda _: wrapped(header_line(row)), script.read_text(), count=1)
        out[script] = OPTIONAL.sub(lambda _, row=row: optional_line(row), text)
    readme = ROOT / "README.md"
    text = readme.read_text()
    for _, row in summary.iterrows():
        number = row["notebook"][:2]
        text = re.sub(rf"^(\| {number} \| [^|]+ \| [^|]+ \| )[^|]+( \|)",
                      lambda m, row=row: m.group(1) + table_cell(row) + m.group(2), text, count=1, flags=re.M)
    out[readme] = text
    results = ROOT / "docs" / "results.md"
    out[results] = re.sub(r"<!-- plan:totals -->.*?<!-- /plan:totals -->",
                          lambda _: BLOCK.format(name="totals", body=plan_table(summary)), results.read_text(),
                          flags=re.S)
    guide = ROOT / "notebooks" / "INSTRUCTOR_GUIDE.md"
    out[guide] = re.sub(r"<!-- plan:schedule -->.*?<!-- /plan:schedule -->",
                        lambda _: BLOCK.format(name="schedule", body=schedule_rows(summary)), guide.read_text(),
                        flags=re.S)
    return out


def render(summary: pd.DataFrame) -> list[Path]:
    """Write `renderings` where they differ (a notebook's .ipynb follows its .py); return the files changed."""
    changed = []
    for path, text in renderings(summary).items():
        if path.read_text() == text:
            continue
        path.write_text(text)
        changed.append(path)
        if path.suffix == ".py":  # jupytext's sync rewrites the .ipynb from the newer .py, keeping outputs and ids
            subprocess.run([sys.executable, "-m", "jupytext", "--quiet", "--sync", str(path)], check=True)
            changed.append(path.with_suffix(".ipynb"))
    return changed


#: The columns that say what a notebook does (not how long this machine took to rehearse it).
WHAT = ["notebook", "CPU class", "cell", "event", "recipe", "length", "batch", "chunk size", "lean", "trunk passes", "verdict",
        "prepared for out-of-memory", "out of memory", "checkpoint reads", "solution", "optional"]


def what_it_does(plan: pd.DataFrame) -> pd.DataFrame:
    """The plan's rows of loads, reads and folds, in the columns that a change of a notebook changes."""
    def plain(value) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return ""
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)

    rows = plan[plan["event"].isin(["load", "read saved checkpoint", "fold"])].reset_index(drop=True)
    return rows.reindex(columns=WHAT).map(plain)


def main(argv: list[str]) -> int:
    render_only = "--render" in argv
    names = [a for a in argv if not a.startswith("--")]
    if "--reprice" in argv:
        render_only = True
        reprice(pd.read_csv(PLAN_CSV)).to_csv(PLAN_CSV, index=False)
        print(f"repriced {PLAN_CSV}")
    if not render_only:
        h100_model = _per_pass_curves()
        rows = []
        for path in series(names):
            with tempfile.TemporaryDirectory(prefix="rehearsal-") as log_dir:
                print(f"rehearsing {path.name} …", flush=True)
                rows += rehearse_rows(path, Path(log_dir), h100_model)
        plan = pd.DataFrame(rows).assign(provenance=provenance())  # rows of notebooks not rehearsed keep theirs
        if names and PLAN_CSV.exists():
            kept = reprice(pd.read_csv(PLAN_CSV), h100_model)
            plan = pd.concat([kept[~kept["notebook"].str[:2].isin(names)], plan],  # each notebook's rows in their order
                             ignore_index=True).sort_values("notebook", kind="stable")
        plan.to_csv(PLAN_CSV, index=False)
        print(f"wrote {PLAN_CSV}")
    plan = pd.read_csv(PLAN_CSV)
    summary = totals(plan)
    notebooks_provenance = plan.groupby("notebook")["provenance"].first()
    summary.assign(provenance=summary["notebook"].map(notebooks_provenance)).to_csv(TOTALS_CSV, index=False)
    print(summary.round(1).to_string(index=False))
    for path in render(summary):
        print(f"updated {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
