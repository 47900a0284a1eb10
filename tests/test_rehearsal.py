"""The tiny stand-in's rehearsal of a free T4: folds at their real lengths (computing only the start), out-of-memory
where the full-size model would not fit, and a log of every load and fold."""

import json

import numpy as np
import pytest
import torch

from helpers import data, folding, gpu, memory, models, rehearsal


@pytest.fixture
def rehearsing(monkeypatch, tmp_path):
    monkeypatch.setenv(rehearsal.LOG_ENV, str(tmp_path))
    monkeypatch.delenv(rehearsal.INJECT_ENV, raising=False)
    rehearsal.install(on_gpu=True)
    yield tmp_path
    rehearsal.uninstall()


def events(folder) -> list[dict]:
    return [json.loads(line) for log in folder.glob("*.jsonl") for line in log.read_text().splitlines()]


def test_a_long_fold_keeps_its_length_and_its_sequence(rehearsing):
    model, tokenizer = models.load_model("fp16", device="cpu", source="tiny", chunk_size=64)
    sequence = data.seed_sequence()  # 259 residues: far more than the stand-in computes
    result = folding.fold(model, tokenizer, sequence)
    assert result.plddt.shape == (len(sequence),) and result.positions.shape == (len(sequence), 14, 3)
    assert np.isfinite(result.positions).all()
    residues = {line[22:26] for line in result.pdb.splitlines() if line.startswith("ATOM")}
    assert len(residues) == len(sequence)
    names = [line[17:20] for line in result.pdb.splitlines() if line.startswith("ATOM") and line[12:16].strip() == "CA"]
    from transformers.models.esm.openfold_utils.residue_constants import restype_1to3

    assert names == [restype_1to3[aa] for aa in sequence]  # residue types come from the whole sequence
    fold = [e for e in events(rehearsing) if e["event"] == "fold"][-1]
    assert (fold["recipe"], fold["length"], fold["chunk size"], fold["trunk passes"]) == ("fp16", 259, 64, 4)
    assert fold["verdict"] == "fits" and not fold["out of memory"]


def test_a_short_fold_is_the_tiny_model_s_own(rehearsing):
    model, tokenizer = models.load_model("fp32", device="cpu", source="tiny")
    sequence = data.REFERENCE_65AA[: rehearsal.COMPUTED_RESIDUES]
    rehearsed = folding.fold(model, tokenizer, sequence)
    rehearsal.uninstall()
    plain = folding.fold(model, tokenizer, sequence)
    rehearsal.install(on_gpu=True)
    assert np.array_equal(rehearsed.positions, plain.positions)


def test_a_fold_predicted_not_to_fit_a_t4_runs_out_of_memory_and_the_log_says_whether_it_was_expected(rehearsing):
    model, tokenizer = models.load_model("fp16", device="cpu", source="tiny")  # unchunked
    long = data.sequence_of_length(768)[0]  # predicted over a T4's budget unchunked
    with pytest.raises(torch.OutOfMemoryError, match="rehearsal"):
        folding.fold(model, tokenizer, long)
    with memory.measure("on purpose", device="cpu", may_run_out=True) as record:
        folding.fold(model, tokenizer, long)
    assert record["status"] == "OOM"
    folds = [e for e in events(rehearsing) if e["event"] == "fold"]
    assert [(f["verdict"], f["out of memory"], f["prepared"]) for f in folds] == [("over", True, False),
                                                                                ("over", True, True)]


def test_a_smaller_card_s_cap_is_planned_against(rehearsing):
    model, tokenizer = models.load_model("fp16", device="cpu", source="tiny", chunk_size=64)
    with memory.gpu_budget(4.0), memory.measure("fp16 on 4 GiB", device="cpu", may_run_out=True) as record:
        folding.fold(model, tokenizer, "MKTAYIAKQR")  # 7.9 GiB of weights alone
    assert record["status"] == "OOM"
    assert gpu.budget_gib() == pytest.approx(gpu.T4.usable_gib)  # the cap is lifted after the block


def test_folds_named_in_the_switch_run_out_of_memory(rehearsing, monkeypatch):
    monkeypatch.setenv(rehearsal.INJECT_ENV, "fp32:30")
    model, tokenizer = models.load_model("fp32", device="cpu", source="tiny")
    with pytest.raises(torch.OutOfMemoryError):
        folding.fold(model, tokenizer, data.REFERENCE_65AA[:30])
    folding.fold(model, tokenizer, data.REFERENCE_65AA[:31])  # another length folds


def test_loads_and_reads_are_logged_and_uninstall_restores_the_model_class(rehearsing):
    from transformers import EsmForProteinFolding

    models.load_model("int8", device="cpu", source="tiny")
    loads = [e for e in events(rehearsing) if e["event"] == "load"]
    assert loads[-1]["recipe"] == "int8" and loads[-1]["quantization"] == "QuantoConfig"
    assert gpu.emulated() is gpu.T4
    rehearsal.uninstall()
    assert EsmForProteinFolding.__call__ is torch.nn.Module.__call__ and gpu.emulated() is None
    rehearsal.install(on_gpu=True)


def test_a_cpu_runtime_is_planned_as_colab_s(monkeypatch, tmp_path):
    from helpers import cpu

    monkeypatch.setenv(rehearsal.LOG_ENV, str(tmp_path))
    rehearsal.install(on_gpu=False)
    try:
        assert gpu.emulated() is None
        assert cpu.available_ram_gb() == cpu.COLAB_RAM_GB and cpu.cpu_class() == cpu.COLAB_CPU_CLASS
        assert cpu.matmul_gflops(torch.bfloat16) / cpu.matmul_gflops(torch.float32) < cpu.BF16_SPEEDUP_NEEDED
    finally:
        rehearsal.uninstall()


def test_a_model_left_loaded_counts_against_the_next_fold(rehearsing):
    kept, tokenizer = models.load_model("int8", device="cpu", source="tiny")
    model, _ = models.load_model("fp16", device="cpu", source="tiny", chunk_size=64)
    folding.fold(model, tokenizer, "MKTAYIAKQR")
    del kept
    folding.fold(model, tokenizer, "MKTAYIAKQR")
    first, second = [e for e in events(rehearsing) if e["event"] == "fold"]
    int8_weights = 3.29  # GiB, the full-size int8 recipe's
    assert first["other models loaded (GiB)"] == pytest.approx(int8_weights, abs=0.01)
    assert second["other models loaded (GiB)"] == 0.0
    assert first["need (GiB)"] == pytest.approx(second["need (GiB)"] + first["other models loaded (GiB)"])
