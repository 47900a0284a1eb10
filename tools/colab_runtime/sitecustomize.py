"""Loaded at interpreter start when this folder is on PYTHONPATH (tools/colab_check.py puts it there for a notebook's
kernel): it makes the kernel look like Colab's (`google.colab` imported at start, as Colab's kernel does), and with
$ESMFOLD_IMPORTS_OUT set it writes there at exit the top-level names of every imported module, and for torchao —
which transformers imports on its own wherever it is installed — which code asked for it."""

import atexit
import builtins
import importlib
import os
import sys

import google.colab  # noqa: F401 — the setup cells test `"google.colab" in sys.modules`

_OUT = os.environ.pop("ESMFOLD_IMPORTS_OUT", None)  # popped: the pip processes a setup cell starts record nothing
if _OUT:
    _asked = set()
    _import = builtins.__import__

    def _recording_import(name, globals=None, locals=None, fromlist=(), level=0):
        if level == 0 and name.split(".")[0] == "torchao":
            caller = (globals or {}).get("__name__", "")
            _asked.add(caller)
        return _import(name, globals, locals, fromlist, level)

    builtins.__import__ = _recording_import
    _import_module = importlib.import_module

    def _recording_import_module(name, package=None):  # helpers.colab.optional imports this way
        if name.split(".")[0] == "torchao":
            _asked.add(sys._getframe(1).f_globals.get("__name__", ""))
        return _import_module(name, package)

    importlib.import_module = _recording_import_module

    def _write():
        modules = sorted({name.split(".")[0] for name in list(sys.modules)})
        with open(_OUT, "w") as handle:
            handle.write("\n".join(modules + [f"torchao asked by {caller}" for caller in sorted(_asked)]))

    atexit.register(_write)
