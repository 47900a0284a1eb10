"""Agreement metrics: perfect for identical structures, invariant to rigid motion, checked against TM-align."""

import numpy as np
import pytest
from biotite.sequence import ProteinSequence
from biotite.structure.io.pdb import PDBFile

from helpers import data, metrics


def _ca(code, chain, model=1):
    atoms = PDBFile.read(str(data.fetch(f"structures/{code}.pdb"))).get_structure(model=model)
    atoms = atoms[(atoms.atom_name == "CA") & (atoms.chain_id == chain)]
    return atoms.coord.astype(float), "".join(ProteinSequence.convert_letter_3to1(r) for r in atoms.res_name)


def _rigid(coords, seed=1):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return coords @ q.T + rng.normal(0, 20, 3)


@pytest.fixture(scope="module")
def ubiquitin():
    return _ca("1UBQ", "A")[0]


def test_identical_structures_score_perfectly(ubiquitin):
    assert metrics.tm_score(ubiquitin, ubiquitin) == pytest.approx(1.0)
    assert metrics.ca_rmsd(ubiquitin, ubiquitin) == pytest.approx(0.0, abs=1e-4)
    assert metrics.lddt_ca(ubiquitin, ubiquitin) == pytest.approx(1.0)


def test_rigid_motion_changes_nothing(ubiquitin):
    moved = _rigid(ubiquitin)
    assert metrics.tm_score(ubiquitin, moved) == pytest.approx(1.0, abs=1e-6)
    assert metrics.ca_rmsd(ubiquitin, moved) == pytest.approx(0.0, abs=1e-3)
    assert metrics.lddt_ca(ubiquitin, moved) == pytest.approx(1.0)


def test_perturbation_moves_every_metric_the_right_way(ubiquitin):
    rng = np.random.default_rng(0)
    small = ubiquitin + rng.normal(0, 0.5, ubiquitin.shape)
    large = ubiquitin + rng.normal(0, 3.0, ubiquitin.shape)
    assert 1.0 > metrics.tm_score(ubiquitin, small) > metrics.tm_score(ubiquitin, large)
    assert 0 < metrics.ca_rmsd(ubiquitin, small) < metrics.ca_rmsd(ubiquitin, large)
    assert 1.0 > metrics.lddt_ca(ubiquitin, small) > metrics.lddt_ca(ubiquitin, large)


@pytest.mark.parametrize("code, chain, a, b", [("1GYA", "A", 1, 2), ("1GYA", "A", 1, 10)])
def test_sequence_dependent_tm_score_matches_tm_align_on_nmr_models(code, chain, a, b):
    tmtools = pytest.importorskip("tmtools")
    first, seq = _ca(code, chain, a)
    second, _ = _ca(code, chain, b)
    reference = tmtools.tm_align(second, first, seq, seq).tm_norm_chain2
    assert metrics.tm_score(first, second) == pytest.approx(reference, abs=0.01)


def test_tm_score_never_exceeds_tm_align_which_may_also_shift_residues():
    tmtools = pytest.importorskip("tmtools")
    first, seq = _ca("2AXD", "S", 1)
    second, _ = _ca("2AXD", "S", 5)
    ours = metrics.tm_score(first, second)
    assert ours <= tmtools.tm_align(second, first, seq, seq).tm_norm_chain2 + 1e-6
    assert ours > 0.7


def test_mismatched_inputs_are_rejected(ubiquitin):
    with pytest.raises(ValueError, match="paired"):
        metrics.tm_score(ubiquitin, ubiquitin[:-1])


@pytest.fixture(scope="module")
def ca2():
    return metrics.experimental_chain("structures/1CA2.pdb", "A")


def test_experimental_chain_and_sequence_pairing_handle_missing_residues(ca2):
    assert len(ca2["sequence"]) == 256 and ca2["ca"].shape == (256, 3) == ca2["cb"].shape
    seqres = data.seed_sequence()
    assert len(seqres) == 259
    query, observed = metrics.pair_by_sequence(seqres, ca2["sequence"])
    assert len(query) == len(observed) == 256
    assert all(seqres[i] == ca2["sequence"][j] for i, j in zip(query, observed))


def test_selenomethionine_is_read_as_methionine_and_nmr_model_1_is_used():
    capsid = metrics.experimental_chain("structures/1A8O.cif", "A")
    assert len(capsid["sequence"]) == 70 and capsid["sequence"].count("M") >= 1
    first = metrics.experimental_chain("structures/1GYA.pdb", "A")
    second = metrics.experimental_chain("structures/1GYA.pdb", "A", model=2)
    assert first["sequence"] == second["sequence"] and not np.allclose(first["ca"], second["ca"])


def test_gdt_ts_perfect_rigid_invariant_and_falls_with_noise(ubiquitin):
    assert metrics.gdt_ts(ubiquitin, ubiquitin) == pytest.approx(1.0)
    assert metrics.gdt_ts(ubiquitin, _rigid(ubiquitin)) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    assert metrics.gdt_ts(ubiquitin, ubiquitin + rng.normal(0, 1.5, ubiquitin.shape)) < 0.9


def test_contact_precision_is_perfect_for_the_structure_itself(ca2):
    assert metrics.contact_precision(ca2["cb"], ca2["cb"]) == 1.0


def test_all_pairs_contact_agreement_scores_a_straight_line_high_and_precision_exposes_it(ca2):
    """The seed-style score is misleading: a straight chain with no contacts at all still agrees on ~97 % of pairs."""
    n = len(ca2["cb"])
    line = np.stack([np.arange(n) * 3.8, np.zeros(n), np.zeros(n)], axis=1)
    agreement = metrics.contact_map_agreement(ca2["cb"], line)
    assert agreement > 0.95
    assert metrics.contact_precision(ca2["cb"], line) < 0.2
    assert metrics.contact_map_agreement(ca2["cb"], ca2["cb"]) == 1.0


def _tmtools_chain(name, chain):
    import os

    import biotite.structure.io as strucio

    tmtools = pytest.importorskip("tmtools")
    atoms = strucio.load_structure(os.path.join(os.path.dirname(tmtools.__file__), "data", name), model=1)
    atoms = atoms[(atoms.atom_name == "CA") & (atoms.chain_id == chain)]
    return atoms.coord.astype(float), "".join(ProteinSequence.convert_letter_3to1(r) for r in atoms.res_name)


@pytest.mark.parametrize("pair", ["lysozymes 1AKI/2NWD", "2GTL chains A/B"])
def test_structural_tm_score_matches_tm_align(pair):
    tmtools = pytest.importorskip("tmtools")
    if pair.startswith("lysozymes"):
        hen = metrics.experimental_chain("structures/1AKI.pdb", "A")
        human = metrics.experimental_chain("structures/2NWD.bcif", "X")
        (a, sa), (b, sb) = (hen["ca"], hen["sequence"]), (human["ca"], human["sequence"])
    else:
        (a, sa), (b, sb) = _tmtools_chain("2gtl.pdb", "A"), _tmtools_chain("2gtl.pdb", "B")
    reference = tmtools.tm_align(a, b, sa, sb).tm_norm_chain1  # normalised by the first structure
    assert metrics.structural_tm_score(a, b) == pytest.approx(reference, abs=0.01)
    if pair.startswith("lysozymes"):
        assert reference == pytest.approx(0.978, abs=0.001)


def test_sequence_dependent_tm_score_matches_tm_align_on_barnase_chains_a_b():
    tmtools = pytest.importorskip("tmtools")
    a, b = metrics.experimental_chain("structures/1BNI.pdb", "A"), metrics.experimental_chain("structures/1BNI.pdb", "B")
    query, observed = metrics.pair_by_sequence(a["sequence"], b["sequence"])
    ca_a, ca_b = a["ca"][query], b["ca"][observed]
    seq = "".join(a["sequence"][i] for i in query)
    reference = tmtools.tm_align(ca_b, ca_a, seq, seq).tm_norm_chain2
    assert metrics.tm_score(ca_a, ca_b) == pytest.approx(reference, abs=0.01)
