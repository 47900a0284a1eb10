"""Maintainer tool: the outputs a GitHub reader sees in the committed notebooks.

    python -m tools.outputs            refresh every notebook's kept outputs (runs the series with the tiny stand-in)
    python -m tools.outputs 01 05      only these notebooks

Only cells tagged `show-output` keep their outputs: cells whose results need no weights — counts and arithmetic from
the real architecture, the predictor, committed tables and figures, metrics on experimental structures. Every other
output is cleared, so no stand-in fold, no py3Dmol view and no widget is ever committed; `check` says what breaks
that rule (a test runs it on the committed notebooks).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

TAG = "show-output"
#: Output types that must never be committed: interactive views and widgets (they do not render on GitHub).
FORBIDDEN_MIME = ("application/3dmoljs_load.v0", "application/vnd.jupyter.widget-view+json")
#: Text that marks a stand-in's results.
STAND_IN_MARKS = ("STAND-IN", "random weights", "stand-in")


def notebooks(names: list[str] | None = None) -> list[Path]:
    folder = Path(__file__).resolve().parent.parent / "notebooks"
    paths = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    return [p for p in paths if not names or p.name[:2] in names]


def output_text(output) -> str:
    """The text of one output (a stream, or the text forms of a display)."""
    if output.get("output_type") == "stream":
        return output.get("text", "")
    return "".join(str(v) for k, v in sorted(output.get("data", {}).items()) if k.startswith("text/"))


def check(nb) -> list[str]:
    """What breaks the rule in a notebook: outputs outside tagged cells, forbidden output types, stand-in marks, a
    tagged cell without output."""
    problems = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        tagged = TAG in cell.get("metadata", {}).get("tags", [])
        if cell.get("outputs") and not tagged:
            problems.append(f"cell {i}: outputs in a cell not tagged {TAG}")
        if tagged and not cell.get("outputs"):
            problems.append(f"cell {i}: tagged {TAG} but has no output")
        for output in cell.get("outputs", []):
            if any(m in output.get("data", {}) for m in FORBIDDEN_MIME):
                problems.append(f"cell {i}: an interactive view or widget")
            if output.get("name") == "stderr":
                problems.append(f"cell {i}: stderr")
            if any(mark in output_text(output) for mark in STAND_IN_MARKS):
                problems.append(f"cell {i}: a stand-in's output")
    return problems


def refresh(path: Path) -> list[str]:
    """Execute one notebook with the tiny stand-in and keep only the tagged cells' outputs; return `check`'s verdict."""
    import nbformat
    from nbclient import NotebookClient

    os.environ.setdefault("ESMFOLD_WEIGHTS", "tiny")
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=1800, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    nb.metadata.pop("language_info", None)  # written by the kernel; the committed notebooks do not carry it
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.execution_count = None
            if TAG not in cell.get("metadata", {}).get("tags", []):
                cell.outputs = []
            for output in cell.get("outputs", []):
                if "execution_count" in output:
                    output["execution_count"] = None
    nbformat.write(nb, path)
    return check(nb)


if __name__ == "__main__":
    failed = False
    for notebook_path in notebooks(sys.argv[1:]):
        verdict = refresh(notebook_path)
        print(f"{notebook_path.name}: {'ok' if not verdict else '; '.join(verdict)}", flush=True)
        failed |= bool(verdict)
    sys.exit(1 if failed else 0)
