"""Render predicted structures: an interactive py3Dmol view coloured by pLDDT in the AlphaFold bands."""

from __future__ import annotations

from IPython.display import HTML, display

from helpers import colab

#: AlphaFold's pLDDT colour bands: (lower bound, colour, label), highest first.
PLDDT_BANDS = [
    (90.0, "#0053D6", "very high (> 90)"),
    (70.0, "#65CBF3", "confident (70–90)"),
    (50.0, "#FFDB13", "low (50–70)"),
    (0.0, "#FF7D45", "very low (< 50)"),
]


def plddt_color(value: float) -> str:
    """AlphaFold band colour for a pLDDT on the 0–100 scale."""
    if not 0.0 <= value <= 100.0:
        raise ValueError(f"pLDDT must be on the 0–100 scale, got {value}")
    for lower, colour, _ in PLDDT_BANDS:
        if value > lower or lower == 0.0:
            return colour
    raise AssertionError("unreachable")


def legend_html() -> str:
    """A small HTML legend of the pLDDT bands (shown next to the 3D view)."""
    items = "".join(
        f'<span style="display:inline-block;margin-right:12px"><span style="display:inline-block;width:12px;'
        f'height:12px;background:{colour};margin-right:4px"></span>{label}</span>'
        for _, colour, label in PLDDT_BANDS
    )
    return f'<div style="font-family:sans-serif;font-size:12px">pLDDT: {items}</div>'


def show_structure(pdb: str, width: int = 640, height: int = 480):
    """Interactive cartoon coloured by pLDDT bands (B-factor, 0–100) with a legend; returns the py3Dmol view."""
    py3Dmol = colab.optional("py3Dmol")

    view = py3Dmol.view(width=width, height=height)
    view.addModel(pdb, "pdb")
    for band, residues in residues_by_band(pdb).items():
        if residues:
            view.setStyle({"resi": residues}, {"cartoon": {"color": band}})
    view.zoomTo()
    display(HTML(legend_html()))
    return view


def ca_bfactors(pdb: str) -> dict[int, float]:
    """Residue number → B-factor of its Cα in a PDB string (pLDDT for ESMFold outputs)."""
    values = {}
    for line in pdb.splitlines():
        if line.startswith("ATOM") and line[12:16].strip() == "CA":
            values[int(line[22:26])] = float(line[60:66])
    return values


def residues_by_band(pdb: str) -> dict[str, list[int]]:
    """Residue numbers grouped by the colour of their Cα pLDDT band."""
    groups = {colour: [] for _, colour, _ in PLDDT_BANDS}
    for residue, value in ca_bfactors(pdb).items():
        groups[plddt_color(value)].append(residue)
    return groups
