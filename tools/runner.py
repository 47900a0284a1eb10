"""Execute the notebook series top to bottom and report pass/fail, time and peak memory per notebook.

`python -m tools.runner [NOTEBOOK ...]` — the tutorial's main job (`make tutorial`) and the instructors'
day-before check (with ESMFOLD_WEIGHTS=random-full and ESMFOLD_MEMORY_CAP_GIB=T4 on a GPU machine).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from helpers import data, models

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
    import nbformat
    from nbclient import NotebookClient

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


def main(argv: list[str]) -> int:
    """Run the given notebooks (default: the whole series); exit non-zero if any fails."""
    import torch

    source = models.weights_source()
    paths = [Path(a).resolve() for a in argv] or series()
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
    rows = []
    for path in paths:
        row = run_notebook(path, out_dir)
        rows.append(row)
        peak = row.get("GPU peak reserved (GiB)")
        print(f"{row['status']:>7}  {row['notebook']:<34} {row['seconds']:>7.1f} s"
              + (f"  GPU peak {peak:.2f} GiB" if peak is not None else "")
              + (f"  — {row['error']}" if row["error"] else ""), flush=True)
    failed = sum(row["status"] != "passed" for row in rows)
    print(f"{len(rows) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
