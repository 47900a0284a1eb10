"""Notebook 06's plumbing: batch folding of a FASTA (invalid records, OOM, resume), per-sequence pTM in a padded
batch, complexes with the linker removed, LM offload, and the recipe recommendation."""

import numpy as np
import pandas as pd
import pytest
import torch

from helpers import batch, complexes, data, fit, folding, gpu, memory, models, recipes

SEQS = ["MKTAYIAKQRQISFVKSHFSRQ", "GSHMLEDPV", "ACDEFGHIKLMNPQRSTVWYACDEFGHIK"]


def test_safe_names_are_file_safe_short_and_unique():
    taken = set()
    assert batch.safe_name("sp|P69905|HBA_HUMAN Hemoglobin subunit alpha", taken) == "P69905_HBA_HUMAN"
    assert batch.safe_name("my protein/../../etc", taken) == "my"
    assert batch.safe_name("my other", taken) == "my_2"
    assert batch.safe_name("a*b?c:d" + "x" * 100, taken) == ("a_b_c_d" + "x" * 100)[:60]
    assert batch.safe_name("", taken) == "record"


def test_batches_are_sorted_by_length_and_respect_the_token_budget():
    lengths = {"a": 50, "b": 10, "c": 30, "d": 200, "e": 30}
    batches = batch.plan_batches(lengths, token_budget=100)
    assert [k for b in batches for k in b] == ["b", "c", "e", "a", "d"]
    for b in batches:
        assert len(b) == 1 or len(b) * max(lengths[k] for k in b) <= 100
    assert ["d"] in batches  # longer than the budget: alone


def test_ptm_per_sequence_in_a_padded_batch_equals_folding_alone(tiny):
    model, tokenizer = tiny
    together = folding.fold_many(model, tokenizer, SEQS)
    for sequence, result in zip(SEQS, together):
        alone = folding.fold(model, tokenizer, sequence)
        assert result.ptm == pytest.approx(alone.ptm, abs=1e-4)
        assert result.positions.shape == (len(sequence), 14, 3)
        assert np.abs(result.positions - alone.positions).max() < 1e-3
        assert result.mean_plddt_ca == pytest.approx(alone.mean_plddt_ca, abs=1e-3)
    table = batch.ptm_batch_check(model, tokenizer, SEQS)
    # the model's own output is one number for the whole batch, wrong for at least one sequence
    assert (table["model's batch ptm output"] - table["pTM alone"]).abs().max() > 1e-3


def _fasta(tmp_path, records):
    path = tmp_path / "in.fasta"
    path.write_text("".join(f">{h}\n{s}\n" for h, s in records))
    return path


def test_fold_fasta_reports_invalid_records_and_resumes(tiny, tmp_path):
    model, tokenizer = tiny
    fasta = _fasta(tmp_path, [("one first", SEQS[0]), ("bad", "MK1T"), ("two", SEQS[1]), ("three", SEQS[2].lower())])
    out = tmp_path / "out"
    first = batch.fold_fasta(model, tokenizer, fasta, out, recipe="fp32", stop_after=1, progress=False)
    assert first.attrs["folded now"] == 1
    assert set(first["status"]) == {"ok", "invalid"}
    bad = first[first["id"] == "bad"].iloc[0]
    assert "'1' at 3" in bad["reason"]
    second = batch.fold_fasta(model, tokenizer, fasta, out, recipe="fp32", progress=False)
    assert second.attrs["folded now"] == 2
    third = batch.fold_fasta(model, tokenizer, fasta, out, recipe="fp32", progress=False)
    assert third.attrs["folded now"] == 0 and len(third) == 4 and third["id"].is_unique
    ok = third[third["status"] == "ok"]
    assert sorted(ok["id"]) == ["one", "three", "two"]
    for _, row in ok.iterrows():
        pdb = (out / row["pdb"]).read_text()
        assert pdb.count(" CA ") == int(row["length"])
        assert 0 <= float(row["mean pLDDT (Cα)"]) <= 100 and 0 <= float(row["pTM"]) <= 1
    assert set(third.columns) >= {"id", "length", "mean pLDDT (Cα)", "pTM", "seconds", "peak memory (GiB)", "recipe"}


def test_fold_fasta_retries_an_oom_batch_one_by_one_and_reports_the_record_that_fails_alone(tiny, tmp_path,
                                                                                             monkeypatch):
    model, tokenizer = tiny
    real = folding.fold_many

    def flaky(model_, tokenizer_, sequences, num_recycles=None):
        if len(sequences) > 1 or SEQS[2] in sequences:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(model_, tokenizer_, sequences, num_recycles)

    monkeypatch.setattr(folding, "fold_many", flaky)
    fasta = _fasta(tmp_path, [("a", SEQS[0]), ("b", SEQS[1]), ("c", SEQS[2])])
    table = batch.fold_fasta(model, tokenizer, fasta, tmp_path / "out", token_budget=10_000, progress=False)
    status = dict(zip(table["id"], table["status"]))
    assert status == {"a": "ok", "b": "ok", "c": "out of memory"}
    assert "chunk size" in table.set_index("id").loc["c", "reason"]


def test_complex_removes_the_linker_and_writes_two_chains(tiny):
    model, tokenizer = tiny
    a, b = "MKTAYIAKQRQISFV", "SHMLEDPVAC"
    joined, residue_index, chain_index = complexes.complex_inputs([a, b])
    assert joined == a + "G" * 25 + b
    assert residue_index[len(a) + 25] - residue_index[len(a) + 24] == 1 + complexes.RESIDUE_INDEX_OFFSET
    assert chain_index.count(-1) == 25
    result = complexes.fold_complex(model, tokenizer, [a, b.lower()])
    assert result.plddt.shape == (len(a) + len(b),)
    assert list(result.chain_index) == [0] * len(a) + [1] * len(b)
    ca = [line for line in result.pdb.splitlines() if line.startswith("ATOM") and line[12:16].strip() == "CA"]
    assert [line[21] for line in ca] == ["A"] * len(a) + ["B"] * len(b)
    assert [int(line[22:26]) for line in ca] == list(range(1, len(a) + 1)) + list(range(1, len(b) + 1))
    names = "".join(line[17:20] for line in ca)
    assert names.count("GLY") == 0  # neither chain has a glycine; the linker's 25 are gone
    assert set(result.chain_plddt()) == {"A", "B"} and 0 <= result.ptm <= 1
    with pytest.raises(folding.SequenceError):
        complexes.fold_complex(model, tokenizer, [a, "   "])


def test_lm_offload_keeps_the_lm_off_the_device_and_changes_nothing(tmp_path, monkeypatch):
    # CPU-only machines: the same accelerate hooks stream the LM from disk (on a GPU they keep it in CPU RAM; the GPU
    # path is measured by notebook 06 and `make gpu`).
    monkeypatch.setenv("ESMFOLD_CACHE", str(tmp_path))
    assert models.offload_device_map("cuda:0")["esm"] == "cpu" and models.offload_device_map("cuda:0")["trunk"] == "cuda:0"
    plain, tokenizer = models.load_model("fp16", device="cpu", source="tiny")
    offloaded, _ = models.load_model("fp16-offload", device="cpu", source="tiny")
    assert all(p.device.type == "meta" for p in offloaded.esm.parameters())
    assert models.resident_bytes(offloaded) < models.resident_bytes(plain) - models.weights_bytes(plain)["language model (ESM-2)"] / 2
    a, b = folding.fold(plain, tokenizer, SEQS[0]), folding.fold(offloaded, tokenizer, SEQS[0])
    assert np.abs(a.positions - b.positions).max() < 1e-4 and a.ptm == pytest.approx(b.ptm, abs=1e-5)


def test_offload_prediction_removes_the_lm_weights_and_adds_one_layer():
    fp16 = fit.lookup_or_predict("fp16", 512, 64)
    offload = fit.lookup_or_predict("fp16-offload", 512, 64)
    lm = sum(p.numel() for p in models.meta_model("random-full").esm.parameters()) * 2
    layer = 2560 * 10240 * 2 + 10240 * 2  # the LM's largest Linear (weight + bias), fp16
    assert 5.0 < lm / 1024**3 < 5.5 and 0 < layer < 60e6  # 2.8 B fp16 parameters; one 2560 × 10240 fp16 layer
    assert fp16 - offload == pytest.approx((lm - layer) / 1024**3, rel=1e-9)


def test_recommend_returns_a_recipe_that_fits_or_none():
    for card in gpu.CARDS.values():
        for length in (200, 700, 1300):
            pick = fit.recommend(card, length)
            if pick is not None:
                recipe, chunk, need = pick
                assert need <= card.total_gib and recipe in recipes.ladder()
    assert fit.recommend(gpu.T4, 300)[0] == "fp16"  # a T4 folds 300 aa with the plain fp16 recipe
    assert fit.recommend(2.0, 100) is None  # nothing fits 2 GiB (the trunk alone is 2.6 GiB in fp32)
    assert fit.recommend(1000.0, 5000) is None  # beyond the grid: no guess


def test_committed_recipe_table_data_equals_a_fresh_computation():
    committed = pd.read_csv(data.repo_root() / "figures" / "06_recipes.csv").drop(columns="provenance")
    fresh = fit.recipe_table()
    assert committed.astype(str).values.tolist() == fresh.astype(str).values.tolist()


def test_gpu_budget_caps_the_process_and_lifts_the_cap_afterwards(monkeypatch):
    """On a (pretend) 16 GiB GPU a 4 GiB budget sets the fraction to 0.25 inside the block and back to 1.0 after;
    without CUDA nothing is set."""
    import types

    fractions = []
    monkeypatch.delenv("ESMFOLD_MEMORY_CAP_GIB", raising=False)
    monkeypatch.setattr(torch.cuda, "set_per_process_memory_fraction", lambda f, *_: fractions.append(round(f, 6)))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with memory.gpu_budget(4.0):
        pass
    assert fractions == []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: types.SimpleNamespace(total_memory=16 * 2**30))
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    with memory.gpu_budget(4.0):
        assert fractions == [0.25]
    assert fractions == [0.25, 1.0]
