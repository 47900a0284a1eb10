"""Fold one protein: validate the sequence, run ESMFold with default recycles, return pLDDT (0–100), pTM and a PDB."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

#: The 20 standard amino acids plus X (unknown), as ESMFold's tokenizer accepts them.
VALID_RESIDUES = frozenset("ACDEFGHIKLMNPQRSTVWY" + "X")
#: Index of the Cα atom in the atom37 layout that the model's outputs use.
CA_INDEX = 1


class SequenceError(ValueError):
    """A protein sequence that ESMFold cannot take, with the reason in plain words."""


def validate_sequence(sequence: str) -> str:
    """Strip whitespace and upper-case; reject empty input and letters outside the 20 amino acids + X."""
    if not isinstance(sequence, str):
        raise SequenceError(f"A protein sequence must be a string of one-letter codes, not {type(sequence).__name__}.")
    cleaned = "".join(sequence.split()).upper()
    if not cleaned:
        raise SequenceError("The sequence is empty (or only whitespace): give at least one amino acid.")
    bad = [(i + 1, ch) for i, ch in enumerate(cleaned) if ch not in VALID_RESIDUES]
    if bad:
        shown = ", ".join(f"{ch!r} at {pos}" for pos, ch in bad[:10])
        more = f" and {len(bad) - 10} more" if len(bad) > 10 else ""
        raise SequenceError(
            f"The sequence has {len(bad)} character(s) that are not one of the 20 standard amino acids or X: "
            f"{shown}{more}. Replace rare residues (e.g. U, O, B, Z) by X and remove gaps or digits."
        )
    return cleaned


@dataclass
class FoldResult:
    """One prediction: per-residue pLDDT (Cα, 0–100), the two mean pLDDTs, pTM, atom positions and a PDB string."""

    sequence: str
    plddt: np.ndarray  # (L,) per-residue pLDDT of the Cα atom, 0–100
    mean_plddt_ca: float  # mean over Cα atoms
    mean_plddt_all_atom: float  # mean over every atom present (how ESMFold's published numbers are averaged)
    ptm: float
    positions: np.ndarray  # (L, 14, 3) atom14 coordinates in Å, last structure-module block
    pdb: str = field(repr=False)  # PDB text with pLDDT 0–100 in the B-factor column
    num_recycles: int | None = None

    def summary(self) -> dict:
        """A one-row dict for a pandas DataFrame."""
        return {
            "length": len(self.sequence),
            "mean pLDDT (Cα)": round(self.mean_plddt_ca, 2),
            "mean pLDDT (all atoms)": round(self.mean_plddt_all_atom, 2),
            "pTM": round(self.ptm, 4),
        }

    def save_pdb(self, path) -> str:
        """Write the PDB text to `path` and return the path."""
        with open(path, "w") as handle:
            handle.write(self.pdb)
        return str(path)


def _pdb_from_output(output, plddt_0_100: torch.Tensor) -> str:
    """PDB text via transformers' own writer, with pLDDT 0–100 in the B-factors."""
    from transformers import EsmForProteinFolding

    keys = ["positions", "aatype", "atom37_atom_exists", "residx_atom37_to_atom14", "residue_index"]
    fields = {k: (output[k].float() if output[k].is_floating_point() else output[k]) for k in keys}
    fields["plddt"] = plddt_0_100.float()
    return EsmForProteinFolding.output_to_pdb(fields)[0]


def fold(model, tokenizer, sequence: str, num_recycles: int | None = None) -> FoldResult:
    """Fold one sequence under `torch.no_grad()`; `num_recycles=None` is the default 4 trunk passes (N runs N+1)."""
    sequence = validate_sequence(sequence)
    device = next(model.parameters()).device
    inputs = tokenizer([sequence], return_tensors="pt", add_special_tokens=False).to(device)
    with torch.no_grad():
        output = model(**inputs, num_recycles=num_recycles)
    plddt = output["plddt"].float() * 100.0  # HF returns 0–1; published ESMFold numbers use 0–100
    exists = output["atom37_atom_exists"].bool()
    result = FoldResult(
        sequence=sequence,
        plddt=plddt[0, :, CA_INDEX].cpu().numpy(),
        mean_plddt_ca=float(plddt[0, :, CA_INDEX].mean()),
        mean_plddt_all_atom=float(plddt[exists].mean()),
        ptm=float(output["ptm"].float().reshape(-1)[0]),
        positions=output["positions"][-1, 0].float().cpu().numpy(),
        pdb=_pdb_from_output(output, plddt),
        num_recycles=num_recycles,
    )
    return result
