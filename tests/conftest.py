"""Shared fixtures: the tiny stand-in (built once per test session into a temporary cache)."""

import gc
import os
import tempfile

import pytest


def pytest_configure(config):
    """Every test and every notebook kernel that nbmake starts (they inherit the environment) builds its stand-ins
    and downloads into one temporary folder, not the user's ~/.cache — unless ESMFOLD_CACHE is set already — and the
    notebooks' rehearsal (the tiny stand-in) logs its loads and folds into another, for the plan test."""
    from helpers import rehearsal

    os.environ.setdefault("ESMFOLD_CACHE", tempfile.mkdtemp(prefix="esmfold-tests-"))
    config.rehearsal_log = os.environ.setdefault(rehearsal.LOG_ENV, tempfile.mkdtemp(prefix="esmfold-rehearsal-"))


def pytest_collection_finish(session):
    """The imported libraries (torch, transformers, …) live as long as the session: freezing them keeps every
    `gc.collect()` of the code under test (one before each measured fold) in microseconds instead of ≈ 0.3 s."""
    gc.collect()
    gc.freeze()


def pytest_collection_modifyitems(session, config, items):
    """Tests marked `after_notebooks` read what the notebooks' rehearsal logged: they run after nbmake's items."""
    late = [item for item in items if item.get_closest_marker("after_notebooks")]
    items[:] = [item for item in items if item not in late] + late


class _TinyRecipes:
    """`load(recipe)` → (model, tokenizer) of the tiny stand-in on CPU, each recipe loaded once; `weights_at_load`
    keeps `models.weights_bytes` of each as loaded (a first fold adds the structure module's small lookup buffers)."""

    def __init__(self):
        self.loaded, self.weights_at_load = {}, {}

    def __call__(self, recipe: str):
        from helpers import models

        if recipe not in self.loaded:
            self.loaded[recipe] = models.load_model(recipe, device="cpu", source="tiny")
            self.weights_at_load[recipe] = models.weights_bytes(self.loaded[recipe][0])
        return self.loaded[recipe]


@pytest.fixture(scope="session")
def tiny_recipe():
    """Each recipe of the tiny stand-in loaded once per session, for tests that only read or fold the model (a test
    that changes it loads its own)."""
    return _TinyRecipes()


@pytest.fixture(scope="session")
def tiny(tiny_recipe):
    """(model, tokenizer) of the tiny random-weight stand-in in fp32 on CPU, loaded through from_pretrained."""
    return tiny_recipe("fp32")


@pytest.fixture(scope="session")
def reference_pdb():
    """The published ESMFold prediction of the 65-residue ESM README example (PDB text)."""
    from helpers import data

    return data.fetch("reference_predictions/esmfold_v1_fairesm_65aa.pdb").read_text()


def pytest_report_header(config):
    return f"ESMFOLD_WEIGHTS={os.environ.get('ESMFOLD_WEIGHTS', '(unset: real weights)')}"
