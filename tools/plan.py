"""Maintainer tool: the T4 plan of the series — what each notebook's Run all does on a free Colab runtime, and how
long it should take there.

    python -m tools.plan           rehearse every notebook (the tiny stand-in on this CPU: minutes), then write
                                   figures/t4_plan.csv and the estimates it gives to the notebooks' headers, the
                                   README's series table and the instructor guide
    python -m tools.plan 03 07     rehearse only these notebooks (their rows are replaced, the others kept)
    python -m tools.plan --render  only rewrite the headers, README and guide from the committed plan

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

#: FP32 throughput, H100 SXM (67 TFLOPS) over a T4 (8.1 TFLOPS): the factor for the trunk's fp32 work (sources:
#: `time_model_rows`).
COMPUTE_FACTOR = 67 / 8.1
#: Memory bandwidth, H100 SXM (3,350 GB/s) over a T4 (320 GB/s): the factor for memory-bound steps — the language
#: model at these lengths, the structure module, the heads, quantizing.
MEMORY_FACTOR = 3350 / 320
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

#: Where the time model's numbers come from.
H100_SPECS = "https://archive-lib.hpctech.co.jp/gpuproduct/nvidia-h100.html"
T4_FP32 = "https://github.com/pytorch/pytorch/issues/49741"
T4_BANDWIDTH = "https://sysrqmts.com/en/gpus/nvidia/tesla/t4"
COLAB_DOWNLOADS = "https://github.com/turboderp-org/exllamav2/issues/761"
#: The results page's section that lists them (the notebooks' run-time headers link to it).
SOURCES_PAGE = "../docs/results.md#how-the-t4-run-times-are-estimated"


def time_model_rows() -> list[tuple[str, str, str]]:
    """(term, value, where it comes from) of the time model behind every T4 run time of the series."""
    return [
        ("trunk compute, T4 ÷ H100", f"× {COMPUTE_FACTOR:.1f}",
         f"fp32 throughput: H100 SXM 67 TFLOPS ([datasheet]({H100_SPECS})), T4 8.1 TFLOPS ([NVIDIA's figure, quoted]"
         f"({T4_FP32}))"),
        ("memory-bound steps, T4 ÷ H100", f"× {MEMORY_FACTOR:.1f}",
         f"memory bandwidth: H100 SXM 3,350 GB/s ([datasheet]({H100_SPECS})), T4 320 GB/s ([specifications]"
         f"({T4_BANDWIDTH}))"),
        ("the 8.4 GB download", f"{DOWNLOAD_MB_S} MB/s",
         f"below the {REPORTED_DOWNLOAD_MB_S[0]}–{REPORTED_DOWNLOAD_MB_S[1]} MB/s [reported on Colab]"
         f"({COLAB_DOWNLOADS})"),
        ("reading the cached checkpoint", f"{DISK_MB_S} MB/s", "assumed: Colab does not publish its disks' speed"),
        ("the setup cell's installs", f"{SETUP_S} s", "assumed"),
        ("copies of the language model over PCIe", f"{PCIE_GB_S:g} GB/s",
         "assumed: pageable memory over a T4's PCIe 3.0 × 16 (about 16 GB/s at best)"),
        ("fold times", "measured", "an H100 under a T4's memory cap (`make gpu-check`, figures/09_*.csv), per "
                                   "trunk pass, by length"),
    ]


def _h100_rows() -> pd.DataFrame:
    """The H100's measured folds and loads (figures/09_gpu_check, 09_gpu_recheck, 09_gpu_limits), ok rows only."""
    frames = [pd.read_csv(ROOT / "figures" / name) for name in ("09_gpu_check.csv", "09_gpu_recheck.csv",
                                                                "09_gpu_limits.csv")]
    rows = pd.concat(frames, ignore_index=True)
    return rows[rows["status"] == "ok"]


def _per_pass_curves() -> dict:
    """Seconds per trunk pass on the H100 against length, for the original trunk (chunked or not: the measured points
    lie on one curve) and for the lean trunk, as an fp32 trunk takes them; each quantized trunk's extra seconds per
    pass; and the seconds outside the passes — all from the measured folds."""
    rows = _h100_rows()
    folds = rows[rows["step"] == "fold"].copy()
    folds["passes"] = folds["trunk passes"].astype(float)
    folds["length"] = folds["length"].astype(int)
    folds["lean"] = folds["lean trunk"].astype(str) == "True"
    # Outside the passes (language model, structure module, heads, launch): where the same fold ran with 1 and 4
    # passes, the difference is 3 passes.
    outside = []
    for _, part in folds.groupby(["recipe", "length", "lean"]):
        by = part.groupby("passes")["seconds"].median()
        if len(by) > 1:
            per_pass = (by.iloc[-1] - by.iloc[0]) / (by.index[-1] - by.index[0])
            outside.append(max(0.0, by.iloc[0] - by.index[0] * per_pass))
    base = float(pd.Series(outside).median()) if outside else 0.1
    folds["per pass"] = (folds["seconds"] - base) / folds["passes"]
    # A quantized trunk dequantizes every weight in every block: its extra seconds per pass, over fp16's, at short
    # lengths (where the pair work is negligible).
    short = folds[(folds["length"] <= 128) & ~folds["lean"]].groupby("recipe")["per pass"].median()
    extra = {recipe: max(0.0, float(short[recipe]) - float(short["fp16"])) for recipe in short.index}
    folds["fp32 trunk"] = folds["per pass"] - folds["recipe"].map(lambda r: extra.get(_quantized_like(r), 0.0))
    curves = {name: sorted(part.groupby("length")["fp32 trunk"].median().items())
              for name, part in folds.groupby(folds["lean"].map({True: "lean", False: "original"}))}
    return {"base": base, "curves": curves, "extra": extra}


def _interpolate(points: list[tuple[int, float]], length: int) -> float:
    """Power law between the measured points around `length`; the shortest point's value below them (launch-bound);
    L³ growth beyond the longest."""
    points = sorted(points)
    if length <= points[0][0]:
        return points[0][1]
    if length >= points[-1][0]:
        return points[-1][1] * (length / points[-1][0]) ** 3
    for (l0, t0), (l1, t1) in zip(points, points[1:]):
        if l0 <= length <= l1:
            exponent = math.log(t1 / t0) / math.log(l1 / l0) if t0 > 0 and t1 > 0 else 1.0
            return t0 * (length / l0) ** exponent
    raise AssertionError("unreachable")


def _quantized_like(recipe: str | None) -> str:
    """The measured recipe whose per-pass extra a recipe is given (its trunk's weights are stored the same way)."""
    spec = recipes.RECIPES.get(recipe or "fp16")
    if spec is None or not spec.quantized or spec.lm_only:
        return "fp16"
    return "int4" if spec.quanto == "int4" else "int8"


def gpu_fold_seconds(row: dict, model: dict) -> tuple[float, float]:
    """(H100 seconds, T4 seconds) of one planned GPU fold."""
    lean = bool(row.get("lean"))
    curve = model["curves"]["lean" if lean else "original"]
    if lean and row["length"] < curve[0][0]:  # below the lean trunk's measured lengths: as the original trunk
        curve = model["curves"]["original"]
    per_pass = _interpolate(curve, int(row["length"])) + model["extra"].get(_quantized_like(row.get("recipe")), 0.0)
    passes = int(row["trunk passes"]) * int(row.get("batch") or 1)
    base = model["base"] * int(row.get("batch") or 1)
    h100 = base + passes * per_pass
    t4 = base * MEMORY_FACTOR + passes * per_pass * COMPUTE_FACTOR
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


def cpu_fold_seconds(row: dict) -> float:
    """Seconds of one fold on a Colab CPU runtime, planned as cpu.COLAB_CPU_CLASS: the measured fold of the CPU recipe
    (figures/08_cpu_classes.csv; the benchmark's where the class lacks the recipe), per trunk pass, by length."""
    classes = pd.read_csv(ROOT / "figures" / "08_cpu_classes.csv")
    recipe = cpu_recipe_name(row)
    part = classes[(classes["CPU class"] == cpu.COLAB_CPU_CLASS) & (classes["recipe"] == recipe)]
    if part.empty:
        part = classes[(classes["CPU class"] == cpu.COLAB_CPU_CLASS) & (classes["recipe"] == cpu.FP32_ARITHMETIC_RECIPE)]
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


def rehearse(path: Path, log_dir: Path, timeout: int = 1800) -> Path:
    """Execute one notebook with the tiny stand-in, its rehearsal writing into `log_dir`; return the log folder."""
    os.environ[models.WEIGHTS_ENV] = "tiny"
    os.environ[rehearsal.LOG_ENV] = str(log_dir)
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return log_dir


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


def plan_rows(path: Path, events: list[dict], h100_model: dict | None = None) -> list[dict]:
    """The plan rows of one notebook: the download, then every read, load and fold, then the notebook's CPU work —
    each with its estimated seconds on a free Colab runtime."""
    h100_model = h100_model or _per_pass_curves()
    notebook = path.stem
    runtime = next((e.get("runtime") for e in events if e.get("event") == "start"), "gpu")
    rows = [{"notebook": notebook, "runtime": runtime, "cell": 0, "section": "Setup", "solution": False,
             "optional": False, "event": "setup and download", "checkpoint reads": 0,
             "estimated seconds": SETUP_S + CHECKPOINT_BYTES / (DOWNLOAD_MB_S * 1e6),
             "basis": f"installs (assumed {SETUP_S} s) + {CHECKPOINT_BYTES / 1e9:.2f} GB at {DOWNLOAD_MB_S} MB/s"}]
    spent: dict[int, float] = {}
    for e in events:
        kind = e["event"]
        common = {"notebook": notebook, "runtime": runtime, "cell": e["cell"], "section": e["section"],
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
                            "basis": "H100 per-pass seconds × T4 factors" + (
                                "; fails at once (out of memory)" if e.get("verdict") == "over" else "")})
            else:
                row.update({"verdict": "fits", "recipe": cpu_recipe_name(row),
                            "estimated seconds": cpu_fold_seconds(row),
                            "basis": f"measured per CPU class ({cpu.COLAB_CPU_CLASS}), figures/08_cpu_classes.csv"})
            rows.append(row)
    for e in events:  # what the cells spent outside loads and folds: the notebook's own CPU work, measured here
        if e["event"] == "cell":
            work = float(e["seconds"]) - spent.get(e["cell"], 0.0)
            if work >= 1.0:
                rows.append({"notebook": notebook, "runtime": runtime, "cell": e["cell"], "section": e["section"],
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
            f"{COMPUTE_FACTOR:.1f} compute / {MEMORY_FACTOR:.1f} memory, download {DOWNLOAD_MB_S} MB/s, disk "
            f"{DISK_MB_S} MB/s); no T4 was measured")


# --- what the plan says --------------------------------------------------------------------------------------------

def load_plan() -> pd.DataFrame:
    """The committed plan."""
    return pd.read_csv(PLAN_CSV)


def totals(plan: pd.DataFrame) -> pd.DataFrame:
    """Per notebook: checkpoint reads, loads, folds (and how many are predicted not to fit), estimated minutes — of a
    Run all with the optional section off (cells tagged "optional" run only when the reader switches them on), and
    the minutes that section adds."""
    out = []
    for name, whole in plan.groupby("notebook", sort=True):
        optional = whole.get("optional", pd.Series(False, index=whole.index)).astype(str) == "True"
        part = whole[~optional]
        folds = part[part["event"] == "fold"]
        out.append({"notebook": name, "runtime": part["runtime"].iloc[0],
                    "checkpoint reads": int(part["checkpoint reads"].sum()),
                    "loads": int((part["event"] == "load").sum()), "folds": len(folds),
                    "folds at the edge": int(folds["verdict"].isin(["over", "borderline"]).sum()),
                    "minutes": part["estimated seconds"].sum() / 60,
                    "download minutes": part.loc[part["event"] == "setup and download", "estimated seconds"].sum() / 60,
                    "optional minutes": whole.loc[optional, "estimated seconds"].sum() / 60})
    return pd.DataFrame(out)


def header_line(row: dict) -> str:
    """A notebook's header sentence on its run time, from its plan totals."""
    gpu_runtime = row["runtime"] == "gpu"
    where = "a free Colab T4" if gpu_runtime else "a free Colab CPU runtime (choose *CPU* as the runtime type)"
    edge = row["folds at the edge"]
    oom = (f", {edge} of them at the edge of memory on purpose (they may run out; the notebook catches it)"
           if edge else "")
    rates = (f"checkpoint reads at {DISK_MB_S} MB/s (assumed), the download at {DOWNLOAD_MB_S} MB/s (below the "
             f"{REPORTED_DOWNLOAD_MB_S[0]}–{REPORTED_DOWNLOAD_MB_S[1]} MB/s reported on Colab) — [sources]"
             f"({SOURCES_PAGE})")
    basis = (f"fold times measured on an H100, × {COMPUTE_FACTOR:.1f} for the trunk's compute and × "
             f"{MEMORY_FACTOR:.1f} for memory-bound steps (the ratios of the two GPUs' published fp32 throughput "
             f"and memory bandwidth), {rates}; not measured on a T4"
             if gpu_runtime else
             f"fold times measured per CPU class, planned as the slowest, {cpu.COLAB_CPU_CLASS}; {rates}")
    optional = (f" The optional last section, off by default, adds about {math.ceil(row['optional minutes'])} "
                f"minutes." if row.get("optional minutes", 0) > 0 else "")
    return (f"**Estimated run time on {where}:** about {math.ceil(row['minutes'])} minutes, a fresh runtime's setup "
            f"and 8.4 GB download included ({row['download minutes']:.1f} min); {row['checkpoint reads']} checkpoint "
            f"read{'s' if row['checkpoint reads'] != 1 else ''}, {row['folds']} folds{oom} — *an estimate from the "
            f"series' run plan (figures/t4_plan.csv), not a measurement: {basis}*.{optional}")


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
WHAT = ["notebook", "cell", "event", "recipe", "length", "batch", "chunk size", "lean", "trunk passes", "verdict",
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
    if not render_only:
        h100_model = _per_pass_curves()
        rows = []
        for path in series(names):
            with tempfile.TemporaryDirectory(prefix="rehearsal-") as log_dir:
                print(f"rehearsing {path.name} …", flush=True)
                rehearse(path, Path(log_dir))
                rows += plan_rows(path, events_of(path, Path(log_dir)), h100_model)
        plan = pd.DataFrame(rows).assign(provenance=provenance())  # rows of notebooks not rehearsed keep theirs
        if names and PLAN_CSV.exists():
            kept = pd.read_csv(PLAN_CSV)
            plan = pd.concat([kept[~kept["notebook"].str[:2].isin(names)], plan.drop(columns=[], errors="ignore")],
                             ignore_index=True).sort_values(["notebook", "cell"], kind="stable")
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
