# ---
# jupyter:
#   accelerator: GPU
#   colab:
#     gpuType: T4
#     provenance: []
#   jupytext:
#     cell_metadata_filter: tags,jupyter,cellView,-all
#     formats: ipynb,py:percent
#     notebook_metadata_filter: kernelspec,jupytext,colab,accelerator
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 05 · How much accuracy does each recipe cost?
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/OWNER/gpu-poor-esmfold/blob/v0.1.0/notebooks/05_accuracy.ipynb)
#
# **What you will learn**
# - how to measure the accuracy of a predicted structure properly: TM-score (in its two senses), Cα-RMSD, lDDT-Cα,
#   GDT-TS and long-range contact precision — first on real experimental structures, before any model;
# - why the seed article's all-pairs “contact-map accuracy” says almost nothing;
# - how much each recipe of notebooks 01–03 changes the prediction (against fp32) and its accuracy (against
#   experiment), with confidence intervals;
# - whether pLDDT can be trusted as an estimate of accuracy.
#
# **Estimated run time on a free Colab T4:** about 18 minutes, download included ([how it is
# estimated](../docs/results.md#how-the-t4-run-times-are-estimated)).

# %% [markdown]
# ## Setup
# First choose a GPU: *Runtime → Change runtime type → T4 GPU*. Set `DRIVE_CACHE = True` to read the checkpoint from
# Google Drive ([notebook 01](01_fp32_baseline.ipynb) and the [guide](INSTRUCTOR_GUIDE.md#keeping-the-84-gb-download-across-notebooks) explain it).

# %%
import importlib.metadata
import subprocess
import sys

IS_COLAB = "google.colab" in sys.modules
REPO = "https://github.com/OWNER/gpu-poor-esmfold"  # stamped by `python -m tools.stamp`
REF = "v0.1.0"
NEEDS = ["optimum-quanto", "biotite"]  # what this notebook uses that Colab lacks (pinned in helpers/colab.py)
DRIVE_CACHE = False  # True (or a Drive folder): keep the 8.4 GB checkpoint on Google Drive, downloaded once
try:
    importlib.metadata.version("gpu-poor-esmfold")  # the series' helpers are installed (a stray helpers.py is not them)
except importlib.metadata.PackageNotFoundError:
    if IS_COLAB and "/OWNER/" in REPO:
        sys.exit("This copy does not name its repository yet: open the notebook from the Colab badge in the published "
                 "README, or clone the repository and run it on your own machine.")
    if IS_COLAB:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", f"git+{REPO}@{REF}"], check=True)
        importlib.invalidate_caches()
    else:
        sys.path.insert(0, "..")  # running from a clone without `pip install -e .`

from helpers import colab  # first: the Drive cache must be chosen before anything imports transformers

colab.setup(NEEDS, drive_cache=DRIVE_CACHE)  # in Colab: installs what is missing (nothing the second time)

from helpers import accuracy, data, fit, gpu, metrics, notebook, plots, recipes

# %% [markdown]
# ## Parameters
# Which benchmark, how many of its targets (shortest first), which recipes, and the reference recipe of tier 1.

# %%
DEVICE = notebook.start()  # "cuda"
BENCHMARK = "local"  # "local": the 20 shared experimental structures; "cameo": 183 CAMEO 2022 targets
MAX_TARGETS = None  # None: every target
RECIPES = recipes.judged()  # the recipes whose accuracy this notebook measures (`Recipe.judged`)
REFERENCE = "fp32"
CHUNK = 64

# %% [markdown]
# ## 1 · Accuracy metrics, on real structures first
#
# | metric | what it asks | range |
# |---|---|---|
# | **TM-score** (sequence-dependent) | after the best superposition, how many residues sit close to *their own* counterpart, distances weighted by a length-dependent scale; normalised by the reference's length | 0–1; > 0.5 ≈ same fold |
# | **TM-score** (structural, TM-align) | the same, but the residue pairing is *found* by structural alignment — for comparing different proteins | 0–1 |
# | **Cα-RMSD** | root-mean-square distance after the least-squares superposition; dominated by the worst residues | Å, 0 = identical |
# | **lDDT-Cα** | fraction of local inter-atomic distances preserved (no superposition) | 0–1 |
# | **GDT-TS** | mean fraction of residues within 1, 2, 4 and 8 Å under the best superposition for each | 0–1 |
# | **contact precision** | of the L/5 residue pairs at least 24 apart in sequence that the model puts closest (Cβ), how many are really in contact (< 8 Å) | 0–1 |
#
# The helpers build them on [biotite](https://www.biotite-python.org/) (superposition, TM-score formula, lDDT) and,
# for the structural TM-score, on TM-align's own search re-written in NumPy (`helpers.tmalign`); the tests check
# them against TM-align. Identical structures score perfectly:

# %% tags=["show-output"]
import numpy as np
import pandas as pd

ubiquitin = metrics.experimental_chain("structures/1UBQ.pdb", "A")["ca"]
pd.Series({"TM-score": metrics.tm_score(ubiquitin, ubiquitin), "Cα-RMSD (Å)": metrics.ca_rmsd(ubiquitin, ubiquitin),
           "lDDT-Cα": metrics.lddt_ca(ubiquitin, ubiquitin), "GDT-TS": metrics.gdt_ts(ubiquitin, ubiquitin)}).round(3)

# %% [markdown]
# Two *different* proteins need the structural TM-score, because residue *i* of one is not residue *i* of the other:
# the pairing itself has to be found. How much shared structure does a score mean? Three pairs from the shared
# structures — near-identical, the same fold from distant relatives, unrelated — each normalised by the first
# protein, beside TM-align's own score (computed with TM-align, committed in `tests/data/tm_align_reference.csv`):

# %% tags=["show-output"]
import matplotlib.pyplot as plt

reference_scores = pd.read_csv(data.repo_file("tests/data/tm_align_reference.csv"))
comparisons = [("1AKI.pdb", "A", "2NWD.bcif", "X", "hen vs human lysozyme\n(60 % identical)"),
               ("3LZM.bcif", "A", "1AKI.pdb", "A", "T4 vs hen lysozyme\n(same fold, distant relatives)"),
               ("1UBQ.pdb", "A", "2AXD.pdb", "S", "ubiquitin vs 2AXD chain S\n(unrelated)")]
rows = []
for file_1, chain_1, file_2, chain_2, label in comparisons:
    first = metrics.experimental_chain(f"structures/{file_1}", chain_1)["ca"]
    second = metrics.experimental_chain(f"structures/{file_2}", chain_2)["ca"]
    row = reference_scores[((reference_scores["structure 1"] == file_1) & (reference_scores["structure 2"] == file_2))
                           | ((reference_scores["structure 1"] == file_2) & (reference_scores["structure 2"] == file_1))].iloc[0]
    by_first = "1" if row["structure 1"] == file_1 else "2"
    rows.append({"pair": label, "structural TM-score": metrics.structural_tm_score(first, second),
                 "TM-align": row[f"TM-align, normalised by {by_first}"]})
scores = pd.DataFrame(rows).set_index("pair")
ax = scores.plot.barh(figsize=(7, 2.8), color=["#4C72B0", "0.7"])
ax.axvline(0.5, color="red", ls="--", lw=1)
ax.text(0.51, 2.3, "≈ 0.5: same fold", color="red", fontsize=8)
ax.set_xlim(0, 1)
ax.set_xlabel("TM-score, normalised by the first protein")
plt.show()
scores.round(3)

# %% [markdown]
# Above ≈ 0.5 two structures share a fold; around 0.2–0.3 they are as alike as unrelated proteins of their size. T4
# lysozyme and hen lysozyme sit in between: one fold family, diverged so far that only part of the chain still
# superposes. (The structural score must search hard for such a pairing: TM-align starts from several initial
# alignments, refines each by dynamic programming and keeps the best —
# [Zhang & Skolnick 2005](https://doi.org/10.1093/nar/gki524).)

# %% [markdown]
# **A natural noise floor.** An NMR structure is an ensemble of models that all fit the data. How different are they?
# No prediction can be expected to agree with experiment better than the experiment agrees with itself:

# %% tags=["show-output"]
floor = []
for file, chain, models_in_file in [("structures/1GYA.pdb", "A", range(2, 19)), ("structures/2AXD.pdb", "S", range(2, 13))]:
    first = metrics.experimental_chain(file, chain)["ca"]
    for model_number in models_in_file:
        other = metrics.experimental_chain(file, chain, model=model_number)["ca"]
        floor.append({"structure": file.split("/")[1][:4], "TM-score": metrics.tm_score(first, other),
                      "Cα-RMSD (Å)": metrics.ca_rmsd(first, other), "lDDT-Cα": metrics.lddt_ca(first, other)})
pd.DataFrame(floor).groupby("structure").agg(["mean", "min"]).round(3)

# %% [markdown]
# **Why the seed's “contact-map accuracy” misleads.** Call two residues in contact when their Cβ atoms are closer than
# 8 Å. Only a few percent of all pairs are contacts, so a score that counts agreement over *all* pairs is dominated
# by the easy “no contact” pairs. A straight line — no fold at all — still agrees on almost every pair of 1CA2; the
# long-range contact precision exposes it:

# %% tags=["show-output"]
ca2 = metrics.experimental_chain("structures/1CA2.pdb", "A")
n = len(ca2["cb"])
line = np.stack([np.arange(n) * 3.8, np.zeros(n), np.zeros(n)], axis=1)
shuffled = ca2["cb"][np.random.default_rng(0).permutation(n)]
pd.DataFrame({
    "all-pairs contact agreement (seed-style)": [metrics.contact_map_agreement(ca2["cb"], s) for s in (ca2["cb"], line, shuffled)],
    "long-range contact precision": [metrics.contact_precision(ca2["cb"], s) for s in (ca2["cb"], line, shuffled)],
}, index=["the crystal structure itself", "a straight line", "the residues shuffled"]).round(3)

# %% [markdown]
# The seed reported 0.885 / 0.885 / 0.884 for fp32 / fp16 / int8 with a contact-map measure it does not define; with
# a straight line scoring ≈ 0.97 on an all-pairs measure, numbers in that range cannot tell recipes apart. The rest of
# this notebook uses the metrics above.

# %% [markdown]
# ## 2 · The benchmark set
#
# The default set is 20 experimental structures (35–390 residues; X-ray and NMR; 1CA2 is the seed's protein), read
# from the shared data folder or downloaded from RCSB. `BENCHMARK = "cameo"` uses the 183 CAMEO 2022 targets (31–709
# residues, [EigenFold's list](https://github.com/bjing2016/EigenFold)), downloaded on first use.
# [CAMEO](https://www.cameo3d.org) is the continuous automated blind evaluation of structure prediction: each week
# it asks servers to predict structures about to be released by the PDB.
#
# Predictions are made from the deposited (SEQRES) sequence — the sequence the depositors of a PDB entry say was in
# the sample, including residues not resolved in the structure — and scored only on the residues the experiment
# observed: the two are paired by sequence alignment (1CA2: 259 deposited, 256 observed).

# %%
targets = (accuracy.cameo_targets() if BENCHMARK == "cameo" else accuracy.local_targets())[:MAX_TARGETS]
pd.DataFrame(targets)[["target", "file", "chain"]].assign(length=[len(t["sequence"]) for t in targets])

# %% [markdown]
# ## 3 · Fold every target with every recipe, and score
#
# Each recipe is loaded once. Tier 1 compares each prediction with the reference prediction of the same sequence
# (no experiment needed); tier 2 compares it with the experimental structure. The table is tidy — one row per target ×
# recipe — and carries its provenance (device, versions, date, weights), so it can be saved and compared across runs.
#
# Before folding, ask the predictor which folds fit a T4. fp32's weights leave little room, and the longest target
# does not fit: `accuracy.evaluate` skips a fold predicted not to fit (its row says why), tries a borderline one
# (an out-of-memory is caught), and for a target without a reference prediction compares with the next recipe that
# folded it — fp16, whose language model is the checkpoint's own precision (notebook 02). The `reference` column
# says which.

# %% tags=["show-output"]
for target in targets:
    for recipe in RECIPES:
        said, why = fit.verdict(recipe, len(target["sequence"]), CHUNK, gpu.T4)
        if said != "fits":
            print(f"{target['target']}: {why}")

# %%
from pathlib import Path

predictions = {}
results = accuracy.evaluate(RECIPES, targets, DEVICE, reference=REFERENCE, chunk_size=CHUNK, keep=predictions)
Path("outputs").mkdir(exist_ok=True)
results.to_csv("outputs/05_accuracy.csv", index=False)
print(notebook.label("every target × recipe"))
results.filter(["target", "recipe", "status", "reference", "TM-score vs reference", "TM-score", "lDDT-Cα", "GDT-TS",
                "mean pLDDT (Cα)"]).round(3)

# %% [markdown]
# ## 4 · Tier 1 — how much does each recipe change the prediction?

# %%
tier1 = ["TM-score vs reference", "Cα-RMSD vs reference (Å)", "lDDT-Cα vs reference", "ΔpLDDT mean (Cα)", "ΔpTM"]
compared = results[results["recipe"] != results["reference"]]
print(notebook.label(f"tier 1: each recipe against {REFERENCE} (or, where {REFERENCE} did not fold, the reference "
                     "column's recipe)"))
compared.groupby("recipe", sort=False)[tier1].agg(["mean", "min", "max"]).round(4).assign(
    targets=compared.groupby("recipe", sort=False).size())

# %% [markdown]
# Per residue, for one protein (1CA2, the seed's, when it is in the set): where does each recipe move the confidence?

# %%
shown = "1CA2_A" if any(t["target"] == "1CA2_A" for t in targets) else targets[0]["target"]
plots.plot_plddt_differences({v: predictions.get((v, shown)) for v in RECIPES}, reference=REFERENCE,
                             provenance=notebook.provenance_line(DEVICE));

# %% [markdown]
# ## 5 · Tier 2 — accuracy against experiment
#
# Means per recipe, then the **paired** difference to fp32 (same targets, so target difficulty cancels) with a 95 %
# bootstrap confidence interval: an interval that contains 0 means this benchmark cannot tell the recipe from fp32.
# A pair needs both predictions, so the intervals cover only the targets fp32 folded — the `targets` column says how
# many.

# %%
tier2 = ["TM-score", "lDDT-Cα", "GDT-TS", "Cα-RMSD (Å)", "contact precision (L/5, |i−j|≥24)", "mean pLDDT (Cα)"]
print(notebook.label("tier 2: against the experimental structures"))
results.groupby("recipe", sort=False)[tier2].mean().round(3)

# %%
intervals = pd.DataFrame([accuracy.paired_bootstrap(results, metric, recipe, reference=REFERENCE)
                          for metric in ["TM-score", "lDDT-Cα", "mean pLDDT (Cα)"] for recipe in RECIPES
                          if recipe != REFERENCE])
covered = intervals["targets"] if len(intervals) else pd.Series([0])  # targets folded by both recipes of a pair
span = f"{covered.min()}" if covered.min() == covered.max() else f"{covered.min()}–{covered.max()}"
print(notebook.label(f"paired differences to {REFERENCE}, 95 % bootstrap intervals over {span} of {len(targets)} "
                     "targets (those both recipes folded)"))
intervals.round(4)

# %%
provenance = notebook.provenance_line(DEVICE)  # names the weights: a stand-in says "random weights" in every footer
plots.plot_calibration(results, provenance=provenance).set_title(notebook.label("Is pLDDT calibrated?"));

# %%
plots.plot_metric_histograms(results, ["TM-score", "lDDT-Cα", "mean pLDDT (Cα)"],
                             seed_plddt=data.SEED_MEAN_PLDDT, provenance=provenance);

# %% [markdown]
# The dashed lines are the seed article's mean pLDDTs (81.11 / 81.07 / 80.35 for fp32 / fp16 / int8, over its own
# proteins of 30–480 residues), **cited** from [its repository](https://github.com/davideaguglia/ESMFold) — a
# different protein set, shown for scale only.
#
# *With a stand-in model every number in this section is meaningless (the banner at the top says so): real accuracy
# needs the real weights. No result of this notebook is committed to the repository; run it to get yours.*

# %% [markdown]
# ## 6 · What published work measured — and what a run of this notebook adds
#
# **Published (cited, not run here).** For a reader without the weights, this is the evidence on the title's question:
# - The seed article found fp16 and int8 within 0.8 pLDDT of fp32 on average (its numbers: section 5), and reports
#   "little or no variation" when its language model runs in fp16 ([its README](https://github.com/davideaguglia/ESMFold)).
#   That is one protein, and pLDDT is the model's own confidence, not accuracy against experiment.
# - [Peng et al., arXiv 2310.19624](https://arxiv.org/abs/2310.19624), "Exploring post-training quantization of
#   protein language models", quantized ESMFold's weights **and activations** to 8 bits uniformly and report that its
#   TM-score drops; they trace the loss to the activations and propose a different quantization for them. The series'
#   Quanto `int8` stores **weights only** (activations stay fp32, notebook 03), so that study bounds what full 8-bit
#   arithmetic costs; it does not measure weight-only int8, int4 or an fp16 language model.
# - fair-esm, the original implementation, runs the language model in fp16 by default, so the `fp16` recipe should be
#   indistinguishable from fp32; `int8` and `int4` round every weight and are the recipes to watch.
# - ESMFold's accuracy against experiment on CAMEO and CASP14, and its pLDDT calibration, are reported by
#   [Lin et al., Science 2023](https://doi.org/10.1126/science.ade2574) (Fig. 2 and its supplement): high-pLDDT
#   predictions are usually accurate; low-pLDDT regions often are not. For the 65-residue example of the
#   [ESM README](https://github.com/facebookresearch/esm), the published prediction has an all-atom mean pLDDT of 88.3
#   (notebook 01; the repository's real-weights test checks it).
#
# **What a run with the real weights shows.** Sections 4 and 5 above: every recipe against fp32 and against
# experiment, on these targets, with confidence intervals. No such run is committed yet: the committed notebook keeps
# only outputs that need no weights (`make outputs` refreshes those, with the tiny stand-in). To commit yours, run the
# notebook with the real weights on a GPU (`make tutorial`, or Colab), then commit `outputs/05_accuracy.csv`, which
# section 3 writes with its provenance (GPU, versions, date, weights) on every row.

# %% [markdown]
# ## Recap
# - Score predictions with TM-score, lDDT-Cα, GDT-TS, RMSD and long-range contact precision — never with an
#   all-pairs contact agreement, which a straight line passes.
# - Compare a recipe with fp32 first (tier 1: needs no experiment), then with experiment (tier 2), with paired
#   differences and confidence intervals over the same targets.
# - The NMR noise floor says how close “as good as experiment” is.
#
# ## Exercises
# 1. Which metric is most sensitive to a floppy tail: RMSD or TM-score? Move the last 10 residues of ubiquitin by
#    10 Å and compare.
# 2. Compute the paired bootstrap interval for GDT-TS of `int8` against fp32.
# 3. Which target does `int4` change most against the reference (lowest TM-score vs reference)? Plot its per-residue
#    pLDDT change.
#
# Solutions follow (hidden in Colab and Jupyter; click to expand).

# %% cellView="form" jupyter={"source_hidden": true} tags=["solution"]
# @title Solution 1 — a floppy tail
tail_moved = ubiquitin.copy()
tail_moved[-10:] += np.array([10.0, 0.0, 0.0])
print(f"RMSD {metrics.ca_rmsd(ubiquitin, tail_moved):.2f} Å — TM-score {metrics.tm_score(ubiquitin, tail_moved):.3f} — "
      f"lDDT-Cα {metrics.lddt_ca(ubiquitin, tail_moved):.3f}: RMSD punishes the tail, TM-score barely notices")

# %% cellView="form" jupyter={"source_hidden": true} tags=["solution"]
# @title Solution 2 — GDT-TS interval
accuracy.paired_bootstrap(results, "GDT-TS", "int8")

# %% cellView="form" jupyter={"source_hidden": true} tags=["solution"]
# @title Solution 3 — where int4 moves most
int4 = results[(results["recipe"] == "int4") & (results["status"] == "ok")]
if int4.empty:  # e.g. RECIPES without "int4"
    print("int4 folded no target here: nothing to compare")
else:
    worst = int4.loc[int4["TM-score vs reference"].idxmin()]
    print(f"{worst['target']}: TM-score {worst['TM-score vs reference']:.3f} against {worst['reference']}")
    plots.plot_plddt_differences({v: predictions.get((v, worst["target"])) for v in [worst["reference"], "int4"]},
                                 reference=worst["reference"], provenance=notebook.provenance_line(DEVICE));

# %% [markdown]
# ## Next
# [06 · GPU-poor recipes: long proteins on a T4, CPU offload, batch folding, complexes](06_recipes.ipynb) ([Colab](https://colab.research.google.com/github/OWNER/gpu-poor-esmfold/blob/v0.1.0/notebooks/06_recipes.ipynb))
#
# ← Previous: [04 · Memory and time against sequence length — and “will it fit?”](04_memory_vs_length.ipynb) ([Colab](https://colab.research.google.com/github/OWNER/gpu-poor-esmfold/blob/v0.1.0/notebooks/04_memory_vs_length.ipynb))
