"""Every decision the series takes from the GPU, asked of a T4 as a T4 answers (compute capability 7.5, 15,102 MiB
offered by CUDA, and `torch.cuda.is_bf16_supported()` saying True) — and of an Ampere GPU for contrast."""

from types import SimpleNamespace

import pytest
import torch

from helpers import fit, gpu, models, recipes

GIB = 1024**3


def present(monkeypatch, name: str, capability: tuple[int, int], total_bytes: int, used_bytes: int = 300 * 2**20):
    """Make torch report one CUDA device with these properties (no GPU needed)."""
    properties = SimpleNamespace(name=name, major=capability[0], minor=capability[1], total_memory=total_bytes)
    fractions = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda *_: properties)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *_: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *_: name)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda *_: (total_bytes - used_bytes, total_bytes))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda *_: 0)
    # what a T4 really answers: by default the check only asks whether a bf16 tensor can be created
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    monkeypatch.setattr(torch.cuda, "set_per_process_memory_fraction", lambda f, *_: fractions.append(f))
    return fractions


@pytest.fixture
def t4(monkeypatch):
    monkeypatch.delenv(gpu.MEMORY_CAP_ENV, raising=False)
    fractions = present(monkeypatch, "Tesla T4", (7, 5), 15_835_660_288)
    yield fractions
    gpu.cap(None)  # no cap left behind for the next test


def test_a_t4_has_no_bf16_arithmetic_although_torch_says_bf16_is_supported(t4):
    assert gpu.current().capability == (7, 5)
    assert not gpu.bf16_arithmetic()
    assert not gpu.tf32()


def test_the_bf16_recipe_is_refused_on_a_t4_before_anything_loads(t4, monkeypatch):
    from transformers import EsmForProteinFolding

    def must_not_load(*args, **kwargs):
        raise AssertionError("from_pretrained was called")

    monkeypatch.setattr(EsmForProteinFolding, "from_pretrained", must_not_load)
    with pytest.raises(RuntimeError, match="compute capability 8.0"):
        models.load_model("bf16", device="cuda", source="tiny")


def test_a_t4_gets_the_memory_efficient_attention_kernel_and_dequantizing_products(t4):
    assert gpu.attention_kernel() == "memory-efficient"
    quanto = [name for name, r in recipes.RECIPES.items() if r.quanto]
    assert {"int8", "int8-lm", "int4", "float8"} <= set(quanto)
    for recipe in quanto:  # Quanto: fp32 activations rule out its fast kernels
        assert gpu.quantized_matmul(recipe).startswith("dequantize")
    assert "torch._int_mm" in gpu.quantized_matmul("torchao-int8dq")  # int8 × int8 needs no Ampere
    assert "weight-only" in gpu.quantized_matmul("torchao-int8wo")
    assert gpu.quantized_matmul("fp16").startswith("floating point")


def test_a_t4_s_budget_is_what_cuda_offers_less_the_measured_context(t4):
    current = gpu.current()
    assert current.total_gib == pytest.approx(15_835_660_288 / GIB)
    assert current.context_gib == pytest.approx(300 / 1024)  # what the device holds beyond PyTorch's allocator
    assert gpu.budget_gib() == pytest.approx(current.total_gib - current.context_gib)
    gpu.cap(10.0)
    assert gpu.budget_gib() == 10.0
    assert t4[-1] == pytest.approx(10.0 / current.total_gib)  # the one cap mechanism reached torch


def test_check_fits_on_a_t4_plans_against_that_t4(t4):
    need = fit.check_fits("fp16", 259, 64)
    assert need == pytest.approx(fit.grid_estimate("fp16", 259, 64)["reserved (GiB)"] + gpu.current().context_gib)
    with pytest.raises(fit.TooLongError, match="Predicted to fit"):
        fit.check_fits("fp32", 700)


def test_an_ampere_gpu_gets_bf16_tf32_and_still_the_memory_efficient_attention(monkeypatch):
    present(monkeypatch, "NVIDIA A100-SXM4-40GB", (8, 0), 40 * GIB)
    assert gpu.bf16_arithmetic() and gpu.tf32()
    assert gpu.attention_kernel() == "memory-efficient"  # FlashAttention takes no bias: the lean trunk never uses it
    assert gpu.attention_kernel(gpu.GPU("an old card", (3, 7), 12.0, 0.4)) == "none"


def test_emulating_a_t4_answers_as_the_mocked_t4_does_without_a_gpu():
    with gpu.emulate(gpu.T4):
        assert gpu.current() is gpu.T4
        assert not gpu.bf16_arithmetic() and gpu.attention_kernel() == "memory-efficient"
        assert gpu.budget_gib() == pytest.approx(gpu.T4.total_gib - gpu.ASSUMED_CONTEXT_GIB)
    assert gpu.emulated() is None


def test_verdicts_are_fits_borderline_and_over_around_the_budget():
    assert gpu.verdict(10.0, 14.0) == "fits"
    assert gpu.verdict(13.6, 14.0) == "borderline"
    assert gpu.verdict(14.1, 14.0) == "over"
    said, why = fit.verdict("fp32", 259, None, gpu.T4)
    need = fit.grid_estimate("fp32", 259, None)["reserved (GiB)"]
    assert said == gpu.verdict(need, gpu.T4.usable_gib) and f"{need:.2f} GiB" in why


@pytest.fixture
def no_allocator_setting(monkeypatch):
    for name in gpu._ALLOCATOR_ENVS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(gpu, "_allocator_note", "")


def test_the_allocator_gets_expandable_segments_before_cuda_starts(no_allocator_setting, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)
    assert gpu.configure_allocator().startswith("expandable_segments:True (set by helpers.gpu before CUDA started)")
    assert gpu.os.environ[gpu.ALLOCATOR_ENV] == gpu.ALLOCATOR_SETTINGS and capsys.readouterr().out == ""


def test_an_allocator_setting_of_the_user_is_kept(no_allocator_setting, monkeypatch):
    monkeypatch.setenv("PYTORCH_ALLOC_CONF", "max_split_size_mb:128")
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)
    assert gpu.configure_allocator() == "max_split_size_mb:128 (set by the environment)"
    assert gpu.ALLOCATOR_ENV not in gpu.os.environ


def test_cuda_started_before_the_helpers_is_said_once_and_nothing_is_set(no_allocator_setting, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    gpu.configure_allocator()
    gpu.configure_allocator()
    said = capsys.readouterr().out.strip().splitlines()
    assert len(said) == 1 and "without expandable_segments:True" in said[0] and "restart the runtime" in said[0]
    assert gpu.ALLOCATOR_ENV not in gpu.os.environ
    assert gpu.allocator_settings() == "PyTorch's defaults (not set: CUDA had started)"


def test_the_helpers_ask_for_expandable_segments_on_import_where_nothing_else_did():
    """`helpers.gpu` is imported by every helper that touches memory: in this process (no allocator setting in the
    test environment, CUDA never started here) it has set the allocator."""
    import os

    assert os.environ.get("PYTORCH_ALLOC_CONF") or os.environ.get(gpu.ALLOCATOR_ENV) == gpu.ALLOCATOR_SETTINGS
