"""helpers/colab.py and the setup cells that call it: installs, optional packages, and the Drive cache as a Colab
runtime takes it (a stand-in `google.colab`, a local hub on the loopback address, a fresh interpreter)."""

from __future__ import annotations

import hashlib
import http.server
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import jupytext
import pytest

from helpers import colab, models, notebook
from tools import colab_check

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def setup_cell(path: Path) -> str:
    nb = jupytext.read(path.with_suffix(".py"))
    return next(c.source for c in nb.cells if c.cell_type == "code" and "IS_COLAB" in c.source)


def test_the_pins_are_the_tested_ones_and_colabs_image_is_the_oldest_supported():
    pins = dict(line.split("==") for line in (ROOT / "requirements.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    pins["torch"] = re.search(r"torch==([\d.]+)", (ROOT / "Makefile").read_text()).group(1)  # installed first, alone
    assert colab.PINS == {name: pins[name] for name in colab.PINS}
    _, image = colab_check.image()
    image_pins = dict(p.split("==") for p in image if "==" in p)
    assert not set(colab.PINS) & {p.split("==")[0] for p in image}  # what Colab lacks is not in its image
    for name, (oldest, newest) in notebook.TESTED.items():
        assert image_pins[name].startswith(oldest + ".") and pins[name].startswith(newest + "."), name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_each_setup_cell_chooses_the_drive_cache_before_anything_imports_transformers(path):
    """The order the Drive cache depends on: `colab.setup(...)` runs before any other helper (they import
    transformers, which fixes the hub's cache folder), and NEEDS names only packages `colab` pins."""
    code = setup_cell(path)
    lines = [line for line in code.splitlines() if line.startswith(("from ", "import ", "colab.setup("))]
    setup_at = lines.index("colab.setup(NEEDS, drive_cache=DRIVE_CACHE)  # in Colab: installs what is missing "
                           "(nothing the second time)")
    assert lines[setup_at - 1].startswith("from helpers import colab")
    assert not any(line.startswith("from helpers import") for line in lines[:setup_at - 1])
    assert not any(re.match(r"(from|import) (transformers|huggingface_hub)\b", line) for line in lines[:setup_at])
    assert colab_check.needs(path) <= set(colab.PINS)


def test_a_missing_optional_package_is_named_in_one_sentence(monkeypatch):
    for name in [n for n in sys.modules if n.startswith("torchao.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "torchao", None)  # as if not installed
    with pytest.raises(colab.MissingPackage) as missing:
        models.load_model("torchao-int8wo", device="cpu", source=models.TINY_STAND_IN)
    message = str(missing.value)
    assert "torchao==" + colab.PINS["torchao"] in message and message.count(". ") == 0 and message.endswith(".")
    assert missing.value.__cause__ is None and missing.value.__suppress_context__  # no library traceback under it


def test_a_package_at_another_version_is_replaced_with_one_sentence(monkeypatch, capsys):
    versions = {"biotite": "1.5.0", "optimum-quanto": colab.PINS["optimum-quanto"], "torchao": "0.10.0"}
    monkeypatch.setattr(importlib.metadata, "version", lambda name: versions[name])
    assert colab.to_install(["biotite", "optimum-quanto", "torchao"]) == [f"biotite=={colab.PINS['biotite']}"]
    said = capsys.readouterr().out.strip()
    assert said.startswith("biotite 1.5.0 is") and len(said.splitlines()) == 1  # Colab's torchao is kept


def test_outside_colab_setup_installs_nothing_and_says_what_is_missing(monkeypatch, capsys):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setattr(importlib.metadata, "version", lambda name: (_ for _ in ()).throw(
        importlib.metadata.PackageNotFoundError(name)))
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("pip must not run outside Colab"))
    assert colab.setup(["py3Dmol"]) == []
    assert "py3Dmol==" + colab.PINS["py3Dmol"] in capsys.readouterr().out


# --- the Drive cache, as a Colab runtime takes it -------------------------------------------------------------------

class _Hub(http.server.BaseHTTPRequestHandler):
    """The Hugging Face hub's file route (`/{repo}/resolve/{revision}/{file}`) over a local folder."""

    def _answer(self, body: bool) -> None:
        self.server.requests.append((self.command, self.path))
        match = re.match(r"^/[^/]+/[^/]+/resolve/[^/]+/([^?]+)", self.path)
        path = Path(self.server.folder) / match.group(1) if match else None
        if path is None or not path.is_file():
            self.send_response(404)
            self.send_header("X-Error-Code", "EntryNotFound")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        payload = path.read_bytes()
        self.send_response(200)
        self.send_header("X-Repo-Commit", "0" * 40)
        self.send_header("ETag", f'"{hashlib.sha256(payload).hexdigest()}"')
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if body:
            self.wfile.write(payload)

    def do_HEAD(self):  # noqa: N802 — http.server's name
        self._answer(False)

    def do_GET(self):  # noqa: N802
        self._answer(True)

    def log_message(self, *args):
        pass


@pytest.fixture
def hub():
    """A hub on the loopback address serving the tiny stand-in's checkpoint as facebook/esmfold_v1."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    server.folder, server.requests = str(models.checkpoint_path(models.TINY_STAND_IN)), []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


def run_setup_then_load(tmp_path: Path, hub, drive_cache: bool, **extra_env) -> dict:
    """In a fresh interpreter that looks like a Colab runtime: notebook 01's setup cell with DRIVE_CACHE set, then
    the model loaded as the notebooks load it (`models.load_model`, the real model id); return what it saw."""
    code = setup_cell(NOTEBOOKS[0]).replace("DRIVE_CACHE = False", f"DRIVE_CACHE = {drive_cache}")
    code += ("\nimport json, huggingface_hub.constants\n"
             "model, tokenizer = models.load_model('fp32', device='cpu', allow_cpu=True)\n"
             "print('@@' + json.dumps({'hub_cache': huggingface_hub.constants.HF_HUB_CACHE,"
             " 'parameters': sum(p.numel() for p in model.parameters())}))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "ESMFOLD_WEIGHTS"))}
    env.update(HOME=str(tmp_path / "home"), PYTHONPATH=str(colab_check.RUNTIME), HF_ENDPOINT=f"http://127.0.0.1:"
               f"{hub.server_port}", HF_HUB_DISABLE_XET="1", COLAB_DRIVE_FOLDER=str(tmp_path / "drive"),
               ESMFOLD_CACHE=str(models.data.cache_dir()), **extra_env)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT / "notebooks", env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return {"stdout": done.stdout, **json.loads(done.stdout.split("@@", 1)[1])}


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


@pytest.fixture
def content_drive():
    """Colab mounts Drive at /content/drive: the stand-in makes it a link, removed afterwards."""
    try:
        os.makedirs(os.path.dirname(colab.DRIVE), exist_ok=True)
    except OSError:
        pytest.skip(f"cannot create {os.path.dirname(colab.DRIVE)} here (Colab's mount point)")
    yield
    if os.path.islink(colab.DRIVE):
        os.unlink(colab.DRIVE)


def test_with_drive_cache_the_checkpoint_downloads_to_drive_and_a_fresh_runtime_reads_it_there(
        tmp_path, hub, content_drive):
    first = run_setup_then_load(tmp_path, hub, drive_cache=True)
    drive_hub = tmp_path / "drive" / "MyDrive" / "hf-cache" / "hub"
    assert first["hub_cache"] == f"{colab.DRIVE_CACHE_FOLDER}/hub"
    weights = [p for p in files_under(drive_hub / "models--facebook--esmfold_v1") if p.suffix == ".safetensors"]
    assert weights and first["parameters"] > 0
    assert files_under(tmp_path / "home" / ".cache" / "huggingface") == []  # nothing under the default cache
    downloads = [path for method, path in hub.requests if method == "GET" and ".safetensors" in path]
    assert downloads

    hub.requests.clear()  # a fresh runtime, the same Drive: the weights are read from Drive, not downloaded
    stamps = {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in files_under(tmp_path / "drive")}
    second = run_setup_then_load(tmp_path, hub, drive_cache=True)
    assert "already there" in second["stdout"] and second["parameters"] == first["parameters"]
    assert not [path for method, path in hub.requests if method == "GET" and ".safetensors" in path]
    # nothing on Drive was written: a folder shared read-only with a room of students serves as well
    assert {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in files_under(tmp_path / "drive")} == stamps


def test_without_drive_cache_or_with_drive_refused_the_checkpoint_goes_to_the_runtimes_disk(
        tmp_path, hub, content_drive):
    refused = run_setup_then_load(tmp_path, hub, drive_cache=True, COLAB_DRIVE_REFUSED="1")
    said = [line for line in refused["stdout"].splitlines() if "Drive was not connected" in line]
    assert len(said) == 1 and said[0].count(". ") == 0
    default = tmp_path / "home" / ".cache" / "huggingface" / "hub"
    assert refused["hub_cache"] == str(default) and files_under(default)
    assert files_under(tmp_path / "drive") == []


def test_a_colab_runtime_without_a_gpu_stops_with_one_sentence(monkeypatch):
    import types

    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.delenv(models.WEIGHTS_ENV, raising=False)  # the real weights
    monkeypatch.setattr(models, "default_device", lambda: "cpu")
    with pytest.raises(SystemExit) as stop:
        notebook.start()
    message = str(stop.value)
    assert "Runtime → Change runtime type → T4 GPU" in message and "\n" not in message
    assert message.count(": ") == 1 and message.endswith(").")


def test_choosing_the_drive_cache_after_transformers_is_imported_says_to_restart(monkeypatch):
    import huggingface_hub  # noqa: F401 — what any helper's import brings in

    assert "huggingface_hub" in sys.modules
    monkeypatch.delenv("HF_HOME", raising=False)
    with pytest.raises(RuntimeError, match=r"^DRIVE_CACHE takes effect only in a fresh session.*run all cells again\.$"):
        colab.use_drive_cache()


def test_a_drive_too_full_for_the_checkpoint_leaves_it_on_the_runtimes_disk(monkeypatch, tmp_path, capsys,
                                                                          content_drive):
    import shutil

    monkeypatch.syspath_prepend(str(colab_check.RUNTIME))
    monkeypatch.delitem(sys.modules, "huggingface_hub", raising=False)  # as in a fresh session
    monkeypatch.setitem(sys.modules, "google.colab", importlib.import_module("google.colab"))
    monkeypatch.setenv("COLAB_DRIVE_FOLDER", str(tmp_path / "drive"))
    monkeypatch.delenv("HF_HOME", raising=False)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(15e9, 14e9, 1e9))
    assert colab.use_drive_cache() is None and "HF_HOME" not in os.environ
    said = capsys.readouterr().out.strip().splitlines()[-1]
    assert said.startswith("Your Drive has 1.0 GB free") and said.count(". ") == 0
