"""Compare structures with biotite: Cα coordinates from PDB text, Cα-RMSD after optimal superposition."""

from __future__ import annotations

import io

import numpy as np


def ca_atoms(pdb: str, chain: str | None = None):
    """The Cα atoms of model 1 of a PDB string (optionally one chain) as a biotite AtomArray."""
    import biotite.structure as struc
    from biotite.structure.io.pdb import PDBFile

    atoms = PDBFile.read(io.StringIO(pdb)).get_structure(model=1)
    atoms = atoms[(atoms.atom_name == "CA") & struc.filter_amino_acids(atoms)]
    if chain is not None:
        atoms = atoms[atoms.chain_id == chain]
    return atoms


def ca_rmsd(pdb_a: str, pdb_b: str) -> float:
    """Cα-RMSD (Å) after optimal superposition of two structures of the same sequence (residues paired in order)."""
    import biotite.structure as struc

    a, b = ca_atoms(pdb_a), ca_atoms(pdb_b)
    if len(a) != len(b):
        raise ValueError(f"Structures have {len(a)} and {len(b)} Cα atoms; pair residues first")
    fitted, _ = struc.superimpose(a.coord, b.coord)
    return float(struc.rmsd(a.coord, fitted))


def ca_coordinates(pdb: str) -> np.ndarray:
    """(N, 3) array of Cα coordinates in Å."""
    return ca_atoms(pdb).coord
