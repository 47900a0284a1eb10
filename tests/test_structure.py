"""pLDDT colouring, the py3Dmol view, the static plot and Cα-RMSD."""

import numpy as np
import pytest

from helpers import metrics, plots, structure


@pytest.mark.parametrize("value, band", [(95, "#0053D6"), (90, "#65CBF3"), (70.5, "#65CBF3"), (55, "#FFDB13"), (10, "#FF7D45"), (0, "#FF7D45")])
def test_alphafold_bands(value, band):
    assert structure.plddt_color(value) == band


def test_plddt_color_rejects_the_0_1_scale_mistake():
    with pytest.raises(ValueError, match="0–100"):
        structure.plddt_color(101)


def test_reference_prediction_bands(reference_pdb):
    groups = structure.residues_by_band(reference_pdb)
    assert sum(len(v) for v in groups.values()) == 65
    assert len(groups["#0053D6"]) > 50  # a confident published prediction
    assert np.mean(list(structure.ca_bfactors(reference_pdb).values())) == pytest.approx(92.59, abs=0.01)


def test_show_structure_colours_every_band_present(reference_pdb):
    view = structure.show_structure(reference_pdb)
    script = view._make_html()
    groups = structure.residues_by_band(reference_pdb)
    for colour, residues in groups.items():
        assert (colour in script) == bool(residues)  # one style per band that has residues
    assert "addModel" in script and "setStyle" in script


def test_legend_lists_all_bands():
    html = structure.legend_html()
    assert all(label in html for _, _, label in structure.PLDDT_BANDS)


def test_plot_plddt_axes():
    ax = plots.plot_plddt(np.linspace(20, 95, 50), provenance="test")
    assert ax.get_ylim() == (0, 100)
    assert len(ax.lines[0].get_xdata()) == 50


def test_ca_rmsd_is_zero_for_identical(reference_pdb):
    assert metrics.ca_rmsd(reference_pdb, reference_pdb) == pytest.approx(0, abs=1e-3)
    assert metrics.ca_coordinates(reference_pdb).shape == (65, 3)


def test_ca_rmsd_rigid_motion_and_perturbation(reference_pdb):
    lines = reference_pdb.splitlines()
    theta = 0.7
    rot = np.array([[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0], [0, 0, 1]])

    def moved(shift, noise=0.0):
        rng = np.random.default_rng(0)
        out = []
        for line in lines:
            if line.startswith("ATOM"):
                xyz = np.array([float(line[30:38]), float(line[38:46]), float(line[46:54])]) @ rot.T + shift
                xyz += rng.normal(0, noise, 3)
                line = f"{line[:30]}{xyz[0]:8.3f}{xyz[1]:8.3f}{xyz[2]:8.3f}{line[54:]}"
            out.append(line)
        return "\n".join(out)

    assert metrics.ca_rmsd(reference_pdb, moved([10.0, -5.0, 3.0])) == pytest.approx(0, abs=0.01)
    assert metrics.ca_rmsd(reference_pdb, moved([0, 0, 0], noise=1.0)) > 1.0


def test_scatter_plots_draw_one_series_per_recipe_and_the_diagonal():
    import pandas as pd

    table = pd.DataFrame({"recipe": ["fp32", "int8", "int8"], "peak allocated (GiB)": [1.0, 2.0, None],
                          "predicted peak allocated (GiB)": [1.1, 2.1, 3.0], "lDDT-Cα": [0.5, 0.6, 0.7],
                          "mean pLDDT (Cα, scored residues)": [55, 62, 70]})
    parity = plots.plot_prediction_vs_measurement(table)
    assert len(parity.lines) == 3 and list(parity.lines[1].get_xdata()) == [2.0]  # the NaN row is left out
    calibration = plots.plot_calibration(table)
    assert list(calibration.lines[0].get_xdata()) == [50.0] and calibration.get_xlim() == (0, 100)
