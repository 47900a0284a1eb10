"""The "will it fit?" predictor: exact on the tiny model, the right floors and growth on the full-size architecture."""

import re

import pandas as pd
import pytest
import torch

from helpers import benchmark, data, fit, folding, gpu, memory, models, recipes
from tools import figures

GIB = 1024**3


def test_counter_counts_storages_once_and_frees_them():
    counter = memory.LiveBytes()
    with counter:
        a = torch.ones(1000)  # 4,000 bytes
        view = a[:10]  # a view adds nothing
        b = torch.ones(500, dtype=torch.float64)  # 4,000 bytes
        assert counter.live == 8000
        del b
        assert counter.live == 4000
        c = a * 2  # a new 4,000-byte tensor
        del c, view
    assert counter.peak == 8000 and counter.live == 4000
    del a


@pytest.mark.parametrize("recipe, chunk", [("fp32", None), ("fp32", 8), ("fp16", None)])
def test_fake_trace_equals_the_count_of_a_real_run_on_the_tiny_model(recipe, chunk):
    length = 40
    # one trunk pass on both sides (the counts are compared, not the default's; tests/test_lean.py checks the passes)
    weights, peak = fit.FakeFolder(fit.activation_profile(recipe), "tiny").trace(length, chunk, num_recycles=0)[:2]
    model, tokenizer = models.load_model(recipe, device="cpu", source="tiny")
    model.trunk.set_chunk_size(chunk)
    counter = memory.LiveBytes()
    ids = tokenizer(["A" * length], return_tensors="pt", add_special_tokens=False)["input_ids"]
    fit.clear_model_caches()  # cached constant tensors would otherwise exist already and not be counted
    with counter, torch.no_grad():
        assert counter.track_module(model) == weights
        counter.reset_peak()
        model(ids, num_recycles=0)
    # the same code on real tensors allocates the same bytes (to within a few hundred bytes of small constants)
    assert counter.peak == pytest.approx(peak, abs=1024)


def test_a_fake_trace_leaves_real_folding_working(tiny):
    fit.FakeFolder(recipes.FP32_ACTIVATIONS, "tiny").trace(20, num_recycles=0)
    result = folding.fold(*tiny, "MKTVRQERLKSIVRILERSK")
    assert result.positions.shape == (20, 14, 3)


@pytest.mark.parametrize("chunk", [None, 8])
def test_two_traced_passes_peak_as_the_default_four(chunk):
    """A trace of the default recycles runs fit.TRACED_PASSES trunk passes: the original trunk's later passes allocate
    as its second does, so the peak is the four passes' exactly (the lean trunk: tests/test_lean.py)."""
    folder = fit.FakeFolder(recipes.LM16_ACTIVATIONS, "tiny")
    assert fit.TRACED_PASSES == 2
    assert folder.trace(24, chunk).peak == folder.trace(24, chunk, num_recycles=3).peak


def test_chunking_lowers_the_tiny_peak():
    folder = fit.FakeFolder(recipes.FP32_ACTIVATIONS, "tiny")
    assert folder.trace(64, 16, num_recycles=0)[1] < folder.trace(64, None, num_recycles=0)[1]


@pytest.fixture(scope="module")
def grid():
    return fit.predicted_grid()


def test_full_size_weights_floors(grid):
    counts = models.component_parameters(models.meta_model("random-full"))
    lm = counts["language model (ESM-2)"]
    fp32 = grid[grid["recipe"] == "fp32"]["weights (GiB)"].iloc[0] * GIB
    fp16 = grid[grid["recipe"] == "fp16"]["weights (GiB)"].iloc[0] * GIB
    assert fp32 == pytest.approx(counts["total"] * 4, abs=20_000)  # + a few kB of buffers
    assert fp16 == pytest.approx(lm * 2 + (counts["total"] - lm) * 4, abs=20_000)
    int8 = grid[grid["recipe"] == "int8"]["weights (GiB)"].iloc[0] * GIB
    assert int8 == models.expected_weights_bytes("int8")["total"]  # the predictor's weights: from the architecture


def test_committed_weights_data_are_the_bytes_computed_from_the_architecture():
    """Checks figures/03_recipe_weights.csv (each recipe loaded on a CPU and its tensors counted) against
    `models.expected_weights_bytes`, which the predictor uses, for every recipe and stage."""
    table = pd.read_csv(figures.figures_dir() / "03_recipe_weights.csv").set_index("recipe")
    assert set(table.index) == set(recipes.shown_in(recipes.WEIGHTS_TABLE))
    for recipe, row in table.iterrows():
        computed = models.expected_weights_bytes(recipe)
        assert {stage: int(row[stage]) for stage in computed} == computed, recipe


@pytest.mark.parametrize("recipe", recipes.shown_in(recipes.HARDWARE_TABLE))
@pytest.mark.parametrize("chunk", ["none", "32"])
def test_predicted_peak_grows_with_length(grid, recipe, chunk):
    part = grid[(grid["recipe"] == recipe) & (grid["chunk size"].astype(str) == chunk)].sort_values("length")
    assert len(part) >= 5
    assert part["predicted peak allocated (GiB)"].is_monotonic_increasing
    assert (part["predicted peak allocated (GiB)"] > part["weights (GiB)"]).all()


@pytest.mark.slow  # ≈ 30 s; notebook 04 runs a full-size trace under nbmake in every `make test`
def test_a_fresh_full_size_trace_matches_the_committed_grid_and_seed_comparison():
    """One live fake-tensor trace of the full-size model (≈ 40 s on 2 cores) checks both committed tables that were
    made from such traces: the grid (fp16 LM, 256 aa, unchunked) and the seed comparison at the same point."""
    result = fit.predict_peak("fp16", 256, chunk_size=None)
    assert fit.lookup_or_predict("fp16", 256, None) == pytest.approx(result["predicted peak allocated (GiB)"], rel=1e-9)
    table = pd.read_csv(figures.figures_dir() / "04_seed_comparison.csv").set_index(["seed recipe", "length"])
    assert result["predicted nvidia-smi (GiB)"] == pytest.approx(table.loc[("fp16-seed", 256), "nvidia-smi estimate (GiB)"],
                                                                 abs=0.006)


@pytest.mark.parametrize("seed_recipe", sorted(data.SEED_MEMORY_GB))
def test_the_nvidia_smi_estimate_is_at_or_above_the_seed_s_reading_on_the_grid_by_at_most_10_percent(seed_recipe):
    """Computed now: at the seed's one length on the grid (256 aa) the estimate lies at or above its nvidia-smi
    reading (GB, converted to GiB), by at most 10 %."""
    reading = data.SEED_MEMORY_GB[seed_recipe][256] * 1e9 / GIB
    estimate = fit.predicted_nvidia_smi(recipes.folds_as(seed_recipe), 256, None)
    assert 1.0 <= estimate / reading <= 1.10, (estimate, reading)


def test_committed_seed_comparison_data_the_estimate_is_at_or_above_every_seed_reading_by_at_most_10_percent():
    """Checks the committed figures/04_seed_comparison.csv (its lengths 30 and 480 are off the grid: traced when it
    was made): at every reading of the seed the estimate lies at or above it, by at most 10 %."""
    table = pd.read_csv(figures.figures_dir() / "04_seed_comparison.csv")
    cited = table[table["estimate / seed"] != "—"]
    assert len(cited) == 9
    ratios = cited["estimate / seed"].astype(float)
    assert (ratios >= 1.0).all() and (ratios <= 1.10).all(), cited


def test_the_estimate_is_the_trace_plus_the_measured_terms():
    allocated, weights = 10.0, 4.0
    plain = fit.nvidia_smi_estimate("fp16", allocated, weights)
    assert plain == pytest.approx(allocated + fit.CACHE_SHARE * 6.0 + fit.CUDA_CONTEXT_GIB)
    assert fit.nvidia_smi_estimate("int8", allocated, weights) == pytest.approx(plain + fit.QUANTO_ALLOWANCE_GIB)
    assert fit.nvidia_smi_estimate("torchao-int8wo", allocated, weights) == pytest.approx(plain)


def test_committed_gpu_check_data_the_context_constant_is_the_measured_one():
    check = pd.read_csv(figures.figures_dir() / "09_gpu_check.csv")
    context = check[check["step"] == "context"].iloc[0]
    assert fit.CUDA_CONTEXT_GIB == pytest.approx(context["nvidia-smi after (GiB)"] - context["reserved after (GiB)"],
                                                 abs=0.01)


def test_the_predictor_is_within_3_percent_of_every_gpu_measurement_on_its_grid():
    """The prediction computed now, against every fold an H100 measured (figures/09_gpu_vs_predicted.csv) at a point
    of the committed grid with the original trunk (the lean rows were measured with the first seven changes only)."""
    table = pd.read_csv(figures.figures_dir() / "09_gpu_vs_predicted.csv")
    table = table[(table["status"] == "ok") & (table["lean trunk"].astype(str) != "True")
                  & table["length"].isin(fit.GRID_LENGTHS)]
    assert len(table) >= 10
    for _, row in table.iterrows():
        chunk = None if row["chunk size"] == "none" else int(row["chunk size"])
        predicted = fit.lookup_or_predict(recipes.folds_as(row["recipe"]), int(row["length"]), chunk)
        assert 0.97 < row["peak allocated (GiB)"] / predicted < 1.03, row[["recipe", "length", "chunk size"]]


def test_committed_gpu_data_every_fold_within_3_percent_and_none_predicted_to_fit_ran_out():
    """Checks the committed figures/09_gpu_vs_predicted.csv, off-grid and lean rows included (their predictions were
    traced when it was made): the trace within 3 % of every fold, and never a fold predicted to fit the T4 cap that
    ran out of memory under it."""
    table = pd.read_csv(figures.figures_dir() / "09_gpu_vs_predicted.csv")
    ok = table[table["status"] == "ok"]
    assert len(ok) >= 30
    ratio = ok["measured / predicted, allocated"]
    assert ((ratio > 0.97) & (ratio < 1.03)).all(), ok[["recipe", "length", "measured / predicted, allocated"]]
    capped = table[table["cap (GiB)"].astype(str) != "none"]
    # under the cap PyTorch may hold `cap` GiB: a fold predicted to need less (context excluded) must have fitted
    need = capped["predicted nvidia-smi (GiB)"] - fit.CUDA_CONTEXT_GIB
    predicted_to_fit = capped[need <= capped["cap (GiB)"].astype(float) - gpu.BORDERLINE_GIB]
    assert (predicted_to_fit["status"] == "ok").all(), predicted_to_fit[["recipe", "length", "chunk size", "status"]]
    assert (capped["status"] == "OOM").sum() >= 4  # the probes beyond the limits did run out of memory


T4_COLUMN = next(label for label, card in gpu.CARDS.items() if card is gpu.T4)


def _length(cell) -> int:
    return int(re.search(r"(\d+) aa", str(cell)).group(1)) if "aa" in str(cell) else 0


def test_committed_hardware_table_data_equals_the_code_that_makes_it():
    """Checks figures/04_max_length.csv (its copy on the results page: tests/test_pages.py)."""
    table = pd.read_csv(figures.figures_dir() / "04_max_length.csv")
    assert table.drop(columns="provenance").astype(str).equals(fit.hardware_table().astype(str))


def test_the_hardware_table_lists_every_recipe_and_more_memory_never_folds_less():
    table = fit.hardware_table()
    # every recipe, with chunking and with the lean trunk of notebook 07
    shown = recipes.shown_in(recipes.HARDWARE_TABLE)
    assert set(table["recipe"]) == set(shown) | {f"{name} + lean trunk" for name in shown}
    for _, row in table.iterrows():
        lengths = [_length(row[label]) for label in gpu.CARDS]
        assert lengths == sorted(lengths), row["recipe"]  # more memory never folds less
    assert table.set_index("recipe").loc["fp32", "8 GB"] == "does not fit"  # 13.1 GiB of weights
    rows = table.set_index("recipe")
    for recipe in recipes.shown_in(recipes.HARDWARE_TABLE):  # the lean trunk never folds less than chunking on a T4
        chunked, lean = (_length(rows.loc[v, T4_COLUMN]) for v in (recipe, f"{recipe} + lean trunk"))
        assert lean >= chunked, recipe


def test_a_cell_at_the_edge_of_a_card_is_marked_borderline():
    grid = fit.predicted_grid()
    part = grid[(grid["recipe"] == "int8") & (grid["chunk size"].astype(str) != fit.LEAN)]
    longest, chunk, need = fit.longest_fitting(part, gpu.T4)
    cell = fit.hardware_table().set_index("recipe").loc["int8", T4_COLUMN]
    assert cell.startswith(f"{longest} aa") and need <= gpu.T4.usable_gib
    assert cell.endswith("(borderline)") == (need > gpu.T4.usable_gib - gpu.BORDERLINE_GIB)


def test_check_fits_says_too_long_and_names_a_recipe_that_fits():
    assert fit.check_fits("fp32", 128, None, card=gpu.T4) <= gpu.T4.total_gib
    # the seed measured 16 GB (14.9 GiB, with its own GPU's context) at 256 aa: on a T4, at the edge
    assert fit.verdict("fp32", 256, None, gpu.T4)[0] == "borderline"
    with pytest.raises(fit.TooLongError, match=r"700 residues with 'fp32'.*Predicted to fit: '(fp16|int8-lm|int8|int4)'"):
        fit.check_fits("fp32", 700, None, card=gpu.T4)
    with pytest.raises(fit.TooLongError, match="No recipe"):
        fit.check_fits("int4", 1500, 32, card=4.0)
    # the length asked is the length checked: between grid points the need is interpolated, not rounded up
    assert fit.check_fits("fp16", 400, None, card=gpu.T4) < fit.check_fits("fp16", 480, None, card=gpu.T4)


def test_check_fits_checks_the_length_asked_and_says_which_grid_lengths_it_read():
    """400 residues lie between the grid's 384 and 512: the need is interpolated between the two, not rounded up to
    512's, and the message names 400 with that need and the grid lengths it was read from."""
    low, high = (fit.grid_estimate("fp16", n, None)["reserved (GiB)"] for n in (384, 512))
    need = fit.grid_estimate("fp16", 400, None)["reserved (GiB)"]
    assert low < need < high - 1.0  # 512's need is over a GiB more: rounding up would answer for another protein
    context = gpu.ASSUMED_CONTEXT_GIB  # a card given in GiB is assumed to have this context
    # a card that holds 400 residues but not 512: it fits, and the answer is 400's need
    assert fit.check_fits("fp16", 400, None, card=need + context + 0.1) == pytest.approx(need + context)
    # a card that does not: the message states 400's need, read between 384 and 512
    with pytest.raises(fit.TooLongError) as raised:
        fit.check_fits("fp16", 400, None, card=need + context - 0.1)
    message = str(raised.value)
    assert message.startswith(f"400 residues with 'fp16' (chunk size none) are predicted to need about {need:.1f} GiB "
                              "(interpolated between 384 and 512 residues of the committed grid)"), message
    assert f"{high:.1f} GiB" not in message.split("Predicted to fit")[0]
    # a chunk size the grid lacks is read at the next larger one, and the message says so
    with pytest.raises(fit.TooLongError, match=r"chunk size 48, read as chunk size 64"):
        fit.check_fits("fp16", 400, 48, card=4.0)


def test_sweep_measures_every_point_and_the_prediction_matches_on_cpu():
    fit.clear_model_caches()
    fp32 = benchmark.sweep(["fp32"], [12, 24], [None, 8], "cpu", source="tiny", num_recycles=0)
    assert len(fp32) == 4 and (fp32["status"] == "ok").all()
    assert set(fp32["sequence"]) == {"UniProt P0DTC2 residues 1–12", "UniProt P0DTC2 residues 1–24"}
    # on a CPU the measured peak is the live tensor bytes of the real run: the fake-tensor prediction must match it
    assert ((fp32["predicted peak allocated (GiB)"] - fp32["peak allocated (GiB)"]).abs() * GIB < 4096).all()
    int8 = benchmark.sweep(["int8"], [12], [8], "cpu", source="tiny", num_recycles=0)  # one point is enough
    assert len(int8) == 1 and (int8["status"] == "ok").all()
    assert (int8["weights (GiB)"] < fp32["weights (GiB)"].iloc[0]).all()


def test_results_are_fetched_from_the_published_repo_when_there_is_no_checkout(monkeypatch, tmp_path):
    """In Colab the helpers are pip-installed without figures/: repo_file must download them at the pinned ref."""
    import urllib.request

    seen = []

    class Response:
        def __init__(self, url):
            seen.append(url)

        def read(self):
            return b"recipe,total\nint8,1\n"

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(data, "repo_root", lambda: tmp_path / "site-packages")
    monkeypatch.setenv("ESMFOLD_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: Response(url))
    path = data.repo_file("figures/03_recipe_weights.csv")
    assert seen == [f"https://raw.githubusercontent.com/{data.REPO}/{data.REF}/figures/03_recipe_weights.csv"]
    assert path.read_text().startswith("recipe,total") and data.repo_file("figures/03_recipe_weights.csv") == path
    assert len(seen) == 1  # cached


def test_committed_grid_data_the_lean_trunk_holds_at_most_two_and_a_half_pair_tensors_at_long_lengths():
    """Checks the committed lean grid (figures/04_predicted_grid.csv): from 2,048 residues on, the trunk's
    activations with the language model parked stay within 2.5 fp32 pair tensors, and the grid reaches 3,072."""
    grid = pd.read_csv(figures.figures_dir() / "04_predicted_grid.csv")
    lean = grid[grid["chunk size"].astype(str) == fit.LEAN]
    assert set(lean["length"]) == set(fit.LEAN_GRID_LENGTHS) and max(fit.LEAN_GRID_LENGTHS) >= 3072
    long = lean[lean["length"] >= 2048]
    pairs = long["activation bytes, LM parked"] / (long["length"] ** 2 * 128 * 4)
    assert len(long) == 6 and (pairs <= 2.5).all(), pairs


def test_the_t4_limits_of_the_lean_trunk_reach_three_thousand_residues_with_int8():
    """Computed from the committed grid by the hardware table's code: int8 + lean ≥ 3,000 aa on a free T4, fp16 + lean
    ≥ 2,000, fp16-offload + lean ≥ 2,500."""
    rows = fit.hardware_table().set_index("recipe")
    for recipe, at_least in (("int8", 3000), ("fp16", 2000), ("fp16-offload", 2500)):
        assert _length(rows.loc[f"{recipe} + lean trunk", T4_COLUMN]) >= at_least, recipe


def test_the_hardware_table_states_its_t4_margin_in_pair_tensors_at_the_limit():
    table = fit.hardware_table()
    grid = fit.predicted_grid()
    for _, row in table.iterrows():
        recipe, lean = row["recipe"].replace(" + lean trunk", ""), row["recipe"].endswith(" + lean trunk")
        part = grid[(grid["recipe"] == recipe) & ((grid["chunk size"].astype(str) == fit.LEAN) == lean)]
        length, _, need = fit.longest_fitting(part, gpu.T4)
        left = row[fit.T4_MARGIN] * length**2 * 128 * 4 / GIB  # pair tensors back to GiB
        assert left == pytest.approx(gpu.T4.usable_gib - need, abs=0.005 * length**2 * 128 * 4 / GIB), row["recipe"]
    sentence = fit.t4_margin_sentence(table)
    int8 = table.set_index("recipe").loc["int8 + lean trunk", fit.T4_MARGIN]
    assert f"int8 + lean trunk {int8:.2f} at 3,072 aa" in sentence and int8 < 1  # less than one pair tensor to spare
