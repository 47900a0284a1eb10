"""The series' T4 plan (figures/t4_plan.csv): what every notebook's Run all does, made from the notebooks' own
rehearsal — and the promises it lets us check."""

import math
import re
from pathlib import Path

import pandas as pd
import pytest

from helpers import gpu, rehearsal
from tools import plan

COMMITTED = pd.read_csv(plan.PLAN_CSV)
TOTALS = plan.totals(COMMITTED)
#: The longest a notebook's Run all may take on a free Colab runtime, download included (minutes).
BUDGET_MINUTES = {"07": 45}
DEFAULT_BUDGET_MINUTES = 30
MAX_CHECKPOINT_READS = 6
#: Notebook 08 on a CPU with bf16 instructions compares six recipes in section 6, each loaded once.
CHECKPOINT_READS = {"08": 7}
SOLUTION_LIMIT_SECONDS = 60


def test_committed_plan_data_covers_every_notebook_and_states_its_provenance():
    assert set(COMMITTED["notebook"]) == {path.stem for path in plan.series()}
    assert COMMITTED["provenance"].str.contains("ESTIMATES").all()
    assert COMMITTED["provenance"].str.contains("no T4 was measured").all()


def _same_as_committed(fresh_rows: list[dict], committed: pd.DataFrame) -> None:
    fresh, committed = plan.what_it_does(pd.DataFrame(fresh_rows)), plan.what_it_does(committed)
    for notebook in committed["notebook"].unique():
        now, then = fresh[fresh["notebook"] == notebook], committed[committed["notebook"] == notebook]
        assert now.reset_index(drop=True).equals(then.reset_index(drop=True)), (
            f"{notebook}'s loads and folds changed: run `python -m tools.plan {notebook[:2]}`\n"
            f"now:\n{now.to_string()}\ncommitted:\n{then.to_string()}")


@pytest.mark.after_notebooks
def test_the_committed_plan_is_what_the_notebooks_do_now(request):
    """The rehearsal that just ran the notebooks (under nbmake, or here if they did not run in this session) must give
    the committed plan's loads, reads and folds: change a notebook, and `python -m tools.plan` must follow. The CPU
    notebook as its other planned CPU classes: the slow test below."""
    log_dir = Path(request.config.rehearsal_log)
    fresh = []
    for path in plan.series():
        fresh += plan.rehearse_rows(path, log_dir, other_classes=False)
    first_class = COMMITTED["CPU class"].isna() | (COMMITTED["CPU class"] == plan.PLANNED_CPU_CLASSES[0])
    _same_as_committed(fresh, COMMITTED[first_class])


@pytest.mark.slow
def test_the_committed_plan_of_the_cpu_notebook_as_each_other_class(tmp_path):
    """Notebook 08 rehearsed again as each other planned CPU class (a bf16 CPU loads more recipes to compare)."""
    path = next(p for p in plan.series() if p.stem.startswith("08"))
    rows = [row for row in plan.rehearse_rows(path, tmp_path) if row.get("CPU class") != plan.PLANNED_CPU_CLASSES[0]]
    others = COMMITTED[COMMITTED["notebook"].eq(path.stem) & COMMITTED["CPU class"].isin(plan.PLANNED_CPU_CLASSES[1:])]
    assert rows and not others.empty
    _same_as_committed(rows, others)


def test_committed_plan_data_the_totals_table_is_the_plan_s_totals():
    committed = pd.read_csv(plan.TOTALS_CSV)
    pd.testing.assert_frame_equal(committed.drop(columns="provenance"), TOTALS, check_dtype=False)
    assert committed.set_index("notebook")["provenance"].equals(COMMITTED.groupby("notebook")["provenance"].first())


def test_committed_plan_data_every_fold_that_may_not_fit_is_shown_on_purpose():
    folds = COMMITTED[COMMITTED["event"] == "fold"]
    at_risk = folds[folds["verdict"].isin(["over", "borderline"])]
    assert len(at_risk) >= 1  # out-of-memory is a path the series shows, not one it hides
    unprepared = at_risk[at_risk["prepared for out-of-memory"].astype(str) != "True"]
    assert unprepared.empty, unprepared[["notebook", "cell", "recipe", "length", "verdict"]]
    assert (at_risk["out of memory"].astype(str) == "True").all()  # the rehearsal made each of them run out


def test_committed_plan_data_no_solution_cell_loads_or_folds_for_more_than_a_t4_minute():
    # Run all executes every solution cell: its loads, reads, folds and own CPU work together stay within the minute
    solutions = COMMITTED[COMMITTED["solution"].astype(str) == "True"]
    per_cell = solutions.groupby(["notebook", "cell"])["estimated seconds"].sum()
    assert (per_cell <= SOLUTION_LIMIT_SECONDS).all(), per_cell[per_cell > SOLUTION_LIMIT_SECONDS]


def test_committed_plan_data_every_notebook_fits_its_budget():
    for _, row in TOTALS.iterrows():
        budget = BUDGET_MINUTES.get(row["notebook"][:2], DEFAULT_BUDGET_MINUTES)
        assert row["minutes"] <= budget, (row["notebook"], row["minutes"])
        reads = CHECKPOINT_READS.get(row["notebook"][:2], MAX_CHECKPOINT_READS)
        assert row["checkpoint reads"] <= reads, (row["notebook"], row["checkpoint reads"])


def test_committed_plan_data_long_folds_run_one_trunk_pass():
    """A fold estimated at more than two T4 minutes with the default 4 passes runs one pass instead."""
    folds = COMMITTED[(COMMITTED["event"] == "fold") & (COMMITTED["runtime"] == "gpu")]
    model = plan._per_pass_curves()
    for _, row in folds.iterrows():
        default = plan.gpu_fold_seconds({**row.to_dict(), "trunk passes": 4}, model)[1]
        if default > 120:
            assert row["trunk passes"] == 1, (row["notebook"], row["cell"], row["length"], default)


def test_the_headers_the_readme_and_the_guide_show_the_plan():
    for path, text in plan.renderings(TOTALS).items():
        assert path.read_text() == text, f"{path.name} does not show the plan: run `python -m tools.plan --render`"
    for _, row in TOTALS.iterrows():
        script = (plan.ROOT / "notebooks" / f"{row['notebook']}.py").read_text()
        assert f"about {math.ceil(row['minutes'])} minutes" in script
        header = plan.HEADER.search(script).group()
        assert len(header.splitlines()) <= 2 and plan.SOURCES_PAGE in re.sub(r"\n# ", " ", header)  # a line, a link


def test_the_time_model_scales_h100_measurements_by_the_cited_factors():
    model = plan._per_pass_curves()
    fold = {"length": 480, "lean": False, "recipe": "fp16", "trunk passes": 4}
    h100, t4 = plan.gpu_fold_seconds(fold, model)
    measured = plan._h100_rows()
    fp16_480 = measured[(measured["recipe"] == "fp16") & (measured["length"] == 480)
                        & (measured["trunk passes"].astype(float) == 4)]["seconds"].median()
    assert h100 == pytest.approx(fp16_480, rel=0.1)
    outside, passes = plan.gpu_work_seconds(fold, model)
    assert t4 == pytest.approx(outside * plan.MEMORY_FACTOR + passes * plan.COMPUTE_FACTOR)  # GPU-bound at 480 aa
    one_pass = plan.gpu_fold_seconds({**fold, "trunk passes": 1}, model)[1]
    assert one_pass < t4 / 3


def test_a_short_fold_costs_its_fixed_host_time_not_the_h100_time_scaled_by_the_gpu_ratios():
    model = plan._per_pass_curves()
    measured = plan._h100_rows()
    shortest = measured[(measured["step"] == "fold") & (measured["recipe"] == "fp16")
                        & (measured["trunk passes"].astype(float) == 4)]
    shortest = shortest[shortest["length"] == shortest["length"].min()]["seconds"]
    fold = {"length": int(model["shortest"]), "lean": False, "recipe": "fp16", "trunk passes": 4}
    fixed = plan.fixed_seconds(fold, model)
    assert shortest.min() <= fixed <= shortest.max()  # the fixed cost is what the shortest folds took on the H100
    h100, t4 = plan.gpu_fold_seconds(fold, model)
    assert t4 == pytest.approx(fixed * plan.HOST_FACTOR)  # host-bound: the host factor, not the GPU ratios
    assert t4 < h100 * plan.COMPUTE_FACTOR / 2
    # the same holds at the lengths where the H100's time does not grow yet: 30 and 65 aa cost the same
    assert plan.gpu_fold_seconds({**fold, "length": 65}, model)[1] == pytest.approx(t4)
    # a quantized trunk's host time is its own shortest folds'
    assert plan.fixed_seconds({**fold, "recipe": "int8"}, model) > fixed


def test_a_padded_batch_pays_the_fixed_cost_once_per_call():
    model = plan._per_pass_curves()
    one = {"length": 76, "lean": False, "recipe": "fp16", "trunk passes": 4, "batch": 1}
    single = plan.gpu_fold_seconds(one, model)[1]
    batch = plan.gpu_fold_seconds({**one, "batch": 6}, model)[1]
    assert batch < 6 * single  # not six fixed costs
    outside, passes = plan.gpu_work_seconds(one, model)
    gpu = outside * plan.MEMORY_FACTOR + passes * plan.COMPUTE_FACTOR
    assert batch == pytest.approx(max(plan.fixed_seconds(one, model) * plan.HOST_FACTOR, 6 * gpu))
    long = {**one, "length": 480}
    assert plan.gpu_fold_seconds({**long, "batch": 3}, model)[1] == pytest.approx(
        3 * plan.gpu_fold_seconds(long, model)[1])  # GPU-bound: every sequence's work counts


def test_the_cpu_notebook_is_planned_as_its_slowest_class_of_cpu_including_the_extra_loads_of_a_bf16_cpu():
    cpu_rows = COMMITTED[COMMITTED["runtime"] == "cpu"]
    assert set(cpu_rows["CPU class"]) == set(plan.PLANNED_CPU_CLASSES)
    for name, whole in cpu_rows.groupby("notebook"):
        minutes = {c: part["estimated seconds"].sum() / 60 for c, part in whole.groupby("CPU class")}
        row = TOTALS.set_index("notebook").loc[name]
        assert row["minutes"] == pytest.approx(max(minutes.values()))
        assert row["planned as"] == max(minutes, key=minutes.get)
        loads = {c: int((part["event"] == "load").sum()) for c, part in whole.groupby("CPU class")}
        assert row["loads"] == loads[row["planned as"]] and max(loads.values()) > min(loads.values())


def test_interpolation_passes_through_the_points_and_grows_as_a_power_law_between_them():
    points = [(100, 1.0), (200, 8.0)]
    assert plan._interpolate(points, 100) == 1.0 and plan._interpolate(points, 200) == 8.0
    assert plan._interpolate(points, 150) == pytest.approx(1.5**3)
    assert plan._interpolate(points, 50) == 1.0  # below the shortest: the launch-bound floor
    assert plan._interpolate(points, 400) == pytest.approx(64.0)  # beyond: L³


def test_a_rehearsed_fold_becomes_a_plan_row_with_its_verdict_and_seconds(tmp_path, monkeypatch):
    from helpers import folding, models

    monkeypatch.setenv(rehearsal.LOG_ENV, str(tmp_path))
    rehearsal.install(on_gpu=True)
    try:
        model, tokenizer = models.load_model("fp16", device="cpu", source="tiny", chunk_size=64)
        folding.fold(model, tokenizer, "MKTAYIAKQR" * 26)
    finally:
        rehearsal.uninstall()
    events = [e for line in next(tmp_path.glob("*.jsonl")).read_text().splitlines()
              if (e := __import__("json").loads(line))["event"] in ("load", "fold")]
    rows = plan.plan_rows(Path("01_x.ipynb"), [{**e, "cell": 1, "section": "s", "solution": False} for e in events])
    fold = next(r for r in rows if r["event"] == "fold")
    assert (fold["recipe"], fold["length"], fold["verdict"]) == ("fp16", 260, "fits")
    assert fold["estimated seconds"] > 0 and fold["budget (GiB)"] == pytest.approx(gpu.T4.usable_gib)
    load = next(r for r in rows if r["event"] == "load")
    assert load["checkpoint reads"] == 1 and load["estimated seconds"] >= plan.CHECKPOINT_BYTES / (plan.DISK_MB_S * 1e6)


def test_an_optional_section_stays_outside_the_run_all_total_and_states_its_own_minutes():
    rows = pd.DataFrame([
        {"notebook": "99_x", "runtime": "gpu", "event": "setup and download", "checkpoint reads": 0, "verdict": None,
         "estimated seconds": 60.0, "optional": False},
        {"notebook": "99_x", "runtime": "gpu", "event": "fold", "checkpoint reads": 0, "verdict": "fits",
         "estimated seconds": 120.0, "optional": False},
        {"notebook": "99_x", "runtime": "gpu", "event": "fold", "checkpoint reads": 0, "verdict": "fits",
         "estimated seconds": 570.0, "optional": True}])
    row = plan.totals(rows).iloc[0].to_dict()
    assert row["minutes"] == pytest.approx(3.0) and row["optional minutes"] == pytest.approx(9.5)
    assert row["folds"] == 1  # the optional fold is not part of Run all with the section off
    assert "the optional last section adds about 10" in plan.header_line(row)
    assert plan.table_cell(row) == "≈ 3 min (+ 10 optional), download included"
    line = plan.optional_line(row)
    assert plan.OPTIONAL.fullmatch(line) and "about 10 minutes" in line
    # a committed notebook with an optional section shows the plan's minutes for it
    for _, total in TOTALS[TOTALS["optional minutes"] > 0].iterrows():
        script = (plan.ROOT / "notebooks" / f"{total['notebook']}.py").read_text()
        assert plan.optional_line(total) in script


def test_a_cpu_rehearsal_answers_as_the_class_it_is_told_and_chooses_that_class_s_recipe(tmp_path, monkeypatch):
    import torch

    from helpers import cpu

    monkeypatch.setenv(rehearsal.LOG_ENV, str(tmp_path))
    rehearsal.install(on_gpu=False)
    try:
        assert cpu.cpu_class() == cpu.COLAB_CPU_CLASS and cpu.choose_recipe()[0] == cpu.FP32_ARITHMETIC_RECIPE
        monkeypatch.setenv(cpu.REHEARSAL_CLASS_ENV, plan.PLANNED_CPU_CLASSES[-1])
        cpu.probe_gflops.cache_clear()
        assert cpu.cpu_class() == plan.PLANNED_CPU_CLASSES[-1]
        speedup = cpu.matmul_gflops(torch.bfloat16) / cpu.matmul_gflops(torch.float32)
        assert cpu.choose_recipe(speedup)[0] == cpu.BF16_RECIPE  # the bf16 CPU of the plan's second rehearsal
    finally:
        rehearsal.uninstall()
        cpu.probe_gflops.cache_clear()
