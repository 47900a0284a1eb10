"""Every notebook as a fresh Colab runtime runs it: Colab's Python and packages, the setup cell's own installs, nothing
else.

    make test-colab      (CI runs it after `make test`)

Colab's image (tools/colab_image.txt: Python, torch, transformers, accelerate) is built once into .venv-colab. Each
notebook then gets a runtime of its own, a virtual environment that sees the image's packages and nothing more, with
a stand-in `google.colab` imported at start (tools/colab_runtime). The notebooks run from a snapshot of this working
tree stamped to its local address, so that the setup cell's `pip install git+REPO@REF` installs the helpers as it
does in Colab; `DRIVE_CACHE = True`, with Drive a local folder. For each notebook the check then requires:

- it runs to the end with the tiny stand-in (a package Colab lacks and the cell does not install fails here);
- the packages Colab lacks that it imported are exactly those its setup cell installs;
- the Hugging Face cache is on the stand-in Drive and the default cache holds nothing;
- a second run of the setup cell installs nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGE = ROOT / "tools" / "colab_image.txt"
RUNTIME = ROOT / "tools" / "colab_runtime"
#: Where Debian's ccache puts its compiler links: where present, Quanto's C++ kernels, which each fresh runtime
#: compiles on first use (≈ 45 s), come from the compiler cache after the first notebook.
CCACHE = "/usr/lib/ccache"
#: Installed by a setup cell for a path the tiny run does not take (notebook 04 with FULL = True uses torchao).
PARAMETER_PATHS = {"04": {"torchao"}}
#: The second run of a setup cell must print this (helpers.colab.setup) and change no installed package.
NOTHING_TO_INSTALL = "everything this notebook needs is installed"
_PROBE = ("import json, os, huggingface_hub.constants as c\n"
          "print('@@HUB@@' + json.dumps({'hub_cache': c.HF_HUB_CACHE, 'hf_home': os.environ.get('HF_HOME')}))")


def image() -> tuple[str, list[str]]:
    """Colab's Python version and its packages, as tools/colab_image.txt lists them."""
    text = IMAGE.read_text()
    python = re.search(r"^# python (\S+)$", text, re.M).group(1)
    return python, [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def colab_python(version: str) -> str:
    """An interpreter of Colab's Python version: on PATH, or one of pyenv's."""
    candidates = [shutil.which(f"python{version}")] + sorted(
        str(p) for p in Path.home().glob(f".pyenv/versions/{version}*/bin/python{version}"))
    for candidate in filter(None, candidates):
        found = subprocess.run([candidate, "--version"], capture_output=True, text=True)
        if found.returncode == 0 and found.stdout.split()[-1].startswith(version):
            return candidate
    sys.exit(f"Colab's Python {version} is not installed here: install python{version} (or set it up with pyenv).")


def image_folder() -> Path:
    """Where Colab's image is built: in the series' cache, once per version of tools/colab_image.txt (about 5 GB:
    torch's CUDA wheels, as Colab has them)."""
    from helpers import data

    return data.cache_dir() / f"colab-image-{hashlib.sha256(IMAGE.read_bytes()).hexdigest()[:10]}"


def build_image() -> Path:
    """A virtual environment with Colab's packages (built when tools/colab_image.txt is new); return its folder."""
    version, packages = image()
    base = image_folder()
    marker = base / "colab_image.txt"
    if not marker.is_file():
        for old in base.parent.glob("colab-image-*"):  # earlier versions of the image, or a build cut short
            shutil.rmtree(old, ignore_errors=True)
        subprocess.run([colab_python(version), "-m", "venv", str(base)], check=True)
        subprocess.run([str(base / "bin" / "python"), "-m", "pip", "install", "-q", *packages], check=True)
        marker.write_text(IMAGE.read_text())
    return base


def snapshot(folder: Path) -> tuple[str, str]:
    """This working tree (tracked and new files git does not ignore) as a git repository in `folder`, its notebooks
    and helpers stamped to its local address with DRIVE_CACHE on; return (url, ref)."""
    from tools import stamp

    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.split("\0")
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, folder / name)
    url, ref = folder.as_uri(), "colab-check"
    notebooks = sorted((folder / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    stamp.stamp(url, ref, files=notebooks + [folder / "helpers" / "data.py"])
    for path in notebooks:
        path.write_text(path.read_text().replace("DRIVE_CACHE = False", "DRIVE_CACHE = True"))
    git = ["git", "-c", "user.name=colab-check", "-c", "user.email=colab-check@localhost"]
    for args in (["init", "-q", "-b", ref], ["add", "-A"], ["commit", "-q", "-m", "snapshot"]):
        subprocess.run(git + args, cwd=folder, check=True)
    return url, ref


def runtime(folder: Path, base: Path, env: dict) -> str:
    """A fresh Colab runtime in `folder`: a virtual environment that sees Colab's packages (a .pth line to the image)
    and a Jupyter kernel of it whose start looks like Colab's; return the kernel's name."""
    subprocess.run([str(base / "bin" / "python"), "-m", "venv", str(folder)], check=True)
    site, image_site = (next((f / "lib").glob("python*/site-packages")) for f in (folder, base))
    (site / "colab_image.pth").write_text(f"{image_site}\n")
    name = f"colab-{folder.name}"
    spec = folder / "share" / "jupyter" / "kernels" / name
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(folder / "bin" / "python"), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": name, "language": "python", "env": env}))
    if str(folder / "share" / "jupyter") not in os.environ.get("JUPYTER_PATH", ""):
        os.environ["JUPYTER_PATH"] = os.pathsep.join([str(folder / "share" / "jupyter"),
                                                      os.environ.get("JUPYTER_PATH", "")])
    return name


def installed(folder: Path) -> list[str]:
    """The distributions installed in a runtime (beside the image's)."""
    site = next((folder / "lib").glob("python*/site-packages"))
    return sorted(p.name for p in site.glob("*.dist-info"))


def needs(path: Path) -> set[str]:
    """The distributions a notebook's setup cell names in NEEDS."""
    listed = re.search(r"^NEEDS = \[(.*?)\]", path.with_suffix(".py").read_text(), re.M).group(1)
    return {item.strip().strip('"') for item in listed.split(",") if item.strip()}


def imported(record: Path) -> set[str]:
    """The distributions Colab lacks that a notebook's kernel imported, from its import record."""
    from helpers import colab

    lines = record.read_text().splitlines()
    modules = {line for line in lines if " " not in line}
    used = {dist for dist, module in colab.MODULES.items() if module.split(".")[0] in modules}
    # transformers imports torchao by itself wherever it is installed: it counts only when the notebook's own cells
    # (__main__) or the helpers asked for it
    askers = [line.split(" by ", 1)[1] for line in lines if line.startswith("torchao asked by ")]
    if not any(a == "__main__" or a.startswith("helpers") for a in askers):
        used.discard("torchao")
    return used


def check(path: Path, work: Path, base: Path, timing: dict) -> list[str]:
    """Run one stamped notebook as a fresh Colab runtime; return what is wrong (nothing when all holds). `timing`
    gets the seconds of the setup cell (kernel start and installs) and of the whole run."""
    import nbformat
    from nbclient import NotebookClient

    # Each runtime at the same path, so that a compiler cache recognises Quanto's kernels from the last one
    rt, home, record = work / "runtime", work / "home", work / f"{path.stem}.imports"
    for folder in (rt, home):
        shutil.rmtree(folder, ignore_errors=True)
    home.mkdir()
    env = {"HOME": str(home), "PYTHONPATH": str(RUNTIME), "ESMFOLD_IMPORTS_OUT": str(record),
           "COLAB_DRIVE_FOLDER": str(work / "drive"), "ESMFOLD_WEIGHTS": "tiny",
           "ESMFOLD_CACHE": str(work / "esmfold-cache"), "PIP_CACHE_DIR": str(Path.home() / ".cache" / "pip"),
           "PATH": os.pathsep.join([str(rt / "bin"), *[CCACHE] * Path(CCACHE).is_dir(), os.environ["PATH"]]),
           "CCACHE_DIR": str(Path.home() / ".cache" / "ccache"), "CCACHE_BASEDIR": str(work), "MPLBACKEND": "agg"}
    shared = ROOT.parent / "shared"
    if os.environ.get("ESMFOLD_DATA") or shared.is_dir():
        env["ESMFOLD_DATA"] = os.environ.get("ESMFOLD_DATA") or str(shared)
    kernel = runtime(rt, base, env)
    nb = nbformat.read(path, as_version=4)
    setup = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "IS_COLAB" in c.source)
    client = NotebookClient(nb, timeout=1800, kernel_name=kernel, resources={"metadata": {"path": str(path.parent)}})
    problems, started = [], time.perf_counter()
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
            if index == setup:
                timing["setup cell"] = time.perf_counter() - started
        probe = nbformat.v4.new_code_cell(_PROBE)
        nb.cells.append(probe)
        client.execute_cell(probe, len(nb.cells) - 1)
        before = installed(rt)
        again = nbformat.v4.new_code_cell(nb.cells[setup].source)
        nb.cells.append(again)
        client.execute_cell(again, len(nb.cells) - 1)
        after = installed(rt)
    timing["run"] = time.perf_counter() - started
    text = "".join(o.get("text", "") for o in again.outputs)
    if before != after or NOTHING_TO_INSTALL not in text:
        problems.append(f"a second run of the setup cell installed {sorted(set(after) - set(before))}: {text.strip()}")
    hub = json.loads("".join(o.get("text", "") for o in probe.outputs).split("@@HUB@@", 1)[1])
    if not os.path.realpath(hub["hub_cache"]).startswith(env["COLAB_DRIVE_FOLDER"] + os.sep):
        problems.append(f"the Hugging Face cache is {hub['hub_cache']}, not on the (stand-in) Drive")
    default = home / ".cache" / "huggingface"
    if default.exists() and any(default.rglob("*")):
        problems.append(f"files went to the default cache: {sorted(str(p) for p in default.rglob('*'))[:3]}")
    used, installs = imported(record), needs(path)
    missing, extra = used - installs, installs - used - PARAMETER_PATHS.get(path.name[:2], set())
    if missing:
        problems.append(f"imports {sorted(missing)}, which its setup cell does not install")
    if extra:
        problems.append(f"its setup cell installs {sorted(extra)}, which it does not use")
    return problems


def failure(err: Exception) -> str:
    """One line for a failed notebook: the cell's error (name and message) where a cell failed."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in str(err).splitlines()]
    raised = [line for line in lines if re.match(r"^\w*(Error|Exception|Exit)\b", line)]
    return (raised[-1] if raised else f"{type(err).__name__}: {lines[-1] if lines else ''}")[:300]


def main(names: list[str] | None = None) -> int:
    version, packages = image()
    print(f"Colab's image: Python {version}, " + ", ".join(p for p in packages if "==" in p), flush=True)
    base = build_image()
    failed = checked = 0
    with tempfile.TemporaryDirectory(prefix="colab-check-") as tmp:
        work = Path(tmp)
        (work / "repo").mkdir()
        snapshot(work / "repo")
        for path in sorted((work / "repo" / "notebooks").glob("[0-9][0-9]_*.ipynb")):
            if names and not any(path.name.startswith(n) for n in names):
                continue
            start, timing = time.perf_counter(), {}
            try:
                problems = check(path, work, base, timing)
            except Exception as err:  # noqa: BLE001 — report every notebook
                problems = [failure(err)]
            failed += bool(problems)
            status = "ok" if not problems else "FAILED"
            seconds = ", ".join(f"{k} {v:.0f} s" for k, v in timing.items())
            print(f"{status:>7}  {path.name} ({time.perf_counter() - start:.0f} s; {seconds}): installs "
                  f"{sorted(needs(path))}"
                  + "".join(f"\n         - {p}" for p in problems), flush=True)
            checked += 1
    print(f"colab-check: {checked - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
