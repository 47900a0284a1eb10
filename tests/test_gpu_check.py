"""The prepared GPU check (tools/gpu_check.py): rehearsed on the CPU with the tiny stand-in, so that a change that
breaks it fails here and not on a rare, 15-minute GPU lease."""

import pandas as pd
import pytest
import torch

from helpers import fit, gpu, models
from tools import gpu_check


@pytest.mark.parametrize("plan", sorted(gpu_check.PLANS))
def test_every_planned_row_runs_on_the_cpu_with_cuda_readings_marked(tmp_path, plan):
    check = gpu_check.Check(tmp_path, "tiny", budget_s=float("inf"), max_length=40, plan=plan)  # every row runs
    check.run()
    table = pd.read_csv(check.csv)
    steps = gpu_check.PLANS[plan]()
    loads, folds = table[table["step"] == "load"], table[table["step"] == "fold"]
    assert list(loads["recipe"]) == [s.recipe for s in steps]
    assert len(folds) == sum(len(s.folds) for s in steps)
    assert (table.loc[table["step"].isin(["load", "fold"]), "status"] == "ok").all(), table[["recipe", "status"]]
    # no CUDA here: every GPU reading is left empty and the row says why
    assert table["peak allocated (GiB)"].isna().all() and table["nvidia-smi peak (GiB)"].isna().all()
    assert folds["why"].str.contains("no CUDA: GPU readings skipped").all()
    assert folds["why"].str.contains(r"rehearsal: \d+ shortened to 40").any()
    # provenance on every row
    for column in ("device", "torch", "transformers", "optimum-quanto", "date", "weights"):
        assert table[column].notna().all(), column
    assert table["weights"].str.startswith("tiny (random parameters").all()


def test_the_time_budget_skips_rows_and_says_so(tmp_path):
    check = gpu_check.Check(tmp_path, "tiny", budget_s=0, max_length=40)
    check.run()
    table = pd.read_csv(check.csv)
    rows = table[table["step"].isin(["load", "fold"])]
    assert (rows["status"] == "skipped").all() and (rows["why"] == "time budget spent").all()


def test_the_plan_covers_the_seed_the_t4_limits_and_the_lean_trunk():
    steps = {s.recipe: s for s in gpu_check.plan()}
    assert {"fp32", "fp16-seed", "fp16", "int8", "int4"} <= set(steps)
    for recipe in ("fp32", "fp16-seed", "fp16", "int8", "int4"):
        default = [f.length for f in steps[recipe].folds if f.recycles is None and not f.lean and f.chunk is None]
        assert default == list(gpu_check.SEED_LENGTHS)
    assert steps["fp32"].cap is None and steps["int8"].cap == gpu_check.T4_CAP_GIB
    for recipe in ("fp16", "int8"):  # the hardware table's T4 limit and one grid step beyond it
        (length, chunk), beyond = gpu_check.t4_limit(recipe)
        table = fit.hardware_table().set_index("recipe")
        t4_column = next(label for label, card in gpu.CARDS.items() if card is gpu.T4)
        assert table.loc[recipe, t4_column].startswith(f"{length} aa (chunk {chunk or 'none'})")
        probed = [(f.length, f.chunk) for f in steps[recipe].folds if f.recycles == 0 and not f.lean]
        assert (length, chunk) in probed and beyond in probed and beyond[0] > length
    assert sorted({f.length for f in steps["int8"].folds if f.lean}) == [1000, 2000]


def test_the_long_plan_probes_each_lean_t4_limit_after_shorter_folds_fresh_and_beyond():
    steps = gpu_check.plan_long()
    assert [s.recipe for s in steps] == ["int8", "int8", "fp16", "fp16", "fp16-offload", "fp16-offload"]
    table = fit.hardware_table().set_index("recipe")
    t4_column = next(label for label, card in gpu.CARDS.items() if card is gpu.T4)
    for session, fresh in zip(steps[::2], steps[1::2]):
        (limit, _), beyond = gpu_check.t4_limit(session.recipe, lean_trunk=True)
        assert str(limit) in table.loc[f"{session.recipe} + lean trunk", t4_column]
        lengths = [f.length for f in session.folds]
        assert lengths[-1] == limit and lengths == sorted(lengths) and len(lengths) > 1  # shorter folds first
        assert [f.length for f in fresh.folds] == [limit, beyond[0]] and beyond[0] > limit
        assert all(f.lean and f.recycles == 0 for f in session.folds + fresh.folds)
        assert session.cap == fresh.cap == gpu_check.T4_CAP_GIB
    assert {2000, 3000} <= {f.length for s in steps for f in s.folds}  # seconds per trunk pass at both


def test_python_unpack_matches_quantos_kernel():
    """The GPU check routes Quanto's int4 unpacking to plain PyTorch (no nvcc build in a short lease): it must give
    the bytes Quanto's own compiled kernel gives."""
    pytest.importorskip("optimum.quanto")
    generator = torch.Generator().manual_seed(0)
    for bits in (2, 4):
        packed = torch.randint(0, 256, (96, 40), dtype=torch.uint8, generator=generator)
        assert torch.equal(gpu_check.unpack_bits(packed, bits), torch.ops.quanto.unpack(packed, bits))


def test_loading_int8_the_transformers4_way_quantizes_every_linear(tmp_path):
    pytest.importorskip("optimum.quanto")
    from optimum.quanto.nn import QModuleMixin

    model, _ = gpu_check.load_int8_v4("cpu", "tiny")
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert linears and all(isinstance(m, QModuleMixin) for m in linears)
    reference = models.weights_bytes(models.load_model("int8", device="cpu", source="tiny")[0])["total"]
    assert models.weights_bytes(model)["total"] == pytest.approx(reference, rel=0.02)


def test_the_3056_plan_folds_int8_lean_twice_in_one_process_and_reads_parking_and_the_kernel(tmp_path):
    steps = gpu_check.plan_t4_3056()
    assert [(s.recipe, s.cap) for s in steps] == [("int8", gpu_check.T4_CAP_GIB)]
    assert [(f.length, f.lean, f.recycles) for f in steps[0].folds] == [(3056, True, 0)] * 2
    assert gpu_check.PLAN_BUDGETS["t4-3056"] < 8 * 60
    check = gpu_check.Check(tmp_path, "tiny", budget_s=float("inf"), max_length=40, plan="t4-3056")
    check.run()
    table = pd.read_csv(check.csv)
    folds = table[table["step"] == "fold"]
    assert len(folds) == 2 and (folds["status"] == "ok").all()
    # the kernel is read once, when the model is made lean; the second fold reuses the lean model (and its parking)
    assert folds["attention kernel"].iloc[0].startswith("aten::_scaled_dot_product") and pd.isna(folds["attention kernel"].iloc[1])
    # on the CPU nothing is parked, and the row says why
    assert (folds["LM parked"] == False).all() and folds["why"].str.contains("not parked: the language model is on cpu").all()  # noqa: E712
    assert table["allocator settings"].notna().all() and (table[table["step"] == "context"]["status"] == "skipped").all()
