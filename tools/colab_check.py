"""The series under Google Colab's versions, and what each notebook's setup cell must install.

    make test-colab      (a Python 3.13 virtual environment with Colab's torch, transformers and accelerate)

Runs every notebook with the tiny stand-in, recording which modules its kernel imported; the packages Colab lacks
that a notebook imported must be exactly the ones its setup cell's NEEDS installs (torchao may also come from Colab
itself, so the setup cell installs it only where it is missing).
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import sys
import tempfile
from pathlib import Path

#: The packages the notebooks use that Colab (2026-08) does not preinstall: import name → distribution.
NOT_IN_COLAB = {"py3Dmol": "py3Dmol", "optimum": "optimum-quanto", "biotite": "biotite", "torchao": "torchao"}
#: Installed by a setup cell for a path the tiny run does not take (notebook 04 with FULL = True uses torchao).
PARAMETER_PATHS = {"04": {"torchao"}}
ROOT = Path(__file__).resolve().parent.parent


def needs(path: Path) -> set[str]:
    """The distributions a notebook's setup cell installs (its NEEDS list and the conditional torchao)."""
    text = path.with_suffix(".py").read_text()
    listed = re.search(r"^NEEDS = \[(.*?)\]", text, re.M).group(1)
    names = {re.split(r"[=<>]", item.strip().strip('"'))[0] for item in listed.split(",") if item.strip()}
    if 'NEEDS.append("torchao' in text:
        names.add("torchao")
    return names


def imported(path: Path) -> set[str]:
    """The not-in-Colab distributions a run of the notebook (tiny stand-in) imported."""
    import nbformat
    from nbclient import NotebookClient

    record = Path(tempfile.mkstemp(suffix=".txt")[1])
    env_before = dict(os.environ)
    os.environ.update(ESMFOLD_WEIGHTS="tiny", ESMFOLD_IMPORTS_OUT=str(record),
                      PYTHONPATH=os.pathsep.join([str(ROOT / "tools" / "import_record"), os.environ.get("PYTHONPATH", "")]))
    try:
        nb = nbformat.read(path, as_version=4)
        NotebookClient(nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(env_before)
    lines = record.read_text().splitlines()
    modules = {line for line in lines if " " not in line}
    used = {dist for name, dist in NOT_IN_COLAB.items() if name in modules}
    # transformers imports torchao by itself wherever it is installed: it counts only when the notebook's own cells
    # (__main__) or the helpers asked for it
    askers = [line.split(" by ", 1)[1] for line in lines if line.startswith("torchao asked by ")]
    if not any(a == "__main__" or a.startswith("helpers") for a in askers):
        used.discard("torchao")
    return used


def main() -> int:
    import torch
    import transformers

    print(f"Python {sys.version.split()[0]}, torch {torch.__version__}, transformers {transformers.__version__}, "
          f"accelerate {importlib.metadata.version('accelerate')}", flush=True)
    failed = 0
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        try:
            used = imported(path)
        except Exception as err:  # noqa: BLE001 — report every notebook
            print(f"FAILED  {path.name}: {type(err).__name__}: {str(err).splitlines()[-1][:200]}", flush=True)
            failed += 1
            continue
        installed = needs(path)
        missing = used - installed
        extra = installed - used - PARAMETER_PATHS.get(path.name[:2], set())
        status = "ok" if not missing and not extra else "MISMATCH"
        failed += status != "ok"
        print(f"{status:>8}  {path.name}: imports {sorted(used)}; setup installs {sorted(installed)}"
              + (f"; missing {sorted(missing)}" if missing else "") + (f"; not needed {sorted(extra)}" if extra else ""),
              flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
