"""The lean trunk (notebook 07): the same numbers as the original model, far less memory, understood by the predictor."""

import warnings

import numpy as np
import pytest
import torch
from torch.nn.attention import SDPBackend
from transformers import EsmForProteinFolding

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


# --- parking: one byte count, one rule, a move that moves ---------------------------------------------------------

def _full_size_lm_as_loaded(recipe: str) -> torch.nn.Module:
    """The full-size esmfold_v1 language model on the meta device (no data) as `recipe` loads it: built in the
    recipe's dtype (`fp16_esm` halves it), then its Linear layers quantized and frozen by the recipe's library."""
    spec = recipes.get(recipe)
    config = models.load_config(models.FULL_SIZE_STAND_IN)
    config.esmfold_config.fp16_esm = spec.fp16_esm
    default = torch.get_default_dtype()
    torch.set_default_dtype(spec.dtype)
    try:
        with torch.device("meta"):
            lm = EsmForProteinFolding(config).esm
    finally:
        torch.set_default_dtype(default)
    if spec.quanto:
        import optimum.quanto as quanto  # optional package: the quantized recipes' own library

        quanto.quantize(lm, weights={"int8": quanto.qint8, "int4": quanto.qint4, "float8": quanto.qfloat8}[spec.quanto])
        quanto.freeze(lm)
    elif spec.torchao_config:
        import torchao.quantization  # optional package: the torchao recipes' own library

        configs = {"int8-weight-only": "Int8WeightOnlyConfig", "int8-dynamic": "Int8DynamicActivationInt8WeightConfig"}
        torchao.quantization.quantize_(lm, getattr(torchao.quantization, configs[spec.torchao_config])())
    return lm


@pytest.mark.parametrize("recipe", recipes.shown_in(recipes.HARDWARE_TABLE))
def test_the_runtime_parks_the_full_size_language_model_exactly_where_the_predictor_assumes(recipe):
    """Every recipe of the hardware table, whose lean-trunk row assumes the LM parked or not: the runtime's decision
    (`CPUParking.park`, its byte count and rule) on the full-size LM as that recipe holds it equals the predictor's."""
    spec = recipes.get(recipe)
    if spec.quanto:
        pytest.importorskip("optimum.quanto")
    if spec.torchao_config:
        pytest.importorskip("torchao")
    lm = _full_size_lm_as_loaded(recipe)
    predicted = fit.parks_recipe_lm(recipe)
    assert memory.stored_bytes(lm) == fit.lm_bytes(recipe)  # one count: the loaded LM's bytes are the predictor's
    if spec.offload_lm:  # accelerate keeps an offloaded LM on the meta device between its layer hooks
        parking = lean.CPUParking(available=lambda: None)
        assert parking.park(lm) is False and "meta" in parking.last["why"] and predicted is False
        return
    # the same code as on a GPU, told that the meta device is where this LM lives (it moves nothing: meta to meta)
    parking = lean.CPUParking(to="meta", sources=("meta",), available=lambda: None)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        parked = parking.park(lm)
    assert parked == predicted, (recipe, parking.last)
    assert parking.last["bytes"] == fit.lm_bytes(recipe)
    assert [str(w.message) for w in said] == ([] if parked else [parking.last["why"]])
    grid = fit.predicted_grid()
    lean_rows = grid[(grid["recipe"] == recipe) & (grid["chunk size"].astype(str) == fit.LEAN)]
    assert (lean_rows["LM parked"] == parked).all()  # what the hardware table's lean row was computed with


def test_a_refused_park_says_why_once_in_one_sentence():
    lm = _full_size_lm_as_loaded("fp32")  # 11.3 GB: more than parking may put in a free Colab runtime's RAM
    parking = lean.CPUParking(to="meta", sources=("meta",), available=lambda: None)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        assert parking.park(lm) is False and parking.park(lm) is False
    assert len(said) == 1 and issubclass(said[0].category, lean.ParkingRefused)
    message = str(said[0].message)
    assert message.count(". ") == 0 and message.endswith(".") and "11.3 GB" in message
    # RAM available now counts too: an int8 LM (2.8 GB) does not park into 3 GB of free RAM
    small = lean.CPUParking(to="meta", sources=("meta",), available=lambda: 3e9)
    with pytest.warns(lean.ParkingRefused, match="available now"):
        assert small.park(_full_size_lm_as_loaded("int8")) is False


@pytest.mark.parametrize("recipe", ["int8", "int4", "fp16"])
def test_parking_moves_every_stored_byte_of_a_quantized_language_model_out_and_back(recipe):
    """The real `CPUParking.park` and `unpark` on the tiny model's LM. A machine without a GPU has one device that holds
    data, so the meta device stands in for the other one in each leg: out, from the CPU (standing in for the GPU) to
    the meta device; back, a second copy from the CPU (now CPU RAM, where a parked LM waits) to the meta device
    (the GPU). After each move the bytes left on the source device are counted, quantized tensors' inner ones too."""
    if recipe != "fp16":
        pytest.importorskip("optimum.quanto")
    spec = recipes.get(recipe)
    lm, parked = (models.load_model(recipe, device="cpu", source="tiny")[0].esm for _ in range(2))
    stored = memory.stored_bytes(lm)
    assert stored == models.expected_weights_bytes(recipe, "tiny")["language model (ESM-2)"]
    if spec.quantized:  # the count parking used to make, numel × element size, takes a Quanto weight in fp32
        assert sum(t.numel() * t.element_size() for t in [*lm.parameters(), *lm.buffers()]) > 2.5 * stored
    parking = lean.CPUParking(to="meta", sources=("cpu",), available=lambda: None)
    assert parking.park(lm) is True and parking.last["bytes"] == stored
    assert memory.stored_bytes(lm, device="cpu") == 0  # nothing left behind
    assert memory.stored_bytes(lm, device="meta") == stored  # every tensor moved as stored (not dequantized)
    parking.unpark(parked, "meta")
    assert memory.stored_bytes(parked, device="cpu") == 0 and memory.stored_bytes(parked, device="meta") == stored
    if spec.quantized:
        assert models.precision_of(lm) == models.precision_of(parked) == spec.precisions[0]  # still quantized


# --- the attention kernel: memory-efficient or a clear error --------------------------------------------------------

def _block_and_pair(length=12):
    """One tiny trunk block and a pair tensor for it."""
    model, _ = models.load_model("fp32", device="cpu", source="tiny")
    block = model.trunk.blocks[0]
    pair = torch.randn(1, length, length, block.tri_att_start.c_in, generator=torch.Generator().manual_seed(0))
    return block, pair


def test_on_the_cpu_the_attention_kernel_is_left_to_pytorch(monkeypatch):
    block, pair = _block_and_pair()
    entered = []
    monkeypatch.setattr(lean, "sdpa_kernel", lambda *a, **k: entered.append(a))
    with torch.no_grad():
        lean.triangle_attention_(block.tri_att_start, pair, None, rows=4)
    assert entered == []  # no restriction where the device is not a GPU


def test_on_a_gpu_the_attention_may_only_use_the_memory_efficient_kernel(monkeypatch):
    """A device type in KERNEL_RESTRICTED_ON gets PyTorch's memory-efficient kernel and no other: the CPU stands in
    for the GPU, and the SDPA call records which kernels were allowed while it ran (then computes as before)."""
    block, pair = _block_and_pair()
    expected = pair.clone()
    with torch.no_grad():
        lean.triangle_attention_(block.tri_att_start, expected, None, rows=4)
    allowed, sdpa = [], torch.nn.functional.scaled_dot_product_attention

    def recording_sdpa(*args, **kwargs):
        allowed.append({"efficient": torch.backends.cuda.mem_efficient_sdp_enabled(),
                        "math": torch.backends.cuda.math_sdp_enabled(), "flash": torch.backends.cuda.flash_sdp_enabled()})
        with torch.nn.attention.sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.MATH]):  # the CPU's own
            return sdpa(*args, **kwargs)

    monkeypatch.setattr(lean, "KERNEL_RESTRICTED_ON", ("cpu",))
    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", recording_sdpa)
    with torch.no_grad():
        lean.triangle_attention_(block.tri_att_start, pair, None, rows=4)
    assert allowed and all(a == {"efficient": True, "math": False, "flash": False} for a in allowed)
    assert torch.equal(pair, expected)


def test_a_fallback_to_the_math_kernel_raises_a_clear_error(monkeypatch):
    """The CPU has no memory-efficient kernel: restricted to it, PyTorch finds no kernel — as on a GPU whose kernel
    refuses the inputs — and the lean trunk says so instead of computing the logits."""
    block, pair = _block_and_pair()
    monkeypatch.setattr(lean, "KERNEL_RESTRICTED_ON", ("cpu",))
    with pytest.raises(lean.AttentionKernelError, match=r"may only use PyTorch's memory-efficient kernel.*math kernel "
                                                        r"would hold \d+\.\d GB of attention logits"):
        with torch.no_grad():
            lean.triangle_attention_(block.tri_att_start, pair, None, rows=4)


def test_the_wide_equivalence_tool_compares_chunked_padded_and_complex_folds_and_adds_its_rows(tmp_path):
    from tools import lean_check

    cases = lean_check.wide_cases(lengths=(12, 20), chains_lengths=(8, 9), bf16_length=16)
    assert [(recipe, mode) for recipe, mode, _, _ in cases] == [
        ("fp32", "alone"), ("fp32", "padded batch"), ("fp32", "two-chain complex with its linker"),
        (lean_check.BF16_RECIPE, "alone")]
    written = []
    table = lean_check.check_wide("tiny", rows=4, cases=cases, write=written.append)
    assert sum(len(rows) for rows in written) == len(table) == 5
    assert (table["rows per chunk"] < table["length"]).all()  # every chunked update compared at full width
    assert table.loc[table["mode"].str.startswith("two-chain"), "length"].tolist() == [8 + 25 + 9]  # the linker too
    fp32 = table[table["recipe"] == "fp32"]
    assert (fp32["max |Δ position| (Å)"] < POSITIONS_ATOL).all() and (fp32["max |Δ pLDDT|"] < PLDDT_ATOL).all()
    # the rows join an older table (without a chunk-rows column) and replace their own earlier measurement
    path = tmp_path / "07_lean_check.csv"
    old = table.drop(columns="rows per chunk").iloc[:1].assign(recipe="fp32", changes="one_projection", provenance="old")
    old.to_csv(path, index=False)
    table["provenance"] = "new"
    lean_check.add_rows(table, path)
    merged = lean_check.add_rows(table, path)
    assert len(merged) == 6 and merged.loc[0, "rows per chunk"] == lean_check.WHOLE
