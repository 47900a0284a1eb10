"""Notebook 08's CPU recipes: the low-RAM routes never hold the language model in fp32, and every recipe folds."""

import os
import subprocess
import sys
import time
import warnings

import pandas as pd
import pytest
import torch

from helpers import cpu, data, folding, lean, memory, models, recipes
from tools import figures


class _Float32LM(memory.LiveBytes):
    """Counts the live bytes of float32 tensors (with memory) shaped like a language-model-only weight."""

    def __init__(self, shapes):
        super().__init__()
        self.shapes = shapes
        self.seen_shapes = set()

    def track(self, tensor):
        if tensor.dtype == torch.float32 and tensor.device.type != "meta" and tuple(tensor.shape) in self.shapes:
            self.seen_shapes.add(tuple(tensor.shape))
            super().track(tensor)


def _lm_only_shapes():
    """Weight shapes that exist in the tiny model's language model and nowhere else."""
    model = models.meta_model("tiny")
    lm = {tuple(p.shape) for p in model.esm.parameters() if p.dim() == 2}
    rest = {tuple(p.shape) for name, p in model.named_parameters() if not name.startswith("esm.")}
    return lm - rest


def _fp32_lm_tensors_while_loading(recipe, monkeypatch):
    # transformers loads tensors in worker threads by default, where a dispatch mode does not see them: load in this one
    monkeypatch.setenv("HF_DEACTIVATE_ASYNC_LOAD", "1")
    recorder = _Float32LM(_lm_only_shapes())
    with recorder:
        model, _ = cpu.load_cpu(recipe, source="tiny")
    lm_dtypes = {p.dtype for p in model.esm.parameters()}
    return recorder, lm_dtypes


def _largest_lm_weight_fp32_bytes():
    return max(p.numel() * 4 for p in models.meta_model("tiny").esm.parameters())


def test_the_detector_sees_an_fp32_language_model_being_loaded(monkeypatch):
    recorder, dtypes = _fp32_lm_tensors_while_loading("fp32", monkeypatch)
    # the control: an fp32 load holds many LM weights in fp32 at once
    assert recorder.peak > 3 * _largest_lm_weight_fp32_bytes() and dtypes == {torch.float32}


# The CPU table's recipes that load within a free Colab runtime's RAM (the quantizing ones are tested below)
LOW_RAM = [name for name in recipes.shown_in(recipes.CPU_TABLE)
           if not recipes.RECIPES[name].load_ram_gb and not recipes.RECIPES[name].quanto]
TORCHAO_AFTER_LOAD = [name for name in LOW_RAM if recipes.RECIPES[name].torchao_config]


@pytest.mark.parametrize("recipe", [name for name in LOW_RAM if name not in TORCHAO_AFTER_LOAD])
def test_low_ram_routes_never_hold_the_language_model_in_fp32(recipe, monkeypatch):
    assert _lm_only_shapes()
    recorder, dtypes = _fp32_lm_tensors_while_loading(recipe, monkeypatch)
    assert recorder.peak == 0, f"{recipe} made fp32 tensors of LM weight shapes {sorted(recorder.seen_shapes)}"
    assert torch.float32 not in dtypes


@pytest.mark.parametrize("recipe", TORCHAO_AFTER_LOAD)
def test_torchao_int8_holds_at_most_one_lm_weight_in_fp32_at_a_time(recipe, monkeypatch):
    # torchao computes each weight's int8 scales in fp32 (the weight and one fp32 temporary), one layer at a time —
    # never the whole LM
    recorder, dtypes = _fp32_lm_tensors_while_loading(recipe, monkeypatch)
    assert 0 < recorder.peak <= 2 * _largest_lm_weight_fp32_bytes()
    assert torch.float32 not in dtypes


@pytest.fixture(scope="module")
def prequantized():
    """The tiny model's saved Quanto int8 checkpoint, made once (where `int8-reload` reads it)."""
    return cpu.prequantize("tiny")


@pytest.mark.parametrize("recipe", recipes.shown_in(recipes.CPU_TABLE))
def test_every_cpu_recipe_folds(recipe, prequantized):
    model, tokenizer = cpu.load_cpu(recipe, source="tiny")
    result = folding.fold(model, tokenizer, "MKTAYIAKQRQISFVKSHFSRQ")
    assert result.positions.shape == (22, 14, 3) and 0 <= result.mean_plddt_ca <= 100
    options = lean.is_lean(model)
    assert (options is not None) == recipes.RECIPES[recipe].lean
    assert models.recipe_of(model) == recipes.folds_as(recipe)  # it loads as the registry says
    if options is not None:  # the CPU's cache-sized chunks, not the GPU's memory-sized ones
        assert options.positions == lean.CPU_POSITIONS


def test_cpu_facts_and_threads():
    assert cpu.cpu_name() and set(cpu.cpu_features()) == set(cpu.FEATURES)
    assert cpu.set_threads(1) == 1
    assert "torch threads 1" in cpu.cpu_summary()
    cpu.set_threads()
    before = cpu.status_gb("RssAnon")
    with cpu.ram_sampler(interval=0.01) as ram:
        block = torch.ones(200_000_000, dtype=torch.uint8)  # 200 MB of anonymous memory, held past a few samples
        block += 1
        time.sleep(0.1)
        del block
    assert ram["peak anonymous RAM (GB)"] - before > 0.18  # the sampler saw the block
    with cpu.ram_sampler(interval=10.0) as idle:  # a block shorter than one interval: the closing sample sees it
        block = torch.ones(200_000_000, dtype=torch.uint8)
        block += 1
    del block
    assert idle["peak anonymous RAM (GB)"] - before > 0.18


def test_the_prequantized_reload_gives_the_quantize_on_load_prediction(prequantized, tmp_path, monkeypatch):
    assert (prequantized / "quantization_map.json").is_file()
    sequence = "MKTAYIAKQRQISFVKSHFSRQ"
    fresh = folding.fold(*cpu.load_cpu("int8", source="tiny"), sequence)
    model, tokenizer = cpu.load_cpu("int8-reload", source="tiny")
    assert "WeightQBytesTensor" in {type(m.weight).__name__ for m in model.modules() if isinstance(m, torch.nn.Linear)}
    assert abs(folding.fold(model, tokenizer, sequence).positions - fresh.positions).max() < 1e-5
    monkeypatch.setattr(cpu, "prequantized_folder", lambda source=None: tmp_path / "none")
    with pytest.raises(FileNotFoundError, match="prequantize"):
        cpu.load_cpu("int8-reload", source="tiny")


def test_recipes_that_need_more_ram_are_refused_before_loading(monkeypatch):
    monkeypatch.setattr(cpu, "available_ram_gb", lambda: cpu.COLAB_RAM_GB)
    big = [name for name in recipes.shown_in(recipes.CPU_TABLE) if recipes.RECIPES[name].load_ram_gb > cpu.COLAB_RAM_GB]
    assert big
    for recipe in big:
        with pytest.raises(MemoryError, match="choose_recipe"):
            cpu.load_cpu(recipe, source="facebook/esmfold_v1")  # refused before any download


def test_the_recipe_follows_the_measured_bf16_speed():
    assert cpu.choose_recipe(4.2)[0] == cpu.BF16_RECIPE
    assert cpu.choose_recipe(cpu.BF16_SPEEDUP_NEEDED)[0] == cpu.BF16_RECIPE
    name, why = cpu.choose_recipe(0.27)
    assert name == cpu.FP32_ARITHMETIC_RECIPE and "0.27×" in why and "emulated" in why
    assert cpu.choose_recipe(cpu.BF16_SPEEDUP_NEEDED - 0.01)[0] == cpu.FP32_ARITHMETIC_RECIPE
    # the fallback computes in fp32 where the work is, with the lean trunk — and is accurate as stored
    fallback, fast = recipes.RECIPES[cpu.FP32_ARITHMETIC_RECIPE], recipes.RECIPES[cpu.BF16_RECIPE]
    assert not fallback.computes_bf16 and fallback.lean and fast.computes_bf16 and fast.lean
    assert recipes.accuracy_judged(cpu.FP32_ARITHMETIC_RECIPE)  # it computes as notebook 05's fp16


def test_bf16_recipes_warn_before_loading_where_bf16_is_emulated(monkeypatch, tmp_path):
    def refuse(*args, **kwargs):
        raise RuntimeError("loading started")

    monkeypatch.setattr(models, "load_model", refuse)
    monkeypatch.setattr(cpu, "prequantized_folder", lambda source=None: tmp_path / "none")  # the reload stops there
    monkeypatch.setattr(cpu, "bf16_speedup", lambda: 0.3)
    table = recipes.shown_in(recipes.CPU_TABLE)
    bf16 = [r for r in table if recipes.RECIPES[r].computes_bf16]
    assert {"bf16-lean", "bf16-lm", "int8wo-lm-lean"} <= set(bf16)
    for recipe in table:
        with warnings.catch_warnings(record=True) as caught, pytest.raises((RuntimeError, FileNotFoundError)):
            warnings.simplefilter("always")
            cpu.load_cpu(recipe, source="tiny")
        emulated = [w for w in caught if "emulated" in str(w.message)]
        assert len(emulated) == (recipe in bf16), recipe  # warned before loading began, and only for bf16 recipes
        assert cpu.fast_here(recipe) == (recipe not in bf16)
    monkeypatch.setattr(cpu, "bf16_speedup", lambda: 4.0)
    with warnings.catch_warnings(record=True) as caught, pytest.raises(RuntimeError):
        warnings.simplefilter("always")
        cpu.load_cpu("bf16-lean", source="tiny")
    assert not [w for w in caught if "emulated" in str(w.message)] and cpu.fast_here("bf16-lean")


def test_the_avx2_cap_reaches_pytorch_in_a_fresh_process():
    # the emulation of notebook 08's table: the same caps, a fresh process (they are read when torch starts)
    env = dict(os.environ, **cpu.CPU_CLASSES["AVX2 only"][1])
    probe = "import torch; print(torch.backends.cpu.get_cpu_capability())"
    out = subprocess.run([sys.executable, "-c", probe], env=env, cwd=data.repo_root(), capture_output=True,
                         text=True, check=True).stdout.split()
    assert out[-1] == "AVX2"


@pytest.mark.slow  # a measurement (seconds of matrix products), not a property of the code: `make test-slow`
def test_capped_to_avx2_this_cpu_emulates_bf16_and_the_fp32_recipe_is_chosen():
    env = dict(os.environ, **cpu.CPU_CLASSES["AVX2 only"][1])
    probe = "from helpers import cpu; print(cpu.bf16_speedup(), cpu.choose_recipe()[0])"
    out = subprocess.run([sys.executable, "-c", probe], env=env, cwd=data.repo_root(), capture_output=True,
                         text=True, check=True).stdout.split()
    assert float(out[-2]) < 1 and out[-1] == cpu.FP32_ARITHMETIC_RECIPE


def test_the_cpu_class_is_the_newest_whose_instructions_are_present(monkeypatch):
    flags = dict.fromkeys(cpu.FEATURES, False)
    for present, expected in [((), "AVX2 only"), (("avx2",), "AVX2 only"), (("avx2", "avx512f"), "AVX-512, no BF16"),
                              (("avx2", "avx512f", "avx512_bf16", "amx_bf16"), "AVX-512 BF16")]:
        monkeypatch.setattr(cpu, "cpu_features", lambda: flags | dict.fromkeys(present, True))
        assert cpu.cpu_class() == expected


def test_the_class_table_borrows_only_the_uncapped_class_s_missing_lengths(tmp_path, monkeypatch):
    row = {"load peak anonymous RAM (GB)": 1.0, "fold peak anonymous RAM (GB)": 1.0, "recipe": "fp16",
           "provenance": "measured: test · 2026-01-02 · random-full stand-in"}
    classes = [("AVX2 only", True, 64, 20.0), ("AVX2 only", True, 259, 300.0), ("AVX-512, no BF16", False, 259, 250.0),
               ("AVX-512 BF16", False, 259, 200.0)]
    pd.DataFrame([{**row, "CPU class": c, "chosen here": chosen, "length": n, "fold seconds": t}
                  for c, chosen, n, t in classes]).to_csv(tmp_path / "08_cpu_classes.csv", index=False)
    pd.DataFrame([{**row, "length": n, "fold seconds": t} for n, t in [(64, 17.0), (259, 999.0)]]).to_csv(
        tmp_path / "08_cpu_benchmark.csv", index=False)
    monkeypatch.setattr(figures, "figures_dir", lambda: tmp_path)
    lines = figures.cpu_classes_markdown().splitlines()
    assert lines[0].endswith("| 64 aa (s) | 259 aa (s) |")
    assert lines[2].startswith("| AVX2 only | `fp16` ✔ |") and lines[2].endswith("| 20 | 300 |")
    assert lines[3].startswith("| AVX-512, no BF16 |") and lines[3].endswith("| — | 250 |")  # capped: never borrowed
    assert lines[4].startswith("| AVX-512 BF16 |") and lines[4].endswith("| 17 † | 200 |")  # its own 259 aa wins
    assert "† = from the uncapped benchmark below (same CPU, no cap, 2026-01-02)" in lines[-1]
