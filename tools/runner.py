"""Execute the notebook series top to bottom and report pass/fail, time and peak memory per notebook.

`python -m tools.runner [NOTEBOOK ...]` — the tutorial's main job (`make tutorial`) and the instructors'
day-before check (`make day-before`: notebooks 01–04 with ESMFOLD_WEIGHTS=random-full and ESMFOLD_MEMORY_CAP_GIB=T4 on a
GPU machine; `make day-before NOTEBOOKS=all` for the whole series). Notebooks are named by path or number (`01`).

`python -m tools.runner --part K [--csv FILE]` runs part K of the series as the T4 plan splits it for a lent GPU
(`parts`: each part's notebooks estimated to take at most PART_SECONDS on an H100) and appends one row per notebook —
pass/fail, seconds, the GPU's peak as PyTorch and as nvidia-smi see it — to FILE (`make gpu-rehearsal PART=K`).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import torch
from nbclient import NotebookClient

from helpers import data, gpu, models, notebook
from tools import plan

_PEAK_CELL = (
    "import json as _j, torch as _t\n"
    "print('@@PEAK@@' + _j.dumps({'peak_reserved_gib': _t.cuda.max_memory_reserved() / 2**30 "
    "if _t.cuda.is_available() else None}))"
)


def series() -> list[Path]:
    """The numbered notebooks of the series, in order."""
    return sorted((data.repo_root() / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def runs_on_a_cpu(path: Path) -> bool:
    """True for a notebook written for the CPU (it starts with `notebook.start(needs_gpu=False)`: notebook 08)."""
    return "notebook.start(needs_gpu=False)" in path.read_text()


def run_notebook(path: Path, out_dir: Path, timeout: int = 3600) -> dict:
    """Execute one notebook into `out_dir`; return its status, seconds, GPU peak and the first error line."""
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(_PEAK_CELL))
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    start, row = time.perf_counter(), {"notebook": path.name, "status": "passed", "error": ""}
    try:
        client.execute()
    except Exception as err:  # noqa: BLE001 — report any failure and go on with the next notebook
        row["status"] = "FAILED"
        row["error"] = str(err).strip().splitlines()[-1][:200] if str(err).strip() else type(err).__name__
    row["seconds"] = round(time.perf_counter() - start, 1)
    for output in nb.cells[-1].get("outputs", []):
        text = output.get("text", "")
        if "@@PEAK@@" in text:
            peak = json.loads(text.split("@@PEAK@@", 1)[1].splitlines()[0])["peak_reserved_gib"]
            row["GPU peak reserved (GiB)"] = None if peak is None else round(peak, 2)
    nb.cells.pop()
    out_dir.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out_dir / path.name)
    return row


#: The most a part of the GPU rehearsal may take on one H100 (seconds): a lent GPU's call runs at most 10 minutes.
PART_SECONDS = 420
#: One-off costs of a part on the GPU machine: building the random-full stand-in (35–56 s in figures/09_*.csv).
PART_OVERHEAD_SECONDS = 60


def h100_seconds(totals_row) -> float:
    """A notebook's estimated seconds on an H100 from its T4 plan: its GPU work without the T4 factor, its loads from
    the page cache (the H100 loaded in 3–7 s), its CPU work as measured; no download."""
    rows = plan.load_plan()
    part = rows[rows["notebook"] == totals_row["notebook"]]
    if totals_row["runtime"] == "cpu":  # the CPU class the plan names, not every class it was rehearsed as
        part = part[part["CPU class"] == totals_row["planned as"]]
    folds = part.loc[part["event"] == "fold", "H100 seconds (model)"].fillna(0).sum()
    if totals_row["runtime"] == "cpu":  # notebook 08 folds on the CPU whatever the machine
        folds = part.loc[part["event"] == "fold", "estimated seconds"].sum()
    loads = 7.0 * int((part["event"] == "load").sum())
    work = part.loc[part["event"] == "CPU work", "estimated seconds"].sum()
    return float(folds + loads + work)


def parts(limit: float = PART_SECONDS) -> list[list[str]]:
    """The series in parts for a lent GPU, in order: consecutive notebooks whose H100 estimates add up to at most
    `limit` seconds with the part's overhead (a notebook longer than that is a part of its own)."""
    out, current, spent = [], [], PART_OVERHEAD_SECONDS
    for _, row in plan.totals(plan.load_plan()).iterrows():
        seconds = h100_seconds(row)
        if current and spent + seconds > limit:
            out.append(current)
            current, spent = [], PART_OVERHEAD_SECONDS
        current.append(row["notebook"])
        spent += seconds
    return out + ([current] if current else [])


class NvidiaSmiPeak:
    """The highest memory.used nvidia-smi reports while the block runs (GiB), sampled every half second; None where
    there is no nvidia-smi."""

    def __init__(self):
        self.peak, self._stop = None, threading.Event()

    def _sample(self):
        while not self._stop.is_set():
            try:
                out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                                     capture_output=True, text=True, timeout=5).stdout
                used = max(float(v) for v in out.split()) / 1024
                self.peak = used if self.peak is None else max(self.peak, used)
            except (OSError, ValueError, subprocess.SubprocessError):
                return
            self._stop.wait(0.5)

    def __enter__(self):
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def resolve(args: list[str]) -> list[Path]:
    """Notebooks named by path, by number (`01`), or `all`; none named: the whole series."""
    if not args or args == ["all"]:
        return series()
    numbered = {path.name[:2]: path for path in series()}
    return [numbered[a] if a in numbered else Path(a).resolve() for a in args]


def estimated_minutes(paths: list[Path]) -> float:
    """The H100 minutes of these notebooks by the T4 plan (`h100_seconds`), with each notebook's stand-in build."""
    totals = plan.totals(plan.load_plan()).set_index("notebook")
    names = [p.stem for p in paths if p.stem in totals.index]
    return sum(h100_seconds(totals.loc[n].to_dict() | {"notebook": n}) + PART_OVERHEAD_SECONDS for n in names) / 60


def main(argv: list[str]) -> int:
    """Run the given notebooks (paths, numbers or `all`; default: the whole series, or `--part K` of it); exit
    non-zero if any fails."""
    source = models.weights_source()
    csv_path = None
    if "--csv" in argv:
        i = argv.index("--csv")
        csv_path, argv = Path(argv[i + 1]), argv[:i] + argv[i + 2:]
    if "--part" in argv:
        i = argv.index("--part")
        names = parts()[int(argv[i + 1]) - 1]
        argv = argv[:i] + argv[i + 2:] + [str(data.repo_root() / "notebooks" / f"{n}.ipynb") for n in names]
    paths = resolve(argv)
    if not torch.cuda.is_available() and source not in models.STAND_INS:
        cpu_ready = [p for p in paths if runs_on_a_cpu(p)]
        skipped = [p.name for p in paths if p not in cpu_ready]
        print(
            "No CUDA GPU on this machine, so the GPU notebooks cannot run with the real ESMFold weights here"
            + (f" — skipped: {', '.join(skipped)}." if skipped else ".") + "\n"
            "  • On a GPU machine:  make tutorial\n"
            "  • Without a GPU, run them with the tiny stand-in (random weights, meaningless structures):\n"
            f"        {models.WEIGHTS_ENV}=tiny make tutorial\n"
            "  • In Colab: open a notebook from the README's table and pick a T4 GPU runtime."
        )
        if not cpu_ready:
            return 2
        print(f"Running what folds on a CPU: {', '.join(p.name for p in cpu_ready)}")
        paths = cpu_ready
    out_dir = data.repo_root() / "notebooks" / "_executed"
    print(f"weights: {source}; GPU: {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'}; "
          f"memory cap: {os.environ.get('ESMFOLD_MEMORY_CAP_GIB', 'none')} GiB; executed copies in {out_dir}")
    if torch.cuda.is_available():
        print(f"{len(paths)} notebooks: about {estimated_minutes(paths):.0f} min on an H100 (an estimate from the T4 "
              "plan's H100 times, figures/t4_plan.csv; a smaller GPU takes longer)", flush=True)
    rows = []
    for path in paths:
        with NvidiaSmiPeak() as smi:
            row = run_notebook(path, out_dir)
        row["nvidia-smi peak (GiB)"] = None if smi.peak is None else round(smi.peak, 2)
        rows.append(row)
        if csv_path is not None:
            _append(csv_path, row, source)
        peak = row.get("GPU peak reserved (GiB)")
        print(f"{row['status']:>7}  {row['notebook']:<34} {row['seconds']:>7.1f} s"
              + (f"  GPU peak {peak:.2f} GiB" if peak is not None else "")
              + (f"  — {row['error']}" if row["error"] else ""), flush=True)
    failed = sum(row["status"] != "passed" for row in rows)
    print(f"{len(rows) - failed} passed, {failed} failed")
    return 1 if failed else 0


def _append(path: Path, row: dict, source: str) -> None:
    """One notebook's row, with its provenance, appended to a CSV (written header first when new)."""
    p = notebook.provenance(models.default_device(), source)
    row = {**row, "device": p["device"], "memory cap (GiB)": os.environ.get(gpu.MEMORY_CAP_ENV, "none"),
           "torch": p["torch"], "transformers": p["transformers"], "weights": p["weights"], "date": p["date"]}
    fields = ["notebook", "status", "seconds", "GPU peak reserved (GiB)", "nvidia-smi peak (GiB)", "error", "device",
              "memory cap (GiB)", "torch", "transformers", "weights", "date"]
    new = not path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow(row)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
