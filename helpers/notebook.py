"""Notebook plumbing: the start-of-notebook checks, the stand-in banner and labels, provenance, the Drive cache."""

from __future__ import annotations

import datetime as _dt
import os
import re
import sys
import warnings
from pathlib import Path

from helpers import data, models

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


def quiet_libraries() -> None:
    """Silence messages that concern the libraries, not the reader's code, so that red text in a notebook means
    something: torchao's optional kernels that this machine cannot load, torch's pytree deprecation notices,
    tqdm's missing-widget notice, and transformers' per-load "Loading weights" progress bars."""
    import logging

    import transformers

    for name in ("torchao", "torch.utils._pytree"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message="IProgress not found")
    warnings.filterwarnings("ignore", message=".*device_map keys do not match any submodules.*")
    transformers.utils.logging.disable_progress_bar()


def start(needs_gpu: bool = True) -> str:
    """Run at the top of every notebook: version check, stand-in banner, GPU check, memory cap, quiet libraries;
    return the device."""
    from IPython.display import HTML, display

    quiet_libraries()
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
