"""Benchmark targets, scoring a prediction against its experimental structure, and paired bootstrap intervals."""

import numpy as np
import pandas as pd
import pytest

from helpers import accuracy, folding, metrics


def test_local_targets_are_the_twenty_shared_structures_shortest_first():
    targets = accuracy.local_targets()
    assert len(targets) == 20
    lengths = [len(t["sequence"]) for t in targets]
    assert lengths == sorted(lengths) and lengths[0] == 35 and lengths[-1] == 390
    ca2 = next(t for t in targets if t["target"] == "1CA2_A")
    assert len(ca2["sequence"]) == 259 and ca2["file"] == "structures/1CA2.pdb"


def test_cameo_targets():
    targets = accuracy.cameo_targets()
    assert len(targets) == 183
    assert 31 <= len(targets[0]["sequence"]) and len(targets[-1]["sequence"]) == 709
    assert targets[0]["file"].startswith("structures/") and targets[0]["file"].endswith(".cif")


def test_rcsb_fasta_parsing_handles_chain_lists_and_author_ids():
    fasta = ">1BNI_1|Chains A, B, C|BARNASE|Bacillus\nAQVINT\n>1BNI_2|Chain D|OTHER|X\nMMM\n"
    assert accuracy.rcsb_chain_sequence(fasta, "B") == "AQVINT"
    assert accuracy.rcsb_chain_sequence(fasta, "D") == "MMM"
    assert accuracy.rcsb_chain_sequence(">2NWD_1|Chains A[auth X]|LYSOZYME|Homo\nKVFER\n", "A") == "KVFER"
    with pytest.raises(KeyError):
        accuracy.rcsb_chain_sequence(fasta, "Z")


def _perfect_prediction(target):
    """A FoldResult whose observed residues sit exactly on the experimental structure (the rest far away)."""
    experiment = metrics.experimental_chain(target["file"], target["chain"])
    sequence = target["sequence"]
    query, observed = metrics.pair_by_sequence(sequence, experiment["sequence"])
    positions = np.full((len(sequence), 14, 3), 500.0)
    positions[query, 1] = experiment["ca"][observed]
    positions[query, accuracy.CB_INDEX] = experiment["cb"][observed]
    plddt = np.full(len(sequence), 90.0)
    return folding.FoldResult(sequence, plddt, 90.0, 90.0, 0.9, positions, pdb="")


def test_a_prediction_equal_to_the_experiment_scores_perfectly_on_the_observed_residues():
    target = next(t for t in accuracy.local_targets() if t["target"] == "1CA2_A")
    scores = accuracy.score_against_experiment(_perfect_prediction(target), target)
    assert scores["observed residues"] == scores["scored residues"] == 256
    assert scores["TM-score"] == pytest.approx(1.0) and scores["lDDT-Cα"] == pytest.approx(1.0)
    assert scores["Cα-RMSD (Å)"] == pytest.approx(0.0, abs=1e-3) and scores["GDT-TS"] == pytest.approx(1.0)
    assert scores["contact precision (L/5, |i−j|≥24)"] == 1.0


def test_paired_bootstrap_interval():
    rows = []
    for i in range(30):
        rows.append({"target": f"t{i}", "recipe": "fp32", "TM-score": 0.8 + 0.005 * (i % 5)})
        rows.append({"target": f"t{i}", "recipe": "int8", "TM-score": 0.8 + 0.005 * (i % 5) - 0.01})
    table = pd.DataFrame(rows)
    result = accuracy.paired_bootstrap(table, "TM-score", "int8")
    assert result["targets"] == 30 and result["mean difference"] == pytest.approx(-0.01)
    assert result["95% CI low"] == pytest.approx(-0.01) and result["95% CI high"] == pytest.approx(-0.01)
    noisy = table.copy()
    noisy.loc[noisy["recipe"] == "int8", "TM-score"] += np.random.default_rng(1).normal(0, 0.02, 30)
    interval = accuracy.paired_bootstrap(noisy, "TM-score", "int8")
    assert interval["95% CI low"] < interval["mean difference"] < interval["95% CI high"]


def test_evaluate_rows_have_both_tiers_and_provenance():
    targets = accuracy.local_targets()[:2]
    kept = {}
    table = accuracy.evaluate(["fp32", "fp16"], targets, "cpu", source="tiny", keep=kept)
    assert set(kept) == {(v, t["target"]) for v in ("fp32", "fp16") for t in targets}
    assert len(table) == 4 and (table["status"] == "ok").all()
    assert (table[table["recipe"] == "fp32"]["TM-score vs reference"] == 1.0).all()
    assert (table["reference"] == "fp32").all()
    assert {"TM-score", "lDDT-Cα", "GDT-TS", "weights", "device", "date", "torch", "transformers"} <= set(table.columns)
    assert (table["weights"] == "tiny").all()


def test_on_a_t4_a_fold_that_does_not_fit_is_skipped_and_the_next_recipe_is_the_reference(tmp_path, monkeypatch):
    from helpers import rehearsal

    monkeypatch.setenv(rehearsal.LOG_ENV, str(tmp_path))
    targets = accuracy.local_targets()
    short, long = targets[0], targets[-1]  # 35 residues; 5H73, 390 residues: fp32 does not fit a T4 (chunk 64)
    rehearsal.install(on_gpu=True)
    try:
        table = accuracy.evaluate(["fp32", "fp16"], [short, long], "cpu", source="tiny").set_index(["recipe", "target"])
    finally:
        rehearsal.uninstall()
    assert table.loc[("fp32", long["target"]), "status"] == "skipped"
    assert "does not fit" in table.loc[("fp32", long["target"]), "reason"]
    assert table.loc[("fp16", long["target"]), "reference"] == "fp16"
    assert table.loc[("fp16", short["target"]), "reference"] == "fp32"
    assert accuracy.paired_bootstrap(table.reset_index(), "TM-score", "fp16")["targets"] == 1


def test_an_out_of_memory_of_the_reference_is_caught_and_the_next_recipe_stands_in_everywhere(tmp_path, monkeypatch,
                                                                                              capsys):
    """An out-of-memory injected into fp32's fold (as a T4 may meet it at the edge of its memory) leaves a row that
    says so; fp16 becomes that target's reference, the intervals count one target fewer, and the per-residue plot
    compares with fp16 and says why."""
    import matplotlib.pyplot as plt

    from helpers import plots, rehearsal

    targets = accuracy.local_targets()[:2]
    hit = targets[1]
    monkeypatch.setenv(rehearsal.LOG_ENV, str(tmp_path))
    monkeypatch.setenv(rehearsal.INJECT_ENV, f"fp32:{len(hit['sequence'])}")
    kept = {}
    rehearsal.install(on_gpu=True)
    try:
        table = accuracy.evaluate(["fp32", "fp16"], targets, "cpu", source="tiny", keep=kept)
    finally:
        rehearsal.uninstall()
    rows = table.set_index(["recipe", "target"])
    assert rows.loc[("fp32", hit["target"]), "status"] == "OOM"
    assert rows.loc[("fp16", hit["target"]), "reference"] == "fp16"
    assert rows.loc[("fp16", targets[0]["target"]), "reference"] == "fp32"
    assert accuracy.paired_bootstrap(table, "TM-score", "fp16")["targets"] == 1
    capsys.readouterr()
    ax = plots.plot_plddt_differences({v: kept.get((v, hit["target"])) for v in ("fp32", "fp16")}, reference="fp32")
    assert "fp16" in ax.get_ylabel() and "against fp16" in capsys.readouterr().out
    plt.close("all")
    with pytest.raises(ValueError, match="none of fp32, int4 folded"):
        plots.plot_plddt_differences({"fp32": None, "int4": None})
