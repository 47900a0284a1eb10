"""Shared fixtures: the tiny stand-in (built once per test session into a temporary cache)."""

import os
import tempfile

import pytest


def pytest_configure(config):
    """Every test and every notebook kernel that nbmake starts (they inherit the environment) builds its stand-ins
    and downloads into one temporary folder, not the user's ~/.cache — unless ESMFOLD_CACHE is set already."""
    os.environ.setdefault("ESMFOLD_CACHE", tempfile.mkdtemp(prefix="esmfold-tests-"))


@pytest.fixture(scope="session")
def tiny():
    """(model, tokenizer) of the tiny random-weight stand-in on CPU, loaded through from_pretrained."""
    from helpers import models

    return models.load_model("fp32", device="cpu", source="tiny")


@pytest.fixture(scope="session")
def reference_pdb():
    """The published ESMFold prediction of the 65-residue ESM README example (PDB text)."""
    from helpers import data

    return data.fetch("reference_predictions/esmfold_v1_fairesm_65aa.pdb").read_text()


def pytest_report_header(config):
    return f"ESMFOLD_WEIGHTS={os.environ.get('ESMFOLD_WEIGHTS', '(unset: real weights)')}"
