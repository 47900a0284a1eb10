"""helpers.tmalign against TM-align: reference TM-scores of the shared experimental structures, computed with
TM-align (through tmtools) and committed in tests/data/tm_align_reference.csv (tools/tm_references.py)."""


import numpy as np
import pandas as pd
import pytest

from helpers import metrics, tmalign
from tools.tm_references import CHAINS, OUT as REFERENCE_CSV

#: Close and distant pairs checked in every test run; every pair is checked by the slow test.
PAIRS = [
    ("1AKI.pdb", "2NWD.bcif"),  # hen / human lysozyme: 0.978
    ("1CRN.pdb", "1EJG.cif"),  # crambin twice
    ("1AKI.pdb", "3LZM.bcif"),  # hen / T4 lysozyme: distant (0.442 / 0.370)
    ("1UBQ.pdb", "2AXD.pdb"),  # unrelated: 0.282
    ("3LZM.bcif", "1HML.bcif"),  # distant
    ("1CA2.pdb", "1QGI.bcif"),  # two 256–259-residue chains, unrelated
    ("1YRF.pdb", "5PTI.cif"),  # short chains
    ("1CA2.pdb", "1YRF.pdb"),  # 256 against 35 residues: TM-align's quick score decides the gapless start here
]


@pytest.fixture(scope="module")
def reference():
    return pd.read_csv(REFERENCE_CSV).set_index(["structure 1", "structure 2"])


@pytest.fixture(scope="module")
def chains():
    return {name: metrics.experimental_chain(f"structures/{name}", chain)["ca"] for name, chain in CHAINS.items()}


def _check(reference, chains, first, second, tolerance):
    row = reference.loc[(first, second)]
    result = tmalign.tm_align(chains[first], chains[second])
    assert result.tm_score_1 == pytest.approx(row["TM-align, normalised by 1"], abs=tolerance), (first, second)
    assert result.tm_score_2 == pytest.approx(row["TM-align, normalised by 2"], abs=tolerance), (first, second)


@pytest.mark.parametrize("first,second", PAIRS)
def test_agrees_with_tm_align_on_close_and_distant_pairs(reference, chains, first, second):
    _check(reference, chains, first, second, tolerance=0.001)


@pytest.mark.slow
def test_agrees_with_tm_align_on_every_pair_of_the_shared_structures(reference, chains):
    """All 190 pairs, both normalisations (≈ 40 s)."""
    errors = []
    for (first, second), row in reference.iterrows():
        result = tmalign.tm_align(chains[first], chains[second])
        errors.append(max(abs(result.tm_score_1 - row["TM-align, normalised by 1"]),
                          abs(result.tm_score_2 - row["TM-align, normalised by 2"])))
    assert max(errors) < 0.001


def test_the_reference_file_states_its_provenance_and_covers_every_pair(reference):
    assert len(reference) == len(CHAINS) * (len(CHAINS) - 1) // 2
    assert reference["provenance"].str.startswith("TM-align through tmtools").all()


def test_references_match_tm_align_where_tmtools_installs(reference, chains):
    tmtools = pytest.importorskip("tmtools")  # a test-only dependency: no wheel for Python 3.13
    for first, second in PAIRS[:3]:
        result = tmtools.tm_align(chains[first], chains[second], "A" * len(chains[first]), "A" * len(chains[second]))
        assert result.tm_norm_chain1 == pytest.approx(reference.loc[(first, second), "TM-align, normalised by 1"], abs=1e-4)


def test_a_400_residue_pair_of_unrelated_chains_scores_as_tm_align_does(chains):
    # two 400-residue traces made of unrelated chains laid end to end: the search's slow case (no quick agreement);
    # its time is a benchmark's question, not a test's
    a = np.concatenate([chains["1DIX.pdb"], chains["1QGI.bcif"][:192] + 30])
    b = np.concatenate([chains["5H73.pdb"], chains["1CA2.pdb"][:37] + 30])
    result = tmalign.tm_align(a, b)
    assert result.tm_score_1 == pytest.approx(0.1956, abs=0.005)  # TM-align: 0.19561


def test_the_alignment_is_monotone_and_the_superposition_reproduces_the_score(chains):
    x, y = chains["1AKI.pdb"], chains["3LZM.bcif"]
    result = tmalign.tm_align(x, y)
    i, j = result.pairs
    assert (np.diff(i) > 0).all() and (np.diff(j) > 0).all()
    moved = y[j] @ result.rotation.T + result.translation
    d0 = tmalign.Params.final(len(x)).d0
    assert (1 / (1 + (np.linalg.norm(x[i] - moved, axis=1) / d0) ** 2)).sum() / len(x) == pytest.approx(
        result.tm_score_1, abs=1e-9)


def test_secondary_structure_of_a_helix_and_dynamic_programming_ties():
    turn = np.radians(100)
    helix = np.stack([2.3 * np.cos(np.arange(20) * turn), 2.3 * np.sin(np.arange(20) * turn), 1.5 * np.arange(20)], 1)
    assert "".join(tmalign.secondary_structure(helix)) == "CC" + "H" * 16 + "CC"
    i, j = tmalign.align(np.eye(4), -0.6)  # the diagonal wins
    assert list(i) == list(j) == [0, 1, 2, 3]
    crossed = np.eye(4)[:, ::-1]  # only one of the anti-diagonal's pairs fits a monotone alignment
    i, j = tmalign.align(crossed, 0.0)
    assert crossed[i, j].sum() == 1 and (np.diff(i) > 0).all() and (np.diff(j) > 0).all()


def test_too_short_structures_are_refused():
    with pytest.raises(ValueError, match="at least 3"):
        tmalign.tm_align(np.zeros((2, 3)), np.zeros((10, 3)))
