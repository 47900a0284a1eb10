"""The lean trunk (notebook 07): the same numbers as the original model, far less memory, understood by the predictor."""

import numpy as np
import pytest
import torch

from helpers import fit, folding, gpu, lean, memory, models, recipes

SEQS = ["MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ", "GSHMLEDPV", "ACDEFGHIKLMNPQRSTVWYACDEFGHIK"]
#: Tolerances of lean vs original on the tiny model (fp32; differences come from summation order in chunked matmuls
#: and SDPA): coordinates in Å, pLDDT on the 0–100 scale, pTM.
POSITIONS_ATOL, PLDDT_ATOL, PTM_ATOL = 1e-3, 1e-2, 1e-4


@pytest.fixture(scope="module")
def model():
    model, tokenizer = models.load_model("fp32", device="cpu", source="tiny")
    yield model, tokenizer
    lean.undo_lean(model)


def _close(reference, results):
    for a, b in zip(reference, results):
        assert np.abs(a.positions - b.positions).max() < POSITIONS_ATOL
        assert np.abs(a.plddt - b.plddt).max() < PLDDT_ATOL
        assert abs(a.ptm - b.ptm) < PTM_ATOL


@pytest.mark.parametrize("options", [lean.LeanOptions.only(c, rows=4) for c in lean.CHANGES]
                         + [lean.LeanOptions(rows=3), lean.LeanOptions(positions=64), lean.LeanOptions()],
                         ids=list(lean.CHANGES) + ["all, 3 rows", "all, 64 positions", "all"])
def test_each_change_gives_the_original_numbers_alone_and_in_a_padded_batch(model, options):
    m, tokenizer = model
    lean.undo_lean(m)
    single = [folding.fold(m, tokenizer, SEQS[0])]
    batch = folding.fold_many(m, tokenizer, SEQS)
    lean.make_lean(m, options)
    try:
        assert lean.is_lean(m) == options
        _close(single, [folding.fold(m, tokenizer, SEQS[0])])
        _close(batch, folding.fold_many(m, tokenizer, SEQS))
    finally:
        lean.undo_lean(m)


def test_chunk_rows_follow_rows_or_the_positions_budget():
    assert lean.LeanOptions(rows=5).chunk_rows(1000) == 5
    assert lean.LeanOptions().chunk_rows(1024) == lean.AUTO_POSITIONS // 1024
    assert lean.LeanOptions(positions=lean.CPU_POSITIONS).chunk_rows(259) == lean.CPU_POSITIONS // 259 == 31
    assert lean.LeanOptions(positions=10).chunk_rows(259) == 1  # never zero rows
    assert lean._row_chunks(10, 4) == [slice(0, 4), slice(4, 8), slice(8, 10)]


def test_lean_model_outputs_keep_the_keys_users_read(model):
    m, tokenizer = model
    inputs = tokenizer([SEQS[1]], return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        original = m(**inputs)
    lean.make_lean(m)
    try:
        with torch.no_grad():
            out = m(**inputs)
        for key in ["positions", "plddt", "ptm", "ptm_logits", "predicted_aligned_error", "distogram_logits", "s_z"]:
            assert out[key] is not None and out[key].shape == original[key].shape, key
        assert torch.allclose(out["predicted_aligned_error"], original["predicted_aligned_error"], atol=1e-4)
        assert torch.allclose(out["distogram_logits"], original["distogram_logits"], atol=1e-4)
        assert out.aligned_confidence_probs is None  # not kept: softmax(ptm_logits)
        with pytest.raises(ValueError, match="inference"):
            m(**inputs, masking_pattern=torch.zeros_like(inputs["input_ids"]))
    finally:
        lean.undo_lean(m)
    assert lean.is_lean(m) is None
    with torch.no_grad():
        assert torch.equal(m(**inputs)["positions"], original["positions"])  # undo restores the exact original


def test_unknown_change_is_refused():
    with pytest.raises(ValueError, match="Unknown lean changes"):
        lean.LeanOptions.only("flash")


def test_load_model_with_the_lean_trunk():
    m, _ = models.load_model("fp32", device="cpu", source="tiny", chunk_size="lean")
    assert lean.is_lean(m) == lean.LeanOptions() and m.trunk.chunk_size is None


def test_the_lean_peak_is_lower_on_real_tensors_and_the_fake_trace_counts_it(model):
    m, tokenizer = model
    length = 48
    ids = tokenizer(["A" * length], return_tensors="pt", add_special_tokens=False)["input_ids"]

    def real_peak():
        counter = memory.LiveBytes()
        fit.clear_model_caches()
        with counter, torch.no_grad():
            weights = counter.track_module(m)
            counter.reset_peak()
            m(ids)
        return counter.peak - weights

    original = real_peak()
    lean.make_lean(m, lean.LeanOptions(rows=8))
    try:
        lean_peak = real_peak()
    finally:
        lean.undo_lean(m)
    assert lean_peak < 0.8 * original
    weights, fake_peak = fit.FakeFolder(recipes.FP32_ACTIVATIONS, "tiny", lean.LeanOptions(rows=8)).trace(length)[:2]
    # within 1 %: on this tiny model the fake trace counts ≈ 18 kB (0.7 %) more than the real run, whether or not the
    # lean changes are on (a difference outside the lean code, not explained here); at full size it is negligible
    assert fake_peak - weights == pytest.approx(lean_peak, rel=0.01)


@pytest.mark.slow  # a full-size fake-tensor trace at L = 2,000: ≈ 1.5 minutes on 2 cores
def test_the_full_size_lean_model_folds_2000_residues_with_int8_weights_within_a_t4():
    # A live fake-tensor trace of the full-size esmfold_v1 architecture (≈ 1.5 minutes on a 2-core CPU).
    result = fit.predict_peak("int8", 2000, lean=lean.LeanOptions())
    need = result["predicted nvidia-smi (GiB)"] - fit.CUDA_CONTEXT_GIB  # what PyTorch will hold
    assert need < gpu.T4.usable_gib
    original = fit.grid_estimate("int8", 1536, 32)["reserved (GiB)"]
    assert original > gpu.T4.usable_gib  # the original model with chunk 32 does not even fold 1,536


@pytest.mark.parametrize("recipe", ["int8", "int4", "fp16-offload"])
def test_the_lean_trunk_combines_with_quantized_and_offloaded_recipes(recipe):
    plain, tokenizer = models.load_model(recipe, device="cpu", source="tiny")
    lean_model, _ = models.load_model(recipe, device="cpu", source="tiny", chunk_size="lean")
    a, b = folding.fold(plain, tokenizer, SEQS[0]), folding.fold(lean_model, tokenizer, SEQS[0])
    assert np.abs(a.positions - b.positions).max() < POSITIONS_ATOL and abs(a.ptm - b.ptm) < PTM_ATOL


class Recorder(lean.CPUParking):
    """Parking that records its calls (and moves nothing: on a CPU the language model stays where it is)."""

    def __init__(self):
        self.calls = []

    def park(self, lm):
        self.calls.append("park")
        return True

    def unpark(self, lm, device):
        self.calls.append(f"unpark to {torch.device(device).type}")


def test_parking_moves_the_language_model_out_after_it_ran_and_back_before_the_next_fold(model):
    m, tokenizer = model
    reference = [folding.fold(m, tokenizer, s) for s in (SEQS[0], SEQS[1])]
    recorder = Recorder()
    lean.make_lean(m, lean.LeanOptions(park_from=20), parking=recorder)
    try:
        first = folding.fold(m, tokenizer, SEQS[0])  # 33 aa ≥ 20: parked once the LM has run
        assert recorder.calls == ["park"]
        short = folding.fold(m, tokenizer, SEQS[1])  # 9 aa: brought back, and left on the device
        assert recorder.calls == ["park", "unpark to cpu"]
        folding.fold(m, tokenizer, SEQS[0])
    finally:
        lean.undo_lean(m)  # a parked LM comes back with the original forward methods
    assert recorder.calls == ["park", "unpark to cpu", "park", "unpark to cpu"]
    _close(reference, [first, short])


def test_cpu_parking_leaves_a_language_model_that_is_not_on_a_gpu(model):
    m, _ = model
    assert lean.CPUParking().park(m.esm) is False  # on the CPU already: nothing to move
    assert next(m.esm.parameters()).device.type == "cpu"


def test_a_lean_trace_splits_its_peak_where_the_language_model_is_parked():
    parked = fit.FakeFolder(recipes.FP32_ACTIVATIONS, "tiny", lean.LeanOptions()).trace(24, num_recycles=0)
    kept = fit.FakeFolder(recipes.FP32_ACTIVATIONS, "tiny", lean.LeanOptions(park_lm=False)).trace(24, num_recycles=0)
    lm = models.meta_model("tiny").esm
    lm_bytes = sum(t.numel() * t.element_size() for t in [*lm.parameters(), *lm.buffers()])
    assert parked.lm_weights == lm_bytes and kept.lm_weights == 0
    # one trace answers both ways: its all-resident peak is the unparked model's (activations over the same weights)
    assert parked.peak - parked.weights == kept.peak - kept.weights
    # parking frees exactly the language model's weights: the trunk's phase fits in the kept model's peak less them
    assert parked.parked_peak <= kept.peak - parked.lm_weights


def test_two_traced_passes_of_the_lean_model_peak_as_the_default_four():
    # a trace of the default recycles runs two trunk passes (fit.TRACED_PASSES): later passes must allocate as the second
    folder = fit.FakeFolder(recipes.FP32_ACTIVATIONS, "tiny", lean.LeanOptions(rows=8))
    two, four = folder.trace(24), folder.trace(24, num_recycles=3)
    # (the first trace of a folder counts a few cached constants as weights: compare peaks, not peaks over weights)
    assert (two.peak, two.parked_peak, two.lm_activations) == (four.peak, four.parked_peak, four.lm_activations)


def test_one_projection_keeps_a_block_at_one_and_a_half_pair_tensors_beside_z():
    # one full-size trunk block on fake tensors at L = 2,048 (seconds): z is its input; everything else it allocates
    # at once, the kept projection included, stays within 1.5 fp32 pair tensors — 2.5 with z
    length = 2048
    pair = length**2 * 128 * 4 / 1024**3
    lean_block = fit.block_peak(length, lean=lean.LeanOptions())["activations peak (GiB)"] / pair
    two_projections = fit.block_peak(length, lean=lean.LeanOptions(one_projection=False))["activations peak (GiB)"]
    assert lean_block <= 1.5 < two_projections / pair


def test_the_predictor_takes_a_parked_language_model_off_the_gpu_for_the_trunk():
    gib = 1024**3
    # int8: the trunk phase (4 GiB over the weights left) is the peak; without parking all weights would stay
    weights, peak, resident = fit._peak_bytes("int8", None, 14 * gib, 6 * gib, True, 10 * gib, 1 * gib, 4 * gib)
    lm = models.expected_weights_bytes("int8")["language model (ESM-2)"]
    int8 = models.expected_weights_bytes("int8")["total"]
    extra = fit._weights_and_temporary("int8", None, 14 * gib)[1]
    assert (weights, resident) == (int8, int8 - lm) and peak == int8 - lm + 4 * gib + extra
    # a short fold's language-model phase can be the larger: then every weight is counted
    _, peak, resident = fit._peak_bytes("fp16", None, 8 * gib, 2 * gib, True, 5 * gib, 2 * gib, 0.5 * gib)
    assert (peak, resident) == (10 * gib, 8 * gib)
    # without parking: weights + activations, as before
    assert fit._peak_bytes("fp16", None, 8 * gib, 2 * gib)[1] == 10 * gib
    # fp32's language model (10.6 GiB) would not fit a free Colab runtime's RAM: it is not parked
    assert not lean.parkable(10.6 * gib) and lean.parkable(5.3 * gib)
    assert fit._peak_bytes("fp32", None, 14 * gib, 6 * gib, True, 10.6 * gib, 1 * gib, 4 * gib)[1] == 20 * gib


def test_the_equivalence_tool_compares_the_changes_it_is_given():
    from tools import lean_check

    table = lean_check.check_equivalence("fp32", "tiny", lengths=(12, 20), options=lean.LeanOptions.only("one_projection"))
    assert len(table) == 4 and set(table["changes"]) == {"one_projection"}
    assert (table["max |Δ position| (Å)"] < POSITIONS_ATOL).all() and (table["max |Δ pLDDT|"] < PLDDT_ATOL).all()
