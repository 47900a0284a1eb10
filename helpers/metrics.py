"""Compare structures with biotite: Cα extraction, Cα-RMSD, sequence-dependent TM-score, lDDT-Cα, prediction agreement."""

from __future__ import annotations

import io

import numpy as np

from helpers import colab, data, tmalign

# biotite is imported where it is used (colab.optional): Colab lacks it, and only the notebooks that score structures
# install it.

#: Seed fragments tried per fragment length in the TM-score superposition search.
STARTS = 20


def ca_atoms(pdb: str, chain: str | None = None):
    """The Cα atoms of model 1 of a PDB string (optionally one chain) as a biotite AtomArray."""
    struc = colab.optional("biotite", "biotite.structure")
    PDBFile = colab.optional("biotite", "biotite.structure.io.pdb").PDBFile

    atoms = PDBFile.read(io.StringIO(pdb)).get_structure(model=1)
    atoms = atoms[(atoms.atom_name == "CA") & struc.filter_amino_acids(atoms)]
    if chain is not None:
        atoms = atoms[atoms.chain_id == chain]
    return atoms


def ca_coordinates(pdb: str) -> np.ndarray:
    """(N, 3) array of Cα coordinates in Å."""
    return ca_atoms(pdb).coord


def _paired(reference, model) -> tuple[np.ndarray, np.ndarray]:
    reference, model = np.asarray(reference, dtype=np.float64), np.asarray(model, dtype=np.float64)
    if reference.shape != model.shape or reference.ndim != 2 or reference.shape[1] != 3:
        raise ValueError(f"Need two (N, 3) arrays of paired Cα coordinates, got {reference.shape} and {model.shape}")
    return reference, model


def _as_ca_array(coords: np.ndarray):
    """Wrap bare Cα coordinates as a biotite AtomArray (what biotite's TM-score expects)."""
    struc = colab.optional("biotite", "biotite.structure")

    atoms = struc.AtomArray(len(coords))
    atoms.coord = coords
    atoms.atom_name[:] = "CA"
    atoms.element[:] = "C"
    atoms.res_name[:] = "ALA"
    atoms.res_id[:] = np.arange(1, len(coords) + 1)
    atoms.hetero[:] = False
    return atoms


def ca_rmsd(reference, model) -> float:
    """Cα-RMSD (Å) after optimal (least-squares) superposition; residues paired in order (arrays or PDB strings)."""
    struc = colab.optional("biotite", "biotite.structure")

    if isinstance(reference, str):
        reference, model = ca_coordinates(reference), ca_coordinates(model)
    reference, model = _paired(reference, model)
    fitted, _ = struc.superimpose(reference, model)
    return float(struc.rmsd(reference, fitted))


def _superposition_search(reference: np.ndarray, model: np.ndarray, radius: float, score) -> float:
    """Best `score(moved)` over superpositions seeded on fragments (lengths N, N/2, … 4, `STARTS` starts each) and
    refined iteratively on the residues closer than `radius` — the search of the TM-score program, also used for GDT.
    Every seed advances at once (`tmalign.kabsch_many`); `score` takes a batch of moved models (B × N × 3)."""
    n = len(reference)
    index = np.arange(n)
    lengths, fragment = [], n
    while fragment >= 4 or not lengths:
        lengths.append(min(fragment, n))
        fragment //= 2
    seeds = []
    for frag in lengths:
        step = max(1, (n - frag) // STARTS) if frag < n else 1
        seeds += [(index >= start) & (index < start + frag) for start in range(0, n - frag + 1, step)]
    masks, best = np.stack(seeds), 0.0
    for _ in range(20):
        masks = masks[masks.sum(axis=1) >= 3]  # three points fix a superposition
        if not len(masks):
            break
        r, t = tmalign.kabsch_many(reference, model, masks)
        moved = model[None] @ np.swapaxes(r, 1, 2) + t[:, None, :]
        best = max(best, float(np.max(score(moved))))
        distances = np.linalg.norm(moved - reference[None], axis=2)
        grown = distances < radius
        for row in np.flatnonzero(grown.sum(axis=1) < 3):  # too few close: widen by 0.5 Å, up to 20 Å
            cut = radius
            while grown[row].sum() < 3 and cut < 20:
                cut += 0.5
                grown[row] = distances[row] < cut
        masks = grown[~(grown == masks).all(axis=1)]  # seeds whose residue set still changes
    return best


def tm_score(reference, model, reference_length: int | None = None) -> float:
    """Sequence-dependent TM-score of paired Cα coordinates, superposition searched to maximise TM (as TM-score does).

    Residues are paired by index; the score is normalised by `reference_length` (default: number of pairs). biotite
    supplies the superposition; the formula is biotite's (Zhang & Skolnick 2004) and the search the TM-score program's.
    """
    reference, model = _paired(reference, model)
    n = len(reference)
    length = reference_length or n
    if n < 3:
        raise ValueError("TM-score needs at least 3 paired residues")
    d0 = max(0.5, 1.24 * (length - 15) ** (1 / 3) - 1.8) if length > 21 else 0.5

    def score(moved):  # biotite's `tm_score` formula, for a batch of moved models
        distances = np.linalg.norm(moved - reference, axis=-1)
        return np.sum(1.0 / (1.0 + (distances / d0) ** 2), axis=-1) / length

    return _superposition_search(reference, model, min(max(d0, 4.5), 8.0), score)


def gdt_ts(reference, model) -> float:
    """GDT-TS (0–1): the mean, over cutoffs 1, 2, 4 and 8 Å, of the largest fraction of Cα atoms that one
    superposition brings within the cutoff (each cutoff searched separately), residues paired in order."""
    reference, model = _paired(reference, model)
    fractions = []
    for cutoff in (1.0, 2.0, 4.0, 8.0):
        fractions.append(_superposition_search(
            reference, model, cutoff, lambda moved, c=cutoff: np.mean(np.linalg.norm(moved - reference, axis=-1) < c,
                                                                      axis=-1)))
    return float(np.mean(fractions))


def _contacts(coords: np.ndarray, cutoff: float) -> np.ndarray:
    distances = np.linalg.norm(coords[:, None, :] - coords[None, :, :], axis=-1)
    return distances < cutoff


def contact_precision(reference_cb, model_cb, min_separation: int = 24, cutoff: float = 8.0,
                      top: int | None = None) -> float:
    """Top-L/5 long-range contact precision: of the `top` (default L/5) residue pairs |i−j| ≥ `min_separation` that
    the model puts closest (Cβ), the fraction in contact (Cβ < `cutoff` Å) in the reference."""
    reference_cb, model_cb = _paired(reference_cb, model_cb)
    n = len(reference_cb)
    top = top or max(1, n // 5)
    i, j = np.triu_indices(n, k=min_separation)
    if len(i) == 0:
        raise ValueError(f"No residue pairs are {min_separation} apart in a chain of {n}")
    predicted = np.linalg.norm(model_cb[i] - model_cb[j], axis=1)
    order = np.argsort(predicted, kind="stable")[:top]
    truth = np.linalg.norm(reference_cb[i] - reference_cb[j], axis=1) < cutoff
    return float(truth[order].mean())


def contact_map_agreement(reference_cb, model_cb, cutoff: float = 8.0) -> float:
    """The seed-style score: the fraction of all residue pairs whose contact/no-contact state agrees. Misleading —
    contacts are a few % of pairs, so a structure with no contacts at all still scores high."""
    reference_cb, model_cb = _paired(reference_cb, model_cb)
    i, j = np.triu_indices(len(reference_cb), k=1)
    return float(np.mean(_contacts(reference_cb, cutoff)[i, j] == _contacts(model_cb, cutoff)[i, j]))


def lddt_ca(reference, model) -> float:
    """lDDT over Cα atoms (0–1; superposition-free), residues paired in order."""
    struc = colab.optional("biotite", "biotite.structure")

    reference, model = _paired(reference, model)
    return float(struc.lddt(_as_ca_array(reference), model))


def compare_predictions(reference, other) -> dict:
    """Agreement of two FoldResults of the same sequence: TM-score, Cα-RMSD, lDDT-Cα, ΔpLDDT (mean), ΔpTM."""
    if reference.sequence != other.sequence:
        raise ValueError("Both predictions must be of the same sequence")
    ref_ca, other_ca = reference.positions[:, 1], other.positions[:, 1]  # atom14 index 1 is Cα
    return {
        "TM-score vs reference": round(tm_score(ref_ca, other_ca), 4),
        "Cα-RMSD vs reference (Å)": round(ca_rmsd(ref_ca, other_ca), 3),
        "lDDT-Cα vs reference": round(lddt_ca(ref_ca, other_ca), 4),
        "ΔpLDDT mean (Cα)": round(other.mean_plddt_ca - reference.mean_plddt_ca, 3),
        "max |ΔpLDDT| per residue": round(float(np.abs(other.plddt - reference.plddt).max()), 3),
        "ΔpTM": round(other.ptm - reference.ptm, 4),
    }


def experimental_chain(relpath: str, chain: str, model: int = 1) -> dict:
    """The observed residues of one chain of an experimental structure (from the shared data folder or RCSB): the
    one-letter sequence, residue numbers, Cα and Cβ coordinates (Cα for glycine); NMR model 1 by default, the first
    alternate location, selenomethionine (MSE) read as methionine, residues without a Cα skipped."""
    struc = colab.optional("biotite", "biotite.structure")
    strucio = colab.optional("biotite", "biotite.structure.io")
    ProteinSequence = colab.optional("biotite", "biotite.sequence").ProteinSequence

    atoms = strucio.load_structure(str(data.fetch(relpath)), model=model)
    atoms = atoms[(atoms.chain_id == chain) & struc.filter_amino_acids(atoms)]
    letters, numbers, ca, cb = [], [], [], []
    for residue in struc.residue_iter(atoms):
        names = list(residue.atom_name)
        if "CA" not in names:
            continue
        name = "MET" if residue.res_name[0] == "MSE" else residue.res_name[0]
        try:
            letters.append(ProteinSequence.convert_letter_3to1(name))
        except KeyError:
            letters.append("X")
        numbers.append(int(residue.res_id[0]))
        ca.append(residue.coord[names.index("CA")])
        cb.append(residue.coord[names.index("CB")] if "CB" in names else residue.coord[names.index("CA")])
    if not letters:
        raise ValueError(f"No amino-acid residues with a Cα in chain {chain!r} of {relpath}")
    return {"sequence": "".join(letters), "residue numbers": np.array(numbers), "ca": np.array(ca, dtype=float),
            "cb": np.array(cb, dtype=float)}


def pair_by_sequence(query: str, observed: str) -> tuple[np.ndarray, np.ndarray]:
    """Indices (into `query`, into `observed`) of the residues a global alignment pairs with the same amino acid —
    how a prediction of the full (SEQRES) sequence is scored on only the residues the experiment observed."""
    bseq = colab.optional("biotite", "biotite.sequence")
    align = colab.optional("biotite", "biotite.sequence.align")

    matrix = align.SubstitutionMatrix.std_protein_matrix()
    alignment = align.align_optimal(bseq.ProteinSequence(query.replace("X", "A")),
                                    bseq.ProteinSequence(observed.replace("X", "A")), matrix,
                                    gap_penalty=(-10, -1), terminal_penalty=False)[0]
    trace = alignment.trace[(alignment.trace >= 0).all(axis=1)]
    same = np.array([query[i] == observed[j] for i, j in trace], dtype=bool)
    return trace[same, 0], trace[same, 1]


def structural_tm_score(reference, model, normalise_by: str = "reference") -> float:
    """TM-align's TM-score for *different* proteins (no residue pairing given): the best structural alignment and
    superposition (`helpers.tmalign`), normalised by the reference's length (or the model's, normalise_by="model")."""
    if normalise_by not in ("reference", "model"):
        raise ValueError(f"normalise_by must be 'reference' or 'model', not {normalise_by!r}")
    result = tmalign.tm_align(reference, model)
    return float(result.tm_score_1 if normalise_by == "reference" else result.tm_score_2)
