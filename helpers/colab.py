"""The start of a notebook in Colab: install what Colab lacks, keep the checkpoint on Google Drive, and name the package
to install when an optional one is missing.

This module imports nothing that downloads: `huggingface_hub` (imported by transformers) fixes its cache folder when
it is first imported, so the Drive cache must be chosen before anything imports transformers. The setup cells call
`setup` right after installing the helpers and before `from helpers import ...` the rest.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tempfile

#: What the series uses that Colab (2026-08) does not preinstall: distribution → the pinned requirement, the same pins
#: as requirements.txt (a test checks), and the module a helper imports.
PINS = {"py3Dmol": "2.5.5", "optimum-quanto": "0.2.7", "biotite": "1.6.0", "torchao": "0.18.0"}
MODULES = {"py3Dmol": "py3Dmol", "optimum-quanto": "optimum.quanto", "biotite": "biotite", "torchao": "torchao"}
#: Some Colab images ship torchao: keep theirs (it matches their torch) and install it only where it is missing.
KEEP_IF_PRESENT = {"torchao"}

#: Where Colab mounts Google Drive, and the Hugging Face cache folder kept there.
DRIVE = "/content/drive"
DRIVE_CACHE_FOLDER = f"{DRIVE}/MyDrive/hf-cache"
#: The facebook/esmfold_v1 checkpoint's size on disk (the hub's file listing: 8.4 GB).
CHECKPOINT_BYTES = 8.4e9


class MissingPackage(ImportError):
    """An optional package this step needs is not installed (its message is one sentence naming what to install)."""


def in_colab() -> bool:
    """True inside a Colab runtime (Colab imports `google.colab` when its kernel starts)."""
    return "google.colab" in sys.modules


def install_command(distribution: str) -> str:
    """The line a reader types to install one of `PINS`."""
    return f"%pip install {distribution}=={PINS[distribution]}"


def optional(distribution: str, module: str | None = None):
    """Import `module` (default: the package's own) of an optional `distribution` (one of `PINS`), or raise
    `MissingPackage` in one sentence naming what to install."""
    module = module or MODULES[distribution]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        if not err.name or err.name.split(".")[0] != module.split(".")[0]:
            raise  # something inside the package is missing: its own message says what
        raise MissingPackage(f"This step needs {distribution}, which this runtime lacks: run "
                             f"`{install_command(distribution)}`, then run this cell again.") from None


def to_install(needs: list[str]) -> list[str]:
    """The requirements (name==version) among `needs` (names of `PINS`) that are not installed at their pin; a package
    of `KEEP_IF_PRESENT` counts as installed at any version."""
    missing = []
    for name in needs:
        try:
            found = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found = None
        if found == PINS[name] or (found and name in KEEP_IF_PRESENT):
            continue
        if found and MODULES[name] in sys.modules:
            print(f"{name} {found} is already loaded, and this series needs {PINS[name]}: after this cell, restart "
                  "the session (Runtime → Restart session) and run all cells again.")
        elif found:
            print(f"{name} {found} is installed; this series is tested with {PINS[name]}, which replaces it.")
        missing.append(f"{name}=={PINS[name]}")
    return missing


def keep_colabs() -> str:
    """A pip constraints file holding the torch, transformers and accelerate this runtime has: installing what Colab
    lacks never replaces them (their versions match Colab's CUDA and each other)."""
    lines = []
    for name in ("torch", "transformers", "accelerate"):
        try:
            lines.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    path = os.path.join(tempfile.gettempdir(), "colab-keeps.txt")
    with open(path, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    return path


def setup(needs: list[str], drive_cache: bool | str = False) -> list[str]:
    """A notebook's setup: in Colab, install what of `needs` is missing and, with `drive_cache` (True, or a folder on
    Drive such as a shortcut to a folder a teacher shares), keep the Hugging Face cache on Google Drive; elsewhere,
    say what to install. Returns the requirements it installed (none the second time it runs)."""
    missing = to_install(needs)
    installed = []
    if missing and in_colab():
        print("Installing", ", ".join(missing), flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", *missing, "--constraint", keep_colabs()],
                       check=True)
        importlib.invalidate_caches()
        installed = missing
    elif missing:
        print(f"This notebook also uses what `pip install {' '.join(missing)}` installs (or `make setup`).")
    else:
        print("Setup: everything this notebook needs is installed.")
    if drive_cache:
        use_drive_cache(*([drive_cache] if isinstance(drive_cache, str) else []))
    return installed


def use_drive_cache(folder: str = DRIVE_CACHE_FOLDER) -> str | None:
    """Mount Google Drive and keep the Hugging Face cache (the 8.4 GB checkpoint) in `folder` on it, so that a fresh
    runtime reads the checkpoint from Drive instead of downloading it. Returns the folder, or None when Drive could
    not be mounted (the checkpoint then goes to the runtime's own disk, as without the switch)."""
    hub_cache = os.path.join(folder, "hub")
    if "huggingface_hub" in sys.modules:
        if os.environ.get("HF_HOME") == folder:
            return folder  # set by an earlier run of the setup cell
        raise RuntimeError("DRIVE_CACHE takes effect only in a fresh session, before transformers is imported: "
                           "Runtime → Restart session, then run all cells again.")
    if not in_colab():
        print("DRIVE_CACHE applies in Colab only: this machine keeps its usual Hugging Face cache.")
        return None
    from google.colab import drive  # exists in Colab only

    try:
        drive.mount(DRIVE)
    except Exception as err:  # noqa: BLE001 — a refused sign-in, a timeout: Colab raises several kinds
        print("Google Drive was not connected (the permission window was closed or refused), so the checkpoint "
              f"downloads to this runtime's own disk ({type(err).__name__}).")
        return None
    os.makedirs(hub_cache, exist_ok=True)
    cached = os.path.isdir(os.path.join(hub_cache, "models--facebook--esmfold_v1"))
    free = shutil.disk_usage(folder).free
    if not cached and free < CHECKPOINT_BYTES:
        print(f"Your Drive has {free / 1e9:.1f} GB free, less than the {CHECKPOINT_BYTES / 1e9:.1f} GB checkpoint "
              "needs, so this runtime keeps it on its own disk.")
        return None
    os.environ["HF_HOME"] = folder
    print(f"Hugging Face cache: {hub_cache}" + (" (the checkpoint is already there)" if cached else ""))
    return folder
