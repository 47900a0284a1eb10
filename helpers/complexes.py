"""Fold a complex the way ESMFold does: chains joined by a poly-glycine linker, a residue-index gap between chains,
the linker masked out of the structure, pLDDT and pTM."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from helpers import folding

#: ESMFold's defaults (fair-esm `esmfold.infer`): 25 glycines between chains, residue index +512 per chain.
LINKER = "G" * 25
RESIDUE_INDEX_OFFSET = 512
CHAIN_IDS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass
class ComplexResult:
    """One complex: per-residue pLDDT (Cα, 0–100) of the chains' residues only, which chain each belongs to, the
    mean pLDDTs and pTM over those residues, and a multi-chain PDB without the linker."""

    chains: list[str]
    plddt: np.ndarray  # (sum of chain lengths,) Cα pLDDT, linker removed
    chain_index: np.ndarray  # (sum of chain lengths,) 0 for chain A, 1 for B, …
    mean_plddt_ca: float
    mean_plddt_all_atom: float
    ptm: float  # over the chains' residues (the linker excluded)
    pdb: str = field(repr=False)

    def chain_plddt(self) -> dict[str, float]:
        """Mean Cα pLDDT per chain."""
        return {CHAIN_IDS[i]: float(self.plddt[self.chain_index == i].mean()) for i in range(len(self.chains))}

    def save_pdb(self, path) -> str:
        """Write the PDB text to `path` and return the path."""
        with open(path, "w") as handle:
            handle.write(self.pdb)
        return str(path)


def complex_inputs(chains: list[str], linker: str = LINKER, offset: int = RESIDUE_INDEX_OFFSET):
    """(joined sequence, residue index per position, chain index per position or -1 for the linker)."""
    chains = [folding.validate_sequence(c) for c in chains]
    if not 1 <= len(chains) <= len(CHAIN_IDS):
        raise folding.SequenceError(f"A complex needs 1–{len(CHAIN_IDS)} chains, got {len(chains)}.")
    joined, chain_index = "", []
    for i, chain in enumerate(chains):
        if i:
            joined += linker
            chain_index += [-1] * len(linker)
        joined += chain
        chain_index += [i] * len(chain)
    # as fair-esm: positions 0..N-1 along the joined sequence, + i × offset from chain i's first residue on (a linker
    # takes the offset of the chain before it)
    offsets, current = [], 0
    for c in chain_index:
        current = c if c >= 0 else current
        offsets.append(current * offset)
    residue_index = [position + extra for position, extra in enumerate(offsets)]
    return joined, residue_index, chain_index


def fold_complex(model, tokenizer, chains: list[str], num_recycles: int | None = None, linker: str = LINKER,
                 offset: int = RESIDUE_INDEX_OFFSET) -> ComplexResult:
    """Fold chains as one complex (default recycles); the linker is removed from the returned scores and PDB."""
    joined, residue_index, chain_index = complex_inputs(chains, linker, offset)
    device = folding.input_device(model)
    inputs = tokenizer([joined], return_tensors="pt", add_special_tokens=False).to(device)
    position_ids = torch.tensor([residue_index], device=device)
    with torch.no_grad():
        output = model(**inputs, position_ids=position_ids, num_recycles=num_recycles)
    keep = torch.tensor([c >= 0 for c in chain_index])
    kept_chain = np.array([c for c in chain_index if c >= 0])
    plddt = output["plddt"].float() * 100.0
    ca = plddt[0, :, folding.CA_INDEX][keep.to(plddt.device)]
    exists = output["atom37_atom_exists"][0].bool()[keep.to(plddt.device)]
    # PDB numbering restarts at 1 in every chain
    numbering = np.concatenate([np.arange(1, (kept_chain == i).sum() + 1) for i in range(len(chains))])
    return ComplexResult(
        chains=[folding.validate_sequence(c) for c in chains],
        plddt=ca.cpu().numpy(),
        chain_index=kept_chain,
        mean_plddt_ca=float(ca.mean()),
        mean_plddt_all_atom=float(plddt[0][keep.to(plddt.device)][exists].mean()),
        ptm=folding.sequence_ptm(output["ptm_logits"][0], keep.to(plddt.device)),
        pdb=folding.pdb_text(output, 0, keep.to(plddt.device), plddt, residue_index=numbering, chain_index=kept_chain),
    )
