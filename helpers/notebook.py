"""Notebook plumbing: the start-of-notebook checks, the stand-in banner and labels, provenance."""

from __future__ import annotations

import datetime as _dt
import gc
import re
import warnings

import torch
import transformers
from IPython.display import HTML, display

from helpers import colab, cpu, gpu, models, rehearsal

#: Versions this series was tested with (CI) and the oldest it is meant to accept (Colab's image, 2026-08).
TESTED = {"torch": ("2.11", "2.13"), "transformers": ("5.15", "5.23")}

_STAND_IN_TEXT = {
    models.TINY_STAND_IN: "a TINY random-weight model (a few hundred thousand parameters) rehearsing this notebook as a free Colab "
    "T4 would run it: every fold is planned against a T4's memory (one predicted not to fit runs out of memory on "
    "purpose) and computes at most its first residues — memory, time, structures and pLDDT are all meaningless",
    models.FULL_SIZE_STAND_IN: "the FULL-SIZE esmfold_v1 architecture with RANDOM weights — memory and time are real, "
    "but structures, pLDDT and pTM are meaningless",
}


def _major_minor(version: str) -> tuple[int, int]:
    match = re.match(r"(\d+)\.(\d+)", version)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def check_versions() -> list[str]:
    """Warn (never fail) when torch or transformers lie outside the tested range; return the warnings."""
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


def quiet_libraries() -> None:
    """Silence messages that concern the libraries, not the reader's code, so that red text in a notebook means
    something (the package's `__init__` silences those raised while the libraries import): tqdm's missing-widget
    notice, accelerate's note on device-map keys, and transformers' per-load "Loading weights" progress bars."""
    warnings.filterwarnings("ignore", message="IProgress not found")
    warnings.filterwarnings("ignore", message=".*device_map keys do not match any submodules.*")
    transformers.utils.logging.disable_progress_bar()


def start(needs_gpu: bool = True) -> str:
    """Run at the top of every notebook: version check, stand-in banner, GPU check, memory cap, quiet libraries;
    with the tiny stand-in, the rehearsal of a free Colab runtime (`helpers.rehearsal`); return the device."""
    quiet_libraries()
    check_versions()
    banner = stand_in_banner()
    if banner:
        display(HTML(banner))
        print(f"STAND-IN MODEL: {models.weights_source()} — results below are not real ESMFold results.")
    if models.weights_source() == models.TINY_STAND_IN:
        rehearsal.install(on_gpu=needs_gpu)
    # Each measured fold collects garbage first (memory.measure): with torch and transformers imported that takes
    # ≈ 0.3 s a call. What exists now (the libraries) lives as long as the kernel; frozen, it is not walked again.
    gc.collect()
    gc.freeze()
    try:
        device = models.require_gpu(device=None) if needs_gpu else models.default_device()
    except models.NoGPUError as err:
        if not colab.in_colab():
            raise
        raise SystemExit(str(err).splitlines()[0]) from None  # in Colab: the one sentence that says what to do
    cap = gpu.cap(gpu.session_cap())
    rehearsed = gpu.emulated()
    print(f"device: {device_name(device)}" + (f" (capped at {cap} GiB)" if cap else "")
          + (f", planning for a {rehearsed.name}" if rehearsed else ""))
    print(f"weights: {models.weights_source()}")
    return device


def device_name(device: str) -> str:
    """Human name of the device: the GPU's model, or the CPU's (`cpu.cpu_name`)."""
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return cpu.cpu_name()


def provenance(device: str, source: str | None = None) -> dict:
    """Who/what/when of a measurement: device, versions, date, and which weights (real or random)."""
    source = models.weights_source(source)
    return {
        "device": device_name(device),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "date": _dt.date.today().isoformat(),
        "weights": source,
        "weights kind": "random parameters: memory and time only" if source in models.STAND_INS else "real",
    }


def provenance_line(device: str, source: str | None = None, *details: str, device_text: str | None = None) -> str:
    """One-line provenance for figure footers and committed tables: device (or `device_text`), versions, date,
    weights, then `details` — the one place the series writes it."""
    p = provenance(device, source)
    return " · ".join([device_text or p["device"], f"torch {p['torch']}", f"transformers {p['transformers']}", p["date"],
                       f"weights: {p['weights']} ({p['weights kind']})", *details])

