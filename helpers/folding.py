"""Fold one protein: validate the sequence, run ESMFold with default recycles, return pLDDT (0–100), pTM and a PDB."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from transformers.models.esm.openfold_utils.feats import atom14_to_atom37
from transformers.models.esm.openfold_utils.loss import compute_tm
from transformers.models.esm.openfold_utils.protein import Protein, to_pdb

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


def pdb_text(output, index: int, keep, plddt_0_100: torch.Tensor, residue_index=None, chain_index=None) -> str:
    """PDB text of one batch entry, only the residues in `keep`, with pLDDT 0–100 in the B-factors (transformers'
    own PDB writer; `chain_index` gives chains A, B, …)."""
    keys = ["aatype", "atom37_atom_exists", "residx_atom37_to_atom14"]
    one = {k: output[k][index][keep].cpu().numpy() for k in keys}
    positions = output["positions"][-1, index][keep].float().cpu().numpy()
    atom37 = atom14_to_atom37(positions, one)
    if residue_index is None:
        residue_index = output["residue_index"][index][keep].cpu().numpy() + 1
    protein = Protein(
        aatype=one["aatype"], atom_positions=atom37, atom_mask=one["atom37_atom_exists"],
        residue_index=np.asarray(residue_index), b_factors=plddt_0_100[index][keep].float().cpu().numpy(),
        chain_index=None if chain_index is None else np.asarray(chain_index),
    )
    return to_pdb(protein)


def sequence_ptm(ptm_logits: torch.Tensor, keep) -> float:
    """pTM of one sequence from its (L, L, bins) pTM logits, over the residues in `keep` only (drops padding or a
    linker). The model's own `ptm` output is a single number for a whole padded batch."""
    logits = ptm_logits[keep][:, keep].float()
    return float(compute_tm(logits, max_bin=31, no_bins=ptm_logits.shape[-1]))


def _result(output, index: int, sequence: str, num_recycles) -> FoldResult:
    """The FoldResult of batch entry `index` (padding removed)."""
    n = len(sequence)
    keep = slice(0, n)
    plddt = output["plddt"].float() * 100.0  # HF returns 0–1; published ESMFold numbers use 0–100
    exists = output["atom37_atom_exists"][index, :n].bool()
    return FoldResult(
        sequence=sequence,
        plddt=plddt[index, :n, CA_INDEX].cpu().numpy(),
        mean_plddt_ca=float(plddt[index, :n, CA_INDEX].mean()),
        mean_plddt_all_atom=float(plddt[index, :n][exists].mean()),
        ptm=(float(output["ptm"].float().reshape(-1)[0]) if output["ptm_logits"].shape[:2] == (1, n)  # alone: the same
             else sequence_ptm(output["ptm_logits"][index], keep)),
        positions=output["positions"][-1, index, :n].float().cpu().numpy(),
        pdb=pdb_text(output, index, keep, plddt),
        num_recycles=num_recycles,
    )


def input_device(model) -> torch.device:
    """Where inputs go: the device of a top-level weight that offloading never moves (the LM's may sit on CPU)."""
    return model.esm_s_combine.device


def batch_inputs(tokenizer, sequences: list[str], device) -> dict:
    """Tokenized, padded batch; padding positions get residue id 0 (as the model's own `infer` pads) because the
    structure module indexes residue tables with these ids and the `<pad>` token id is out of their range."""
    inputs = tokenizer(sequences, return_tensors="pt", add_special_tokens=False, padding=True)
    inputs["input_ids"] = inputs["input_ids"].masked_fill(inputs["attention_mask"] == 0, 0)
    return inputs.to(device)


def fold_many(model, tokenizer, sequences: list[str], num_recycles: int | None = None) -> list[FoldResult]:
    """Fold several sequences as one padded batch (default recycles); one FoldResult per sequence, padding removed,
    pTM computed per sequence."""
    sequences = [validate_sequence(s) for s in sequences]
    inputs = batch_inputs(tokenizer, sequences, input_device(model))
    with torch.no_grad():
        output = model(**inputs, num_recycles=num_recycles)
    return [_result(output, i, s, num_recycles) for i, s in enumerate(sequences)]


def fold(model, tokenizer, sequence: str, num_recycles: int | None = None) -> FoldResult:
    """Fold one sequence under `torch.no_grad()`; `num_recycles=None` is the default 4 trunk passes (N runs N+1)."""
    return fold_many(model, tokenizer, [sequence], num_recycles)[0]
