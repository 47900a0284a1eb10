"""Every recipe of the registry on the tiny stand-in: it loads as the registry says, its weight bytes are what the
architecture predicts, quantized where it should be, save/reload exact; and a new recipe is one entry."""

import numpy as np
import pytest
import torch

from helpers import benchmark, fit, folding, gpu, models, quantization, recipes

SEQ = "MKTVRQERLKSIVRILERSKEPVSG"


@pytest.fixture(scope="module")
def fp32_result(tiny):
    model, tokenizer = tiny
    return folding.fold(model, tokenizer, SEQ)


LOADABLE = [name for name, recipe in recipes.RECIPES.items() if not recipe.prequantized]  # the reload: test_cpu.py


@pytest.mark.parametrize("recipe", LOADABLE)
def test_every_recipe_loads_as_the_registry_says_and_folds(recipe, fp32_result, tiny_recipe):
    model, tokenizer = tiny_recipe(recipe)
    result = folding.fold(model, tokenizer, SEQ)
    assert result.positions.shape == fp32_result.positions.shape
    assert np.isfinite(result.positions).all() and np.isfinite(result.plddt).all()
    assert not np.array_equal(result.positions, fp32_result.positions) or recipe == "fp32"  # precision changed
    assert models.recipe_of(model) == recipes.folds_as(recipe)  # the precisions the registry gives it


@pytest.mark.parametrize("recipe", LOADABLE)
def test_weight_bytes_computed_from_the_architecture_are_the_loaded_ones(recipe, tiny_recipe):
    tiny_recipe(recipe)
    assert tiny_recipe.weights_at_load[recipe] == models.expected_weights_bytes(recipe, "tiny")


def test_a_new_recipe_is_one_entry_and_reaches_the_tables_the_ladder_and_the_predictor(monkeypatch):
    # Quanto int4 in the language model only: no other file names it
    entry = recipes.Recipe("test: Quanto int4 LM only, trunk fp32", quanto="int4", lm_only=True, ladder=0,
                           tables=frozenset({recipes.HARDWARE_TABLE}))
    monkeypatch.setitem(recipes.RECIPES, "int4-lm", entry)
    assert recipes.ladder()[0] == "int4-lm"
    weights = models.expected_weights_bytes("int4-lm")  # the full-size architecture, no weights
    int4, fp32 = models.expected_weights_bytes("int4"), models.expected_weights_bytes("fp32")
    assert weights["language model (ESM-2)"] == int4["language model (ESM-2)"]
    assert weights["folding trunk"] == fp32["folding trunk"]
    estimate = fit.grid_estimate("int4-lm", 512)  # the predictor, from the committed grid of its activation profile
    assert estimate["weights (GiB)"] == pytest.approx(weights["total"] / 2**30)
    table = fit.hardware_table().set_index("recipe")
    assert {"int4-lm", "int4-lm + lean trunk"} <= set(table.index)
    assert fit.recommend(gpu.T4, 256)[0] == "int4-lm"  # first on the ladder, and it fits


def _dtypes(module):
    return {p.dtype for p in module.parameters()}


@pytest.mark.parametrize("recipe", ["fp16", "fp16-seed"])
def test_fp16_recipes_have_fp16_lm_and_fp32_trunk(recipe, tiny_recipe):
    model, _ = tiny_recipe(recipe)
    assert _dtypes(model.esm) == {torch.float16}
    assert _dtypes(model.trunk) == {torch.float32} and _dtypes(model.lddt_head) == {torch.float32}


def test_fp16_route_and_seed_route_give_identical_predictions(tiny_recipe):
    results = [folding.fold(*tiny_recipe(v), SEQ) for v in ("fp16", "fp16-seed")]
    assert np.array_equal(results[0].positions, results[1].positions)


def test_bf16_recipe_is_bf16_throughout(tiny_recipe):
    # refused on a T4 before loading: tests/test_gpu.py, with the T4's real answers
    model, _ = tiny_recipe("bf16")
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
def test_quantized_linears_are_really_quantized(recipe, storage, data_dtype, ratio, tiny_recipe):
    model, _ = tiny_recipe(recipe)
    counts = quantization.quantized_linears(model)
    linears = sum(isinstance(m, torch.nn.Linear) for m in model.modules())
    assert counts == {storage: linears}, counts
    info = quantization.weight_storage(model.esm.encoder.layer[0].intermediate.dense)
    assert info["type"] == storage and info["data dtype"] == data_dtype
    assert ratio[0] <= info["bytes"] / info["fp32 bytes"] <= ratio[1]


def test_int8_lm_quantizes_the_language_model_only(tiny_recipe):
    model, _ = tiny_recipe("int8-lm")
    quantized = [n for n, m in model.named_modules() if type(getattr(m, "weight", None)).__name__ == "WeightQBytesTensor"]
    lm_linears = [n for n, m in model.esm.named_modules() if isinstance(m, torch.nn.Linear)]
    assert quantized and all(n.startswith("esm.") for n in quantized) and len(quantized) == len(lm_linears)


def test_weights_bytes_shrink_in_the_expected_order(tiny_recipe):
    sizes = {v: models.weights_bytes(tiny_recipe(v)[0])["total"] for v in ("fp32", "fp16", "int8", "int4")}
    assert sizes["fp32"] > sizes["fp16"] > sizes["int8"] > sizes["int4"]


@pytest.mark.parametrize("recipe", ["int8", "int4", "float8", "int8-lm"])
def test_quanto_save_and_reload_round_trip_is_exact(recipe, tmp_path, tiny_recipe):
    model, tokenizer = tiny_recipe(recipe)
    quantization.save_quantized(model, tmp_path / recipe)
    reloaded = quantization.load_quantized(tmp_path / recipe, device="cpu")
    before, after = folding.fold(model, tokenizer, SEQ), folding.fold(reloaded, tokenizer, SEQ)
    assert np.array_equal(before.positions, after.positions) and np.array_equal(before.plddt, after.plddt)
    assert before.ptm == after.ptm and before.pdb == after.pdb
    assert quantization.quantized_linears(reloaded) == quantization.quantized_linears(model)


def test_quantize_on_load_refuses_save_pretrained(tmp_path, tiny_recipe):
    model, _ = tiny_recipe("int8")
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
    assert parts == pytest.approx(times["total (s)"], rel=1e-6)
    weights = models.weights_bytes(tiny[0])["total"] / 1024**3
    # each stage's peak includes the weights; the trunk's pair activations make it the largest on this model
    assert all(times[k] > weights for k in times if k.endswith("peak (GiB)"))
