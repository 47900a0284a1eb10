"""Sequence validation and folding with the tiny stand-in: pLDDT scale, PDB output, default recycles."""

import numpy as np
import pytest
import torch

from helpers import folding, structure


@pytest.mark.parametrize("raw, clean", [("mktv", "MKTV"), ("  MK TV\n\tRQ ", "MKTVRQ"), ("ACDEFGHIKLMNPQRSTVWYX", None)])
def test_validate_normalises_case_and_whitespace(raw, clean):
    assert folding.validate_sequence(raw) == (clean or raw)


@pytest.mark.parametrize("bad", ["", "   ", "\n\t"])
def test_validate_rejects_empty(bad):
    with pytest.raises(folding.SequenceError, match="empty"):
        folding.validate_sequence(bad)


def test_validate_names_bad_characters_and_positions():
    with pytest.raises(folding.SequenceError) as info:
        folding.validate_sequence("MK1V-B")
    message = str(info.value)
    assert "'1' at 3" in message and "'-' at 5" in message and "'B' at 6" in message
    assert "3 character(s)" in message


def test_validate_truncates_long_lists_of_bad_characters():
    with pytest.raises(folding.SequenceError, match="and 5 more"):
        folding.validate_sequence("M" + "1" * 15)


def test_validate_rejects_non_strings():
    with pytest.raises(folding.SequenceError, match="string"):
        folding.validate_sequence(["M", "K"])


def test_fold_rejects_bad_input_before_running_the_model(tiny):
    model, tokenizer = tiny
    with pytest.raises(folding.SequenceError):
        folding.fold(model, tokenizer, "MKTV*")


def test_plddt_is_rescaled_to_0_100_from_the_model_output(tiny):
    model, tokenizer = tiny
    seq = "MKTVRQERLKSIVRILERSKEPVSG"
    result = folding.fold(model, tokenizer, seq)
    inputs = tokenizer([seq], return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        raw = model(**inputs)["plddt"][0, :, folding.CA_INDEX].numpy()
    assert raw.max() <= 1.0  # the HF model's own scale
    np.testing.assert_allclose(result.plddt, raw * 100, rtol=1e-5)
    assert 0 <= result.plddt.min() and result.plddt.max() <= 100
    assert result.mean_plddt_ca == pytest.approx(float(np.mean(result.plddt)), rel=1e-5)
    assert 0 <= result.ptm <= 1
    assert result.positions.shape == (len(seq), 14, 3) and np.isfinite(result.positions).all()


def test_pdb_output_parses_with_bfactors_on_0_100_scale(tiny):
    model, tokenizer = tiny
    result = folding.fold(model, tokenizer, "mktvrqerlk siv")
    per_residue = structure.ca_bfactors(result.pdb)
    assert list(per_residue) == list(range(1, 14))
    np.testing.assert_allclose(list(per_residue.values()), result.plddt, atol=0.01)  # PDB keeps 2 decimals
    bfactors = [float(line[60:66]) for line in result.pdb.splitlines() if line.startswith("ATOM")]
    assert all(0 <= b <= 100 for b in bfactors) and max(bfactors) > 1  # 0–100, not 0–1
    assert np.mean(bfactors) == pytest.approx(result.mean_plddt_all_atom, abs=0.01)


def test_default_recycles_run_four_trunk_passes(tiny):
    model, tokenizer = tiny
    calls = []
    handle = model.trunk.structure_module.register_forward_hook(lambda *args: calls.append(1))
    try:
        folding.fold(model, tokenizer, "MKTVRQ")
        default_passes = len(calls)
        calls.clear()
        folding.fold(model, tokenizer, "MKTVRQ", num_recycles=1)
        one_recycle = len(calls)
    finally:
        handle.remove()
    assert default_passes == 4 and one_recycle == 2


def test_save_pdb_writes_the_file(tiny, tmp_path):
    model, tokenizer = tiny
    result = folding.fold(model, tokenizer, "MKTVRQ")
    path = result.save_pdb(tmp_path / "x.pdb")
    assert open(path).read() == result.pdb
    assert set(result.summary()) == {"length", "mean pLDDT (Cα)", "mean pLDDT (all atoms)", "pTM"}
