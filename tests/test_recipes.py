"""Every loader recipe on the tiny stand-in: precision where it should be, really quantized, save/reload exact."""

import numpy as np
import pytest
import torch

from helpers import benchmark, folding, models, quantization

SEQ = "MKTVRQERLKSIVRILERSKEPVSG"


@pytest.fixture(scope="module")
def fp32_result(tiny):
    model, tokenizer = tiny
    return folding.fold(model, tokenizer, SEQ)


@pytest.mark.parametrize("recipe", list(models.RECIPES))
def test_every_recipe_loads_through_the_loader_and_folds(recipe, fp32_result):
    model, tokenizer = models.load_model(recipe, device="cpu", source="tiny")
    result = folding.fold(model, tokenizer, SEQ)
    assert result.positions.shape == fp32_result.positions.shape
    assert np.isfinite(result.positions).all() and np.isfinite(result.plddt).all()
    assert not np.array_equal(result.positions, fp32_result.positions) or recipe == "fp32"  # precision changed


def _dtypes(module):
    return {p.dtype for p in module.parameters()}


@pytest.mark.parametrize("recipe", ["fp16", "fp16-seed"])
def test_fp16_recipes_have_fp16_lm_and_fp32_trunk(recipe):
    model, _ = models.load_model(recipe, device="cpu", source="tiny")
    assert _dtypes(model.esm) == {torch.float16}
    assert _dtypes(model.trunk) == {torch.float32} and _dtypes(model.lddt_head) == {torch.float32}


def test_fp16_route_and_seed_route_give_identical_predictions():
    results = [folding.fold(*models.load_model(v, device="cpu", source="tiny"), SEQ) for v in ("fp16", "fp16-seed")]
    assert np.array_equal(results[0].positions, results[1].positions)


def test_bf16_recipe_is_bf16_throughout():
    # refused on a T4 before loading: tests/test_gpu.py, with the T4's real answers
    model, _ = models.load_model("bf16", device="cpu", source="tiny")
    assert _dtypes(model) == {torch.bfloat16}


@pytest.mark.parametrize(
    "recipe, storage, data_dtype, ratio",
    [
        ("int8", "WeightQBytesTensor", "torch.int8", (0.25, 0.3)),
        ("float8", "WeightQBytesTensor", "torch.float8_e4m3fn", (0.25, 0.3)),
        ("int4", "WeightQBitsTensor", "torch.uint8", (0.125, 0.2)),
        ("torchao-int8wo", "Int8Tensor", "torch.int8", (0.25, 0.3)),
        ("torchao-int8dq", "Int8Tensor", "torch.int8", (0.25, 0.3)),
    ],
)
def test_quantized_linears_are_really_quantized(recipe, storage, data_dtype, ratio):
    model, _ = models.load_model(recipe, device="cpu", source="tiny")
    counts = quantization.quantized_linears(model)
    linears = sum(isinstance(m, torch.nn.Linear) for m in model.modules())
    assert counts == {storage: linears}, counts
    info = quantization.weight_storage(model.esm.encoder.layer[0].intermediate.dense)
    assert info["type"] == storage and info["data dtype"] == data_dtype
    assert ratio[0] <= info["bytes"] / info["fp32 bytes"] <= ratio[1]


def test_int8_lm_quantizes_the_language_model_only():
    model, _ = models.load_model("int8-lm", device="cpu", source="tiny")
    quantized = [n for n, m in model.named_modules() if type(getattr(m, "weight", None)).__name__ == "WeightQBytesTensor"]
    lm_linears = [n for n, m in model.esm.named_modules() if isinstance(m, torch.nn.Linear)]
    assert quantized and all(n.startswith("esm.") for n in quantized) and len(quantized) == len(lm_linears)


def test_weights_bytes_shrink_in_the_expected_order():
    sizes = {v: models.weights_bytes(models.load_model(v, device="cpu", source="tiny")[0])["total"]
             for v in ("fp32", "fp16", "int8", "int4")}
    assert sizes["fp32"] > sizes["fp16"] > sizes["int8"] > sizes["int4"]


@pytest.mark.parametrize("recipe", ["int8", "int4", "float8", "int8-lm"])
def test_quanto_save_and_reload_round_trip_is_exact(recipe, tmp_path):
    model, tokenizer = models.load_model(recipe, device="cpu", source="tiny")
    quantization.save_quantized(model, tmp_path / recipe)
    reloaded = quantization.load_quantized(tmp_path / recipe, device="cpu")
    before, after = folding.fold(model, tokenizer, SEQ), folding.fold(reloaded, tokenizer, SEQ)
    assert np.array_equal(before.positions, after.positions) and np.array_equal(before.plddt, after.plddt)
    assert before.ptm == after.ptm and before.pdb == after.pdb
    assert quantization.quantized_linears(reloaded) == quantization.quantized_linears(model)


def test_quantize_on_load_refuses_save_pretrained(tmp_path):
    model, _ = models.load_model("int8", device="cpu", source="tiny")
    with pytest.raises(ValueError, match="not serializable"):
        model.save_pretrained(tmp_path / "x")


def test_load_and_fold_row_and_agreement(tiny):
    row, result = benchmark.load_and_fold("fp16", SEQ, "cpu", source="tiny")
    assert row["load status"] == "ok" and row["fold status"] == "ok" and row["length"] == len(SEQ)
    assert row["weights (GiB)"] > 0 and row["fold seconds"] > 0
    table = benchmark.agreement_table({"fp32": folding.fold(*tiny, SEQ), "fp16": result})
    assert table.loc["fp32", "TM-score vs reference"] == 1.0
    assert table.loc["fp16", "TM-score vs reference"] > 0.99


def test_stage_times_add_up_and_count_four_trunk_passes(tiny):
    times = benchmark.stage_times(*tiny, SEQ)
    passes = [k for k in times if k.startswith("trunk pass") and k.endswith("(s)")]
    assert len(passes) == 4
    parts = sum(v for k, v in times.items() if k.endswith("(s)") and k != "total (s)")
    assert parts == pytest.approx(times["total (s)"], rel=1e-6) and all(v >= 0 for v in times.values())
    weights = models.weights_bytes(tiny[0])["total"] / 1024**3
    # each stage's peak includes the weights; the trunk's pair activations make it the largest on this model
    assert all(times[k] > weights for k in times if k.endswith("peak (GiB)"))
