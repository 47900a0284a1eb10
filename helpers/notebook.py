"""Notebook plumbing: the start-of-notebook checks, the stand-in banner, provenance, and the repository URL stamp."""

from __future__ import annotations

import datetime as _dt
import os
import re
import sys
import warnings
from pathlib import Path

from helpers import data, models

#: The one place that names the published repository (badges and Colab setup cells are stamped from it).
REPO = "OWNER/gpu-poor-esmfold"
#: The git ref (tag or commit) that Colab setup cells install the helpers from.
REF = "v0.1.0"
#: Versions this series was tested with (CI) and the oldest it is meant to accept (Colab's image, 2026-08).
TESTED = {"torch": ("2.11", "2.13"), "transformers": ("5.15", "5.23")}
#: Set to a number of GiB to cap this process's GPU memory (e.g. 14.56 to emulate a free Colab T4 on a big GPU).
MEMORY_CAP_ENV = "ESMFOLD_MEMORY_CAP_GIB"

_STAND_IN_TEXT = {
    "tiny": "a TINY random-weight model (a few hundred thousand parameters) — for tests only: memory, time, "
    "structures and pLDDT are all meaningless",
    "random-full": "the FULL-SIZE esmfold_v1 architecture with RANDOM weights — memory and time are real, "
    "but structures, pLDDT and pTM are meaningless",
}


def _major_minor(version: str) -> tuple[int, int]:
    match = re.match(r"(\d+)\.(\d+)", version)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def check_versions() -> list[str]:
    """Warn (never fail) when torch or transformers lie outside the tested range; return the warnings."""
    import torch
    import transformers

    found = {"torch": torch.__version__, "transformers": transformers.__version__}
    messages = []
    for name, (low, high) in TESTED.items():
        version = _major_minor(found[name])
        if not _major_minor(low) <= version <= _major_minor(high):
            messages.append(
                f"{name} {found[name]} is outside the range this series was tested with ({low}–{high}); "
                "it will probably work, but if a cell fails, this is the first thing to check."
            )
    for message in messages:
        warnings.warn(message, stacklevel=2)
    return messages


def stand_in_banner(source: str | None = None) -> str | None:
    """HTML banner saying loudly that a stand-in model is in use, or None for real weights."""
    source = models.weights_source(source)
    if source not in models.STAND_INS:
        return None
    return (
        '<div style="border:3px solid #c00;background:#fee;padding:10px;font-size:15px;color:#600">'
        f"<b>⚠ STAND-IN MODEL ({source})</b>: this run uses {_STAND_IN_TEXT[source]}. "
        f"Unset <code>{models.WEIGHTS_ENV}</code> to use the real <code>{models.REAL_MODEL_ID}</code>.</div>"
    )


def label(title: str, source: str | None = None) -> str:
    """`title`, marked " — STAND-IN (random weights)" when a stand-in model is in use: for every table and figure
    made from a fold."""
    return title + (" — STAND-IN (random weights)" if models.is_stand_in(source) else "")


def apply_memory_cap() -> float | None:
    """Cap this process's CUDA memory at `$ESMFOLD_MEMORY_CAP_GIB` (T4 emulation); return the cap or None."""
    import torch

    cap = os.environ.get(MEMORY_CAP_ENV)
    if not cap or not torch.cuda.is_available():
        return None
    total = torch.cuda.get_device_properties(0).total_memory / 1024**3
    torch.cuda.set_per_process_memory_fraction(min(1.0, float(cap) / total))
    return float(cap)


def start(needs_gpu: bool = True) -> str:
    """Run at the top of every notebook: version check, stand-in banner, GPU check, memory cap; return the device."""
    from IPython.display import HTML, display

    check_versions()
    banner = stand_in_banner()
    if banner:
        display(HTML(banner))
        print(f"STAND-IN MODEL: {models.weights_source()} — results below are not real ESMFold results.")
    device = models.require_gpu(device=None) if needs_gpu else models.default_device()
    cap = apply_memory_cap()
    print(f"device: {device_name(device)}" + (f" (capped at {cap} GiB)" if cap else ""))
    print(f"weights: {models.weights_source()}")
    return device


def device_name(device: str) -> str:
    """Human name of the device: the GPU's model, or the CPU's."""
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "CPU"


def provenance(device: str, source: str | None = None) -> dict:
    """Who/what/when of a measurement: device, versions, date, and which weights (real or random)."""
    import torch
    import transformers

    source = models.weights_source(source)
    return {
        "device": device_name(device),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "date": _dt.date.today().isoformat(),
        "weights": source,
        "weights kind": "random (memory/time only)" if source in models.STAND_INS else "real",
    }


def provenance_line(device: str, source: str | None = None) -> str:
    """One-line provenance for figure footers."""
    p = provenance(device, source)
    return (
        f"{p['device']} · torch {p['torch']} · transformers {p['transformers']} · {p['date']} · "
        f"weights: {p['weights']} ({p['weights kind']})"
    )


# --- repository URL stamping -------------------------------------------------------------------------------

_BADGE = re.compile(r"https://colab\.research\.google\.com/github/([^/\s\"')]+/[^/\s\"')]+)/blob/([^/\s\"')]+)/")
# Setup-cell lines, in a .py file (REPO = "…") or inside a notebook's JSON (REPO = \"…\").
_SETUP_REPO = re.compile(r'(REPO = )(\\?")https://github\.com/([^"\\]+)(\\?")')
_SETUP_REF = re.compile(r'(REF = )(\\?")([^"\\]+)(\\?")')
_RAW = re.compile(r"https://raw\.githubusercontent\.com/([^/\s\"')]+/[^/\s\"')]+)/([^/\s\"')]+)/")


def stamped_files() -> list[Path]:
    """Files that carry the repository URL: every notebook (both halves of each pair) and the README."""
    root = data.repo_root()
    return sorted((root / "notebooks").glob("[0-9]*.ipynb")) + sorted((root / "notebooks").glob("[0-9]*.py")) + [
        root / "README.md"
    ]


def repo_references(text: str) -> set[tuple[str, str]]:
    """Every (repo, ref) a text points at through a Colab badge, a raw figure URL or a setup cell."""
    refs = {(m.group(1), m.group(2)) for m in _BADGE.finditer(text)}
    refs |= {(m.group(1), m.group(2)) for m in _RAW.finditer(text)}
    repos = [m.group(3) for m in _SETUP_REPO.finditer(text)]
    setup_refs = [m.group(3) for m in _SETUP_REF.finditer(text)]
    refs |= {(repo, ref) for repo, ref in zip(repos, setup_refs)}
    return refs


def stamp(repo: str, ref: str = "main", files: list[Path] | None = None) -> list[Path]:
    """Rewrite badges, raw figure URLs and setup cells to `repo`@`ref` (and record them here); return changed files."""
    changed = []
    this_module = Path(__file__).resolve()
    for path in stamped_files() + [this_module] if files is None else files:
        text = path.read_text()
        if Path(path).resolve() == this_module or Path(path).name == this_module.name:
            # only the two constants: the patterns below would also match this module's own code
            new = re.sub(r'^REPO = "[^"]*"', f'REPO = "{repo}"', text, flags=re.M)
            new = re.sub(r'^REF = "[^"]*"', f'REF = "{ref}"', new, flags=re.M)
        else:
            new = _BADGE.sub(f"https://colab.research.google.com/github/{repo}/blob/{ref}/", text)
            new = _RAW.sub(f"https://raw.githubusercontent.com/{repo}/{ref}/", new)
            new = _SETUP_REPO.sub(lambda m: f"{m.group(1)}{m.group(2)}https://github.com/{repo}{m.group(4)}", new)
            new = _SETUP_REF.sub(lambda m: f"{m.group(1)}{m.group(2)}{ref}{m.group(4)}", new)
        if new != text:
            path.write_text(new)
            changed.append(path)
    return changed


def student_copies(out_dir: Path | None = None) -> list[Path]:
    """Write each notebook without its solution cells (tag `solution`) into notebooks/_student/; return the paths."""
    import nbformat

    out_dir = out_dir or data.repo_root() / "notebooks" / "_student"
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted((data.repo_root() / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        nb.cells = [c for c in nb.cells if "solution" not in c.get("metadata", {}).get("tags", [])]
        nbformat.write(nb, out_dir / path.name)
        written.append(out_dir / path.name)
    return written


def use_drive_cache(folder: str = "/content/drive/MyDrive/hf-cache") -> str:
    """In Colab: mount Google Drive and keep the Hugging Face cache there, so the 8.4 GB download happens once.

    Call it before anything loads a model (transformers reads HF_HOME when it is first imported).
    """
    if "transformers" in sys.modules:
        warnings.warn("transformers is already imported: restart the runtime and call use_drive_cache() first")
    if "google.colab" in sys.modules:
        from google.colab import drive

        drive.mount("/content/drive")
    os.environ["HF_HOME"] = folder
    return folder


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "student":
        for written_path in student_copies():
            print("wrote", written_path)
    elif len(sys.argv) in (3, 4) and sys.argv[1] == "stamp":
        for changed_path in stamp(*sys.argv[2:]):
            print("stamped", changed_path)
    else:
        sys.exit("usage: python -m helpers.notebook stamp OWNER/REPO [REF]  |  python -m helpers.notebook student")
