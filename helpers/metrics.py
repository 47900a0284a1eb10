"""Compare structures with biotite: Cα extraction, Cα-RMSD, sequence-dependent TM-score, lDDT-Cα, prediction agreement."""

from __future__ import annotations

import io

import numpy as np

#: Seed fragments tried per fragment length in the TM-score superposition search.
STARTS = 20


def ca_atoms(pdb: str, chain: str | None = None):
    """The Cα atoms of model 1 of a PDB string (optionally one chain) as a biotite AtomArray."""
    import biotite.structure as struc
    from biotite.structure.io.pdb import PDBFile

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
    import biotite.structure as struc

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
    import biotite.structure as struc

    if isinstance(reference, str):
        reference, model = ca_coordinates(reference), ca_coordinates(model)
    reference, model = _paired(reference, model)
    fitted, _ = struc.superimpose(reference, model)
    return float(struc.rmsd(reference, fitted))


def tm_score(reference, model, reference_length: int | None = None) -> float:
    """Sequence-dependent TM-score of paired Cα coordinates, superposition searched to maximise TM (as TM-score does).

    Residues are paired by index; the score is normalised by `reference_length` (default: number of pairs). The search
    follows the TM-score program: superpose on seed fragments of length N, N/2, N/4 … 4, then iteratively on the
    residues closer than a search radius, keeping the best score. biotite supplies superposition and scoring.
    """
    import biotite.structure as struc

    reference, model = _paired(reference, model)
    n = len(reference)
    length = reference_length or n
    reference_atoms, moved_atoms = _as_ca_array(reference), _as_ca_array(model)
    if n < 3:
        raise ValueError("TM-score needs at least 3 paired residues")
    d0 = max(0.5, 1.24 * (length - 15) ** (1 / 3) - 1.8) if length > 21 else 0.5
    d_search = min(max(d0, 4.5), 8.0)
    indices = np.arange(n)
    best = 0.0
    fragment = n
    lengths = []
    while fragment >= 4 or not lengths:
        lengths.append(min(fragment, n))
        fragment //= 2
    for frag in lengths:
        step = max(1, (n - frag) // STARTS) if frag < n else 1
        for start in range(0, n - frag + 1, step):
            subset = indices[start : start + frag]
            for _ in range(20):
                if len(subset) < 3:
                    break
                _, transform = struc.superimpose(reference[subset], model[subset])
                moved = transform.apply(model)
                moved_atoms.coord = moved
                score = struc.tm_score(reference_atoms, moved_atoms, indices, indices, length)
                best = max(best, float(score))
                distances = np.linalg.norm(moved - reference, axis=1)
                radius = d_search
                new = indices[distances < radius]
                while len(new) < 3 and radius < 20:
                    radius += 0.5
                    new = indices[distances < radius]
                if np.array_equal(new, subset):
                    break
                subset = new
    return best


def lddt_ca(reference, model) -> float:
    """lDDT over Cα atoms (0–1; superposition-free), residues paired in order."""
    import biotite.structure as struc

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
