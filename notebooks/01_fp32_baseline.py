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
# # 01 · The fp32 baseline: ESMFold at full precision on a GPU
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/OWNER/gpu-poor-esmfold/blob/v0.1.0/notebooks/01_fp32_baseline.ipynb)
#
# **What you will learn**
# - what ESMFold is made of — a protein language model, a folding trunk and a structure module — and how many
#   parameters each part has (counted from the model, not quoted);
# - why the full-precision (fp32) model needs ≈ 14 GB just for its weights — nearly all of a free Colab T4;
# - how to load it straight onto the GPU, fold a protein, and read pLDDT and pTM correctly;
# - how to measure peak GPU memory and time, and what to do when memory runs out;
# - how to save the prediction as a PDB file and look at it.
#
# **Estimated run time on a free Colab T4:** about 10 minutes, most of it the one-time 8.4 GB download
# (*an estimate: no T4 was available to measure it*).
#
# This series runs Meta's ESMFold ([Lin et al., Science 2023](https://doi.org/10.1126/science.ade2574)) through
# Hugging Face `transformers`, following and extending the article
# [“GPU poor ESMFold through Hugging Face and Quanto”](https://github.com/davideaguglia/ESMFold). This first
# notebook is the baseline that every later notebook is compared with.

# %% [markdown]
# ## Setup
# On Colab this installs the few packages Colab lacks (it never touches Colab's torch or transformers); on your
# own machine it does nothing — install with `make setup` or `environment.yml` instead.
# Choose a GPU runtime first: *Runtime → Change runtime type → T4 GPU*.

# %%
import importlib.util
import subprocess
import sys

IS_COLAB = "google.colab" in sys.modules
REPO = "https://github.com/OWNER/gpu-poor-esmfold"  # stamped by `python -m helpers.notebook stamp`
REF = "v0.1.0"
if IS_COLAB and importlib.util.find_spec("helpers") is None:  # idempotent: a second run installs nothing
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "py3Dmol==2.5.5"], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", f"git+{REPO}@{REF}"], check=True)
elif importlib.util.find_spec("helpers") is None:
    sys.path.insert(0, "..")  # running from a clone without `pip install -e .`

from helpers import data, folding, memory, models, notebook, plots, structure

DEVICE = notebook.start()

# %% [markdown]
# `notebook.start()` checks your torch/transformers versions (a warning, never an error), prints a large banner
# if a **stand-in model** is in use (see the README: the tests run every notebook with a tiny random-weight
# model), and stops here with a clear message if no GPU is visible — loading the real fp32 model on a Colab
# CPU runtime would fill its 12.7 GB of RAM and kill the kernel.

# %% [markdown]
# ## 1 · What ESMFold is made of
#
# ESMFold predicts a 3D structure from a single sequence in three stages:
#
# 1. **ESM-2 language model** (36 transformer layers): reads the sequence and produces a representation of each
#    residue. It runs **once** per prediction.
# 2. **Folding trunk** (48 blocks): refines a per-residue (*single*) and a per-pair-of-residues (*pair*)
#    representation. The pair representation has L × L entries — this is why memory grows with the square of
#    the sequence length L. The trunk runs **4 times** by default: its output is fed back in (*recycling*).
# 3. **Structure module**: turns the representations into 3D atom coordinates, plus confidence heads for
#    pLDDT (per residue) and pTM (whole structure).
#
# We can count the parameters of each stage *before downloading anything*: PyTorch's `meta` device builds the
# model with every shape but no data.

# %%
import pandas as pd

counts = models.component_parameters(models.meta_model())
params = pd.DataFrame({"parameters": counts})
params["billions"] = (params["parameters"] / 1e9).round(3)
params

# %% [markdown]
# The language model holds about 80 % of the parameters. The folding trunk is much smaller, but as we will see
# in notebook 04, it is the trunk's *activations* — not its weights — that grow with sequence length.

# %% [markdown]
# ## 2 · The memory arithmetic
#
# Every parameter stored in fp32 takes 4 bytes. So the weights alone need:

# %%
GIB = memory.GIB
fp32_gib = {stage: n * 4 / GIB for stage, n in counts.items()}
print(f"fp32 weights: {counts['total'] / 1e9:.3f} B parameters × 4 bytes = "
      f"{counts['total'] * 4 / 1e9:.2f} GB = {fp32_gib['total']:.2f} GiB")
print(f"free Colab T4 budget usable by PyTorch: {memory.T4_BUDGET_GIB} GiB "
      f"→ {memory.T4_BUDGET_GIB - fp32_gib['total']:.2f} GiB left for the CUDA context and all activations")

# %% [markdown]
# ![fp32 weights per stage against a T4](https://raw.githubusercontent.com/OWNER/gpu-poor-esmfold/v0.1.0/figures/01_weights_per_stage.png)
#
# *Computed from the esmfold_v1 architecture (parameter count × bytes per parameter; exact and device-independent;
# regenerate with `make figures`).*
#
# The real checkpoint on the hub is 8.44 GB, not 14 GB, because it stores the language model in fp16
# (2.832 B × 2 bytes + 0.693 B × 4 bytes). We load it with `dtype=torch.float32`, which upcasts the language
# model to fp32 on the way in: this is the *baseline* the seed article starts from. Notebook 02 keeps it in fp16.
#
# Two things about loading:
# - `device_map=...` makes `from_pretrained` place each tensor straight on the GPU, so Colab's 12.7 GB of CPU RAM
#   never has to hold the whole model.
# - The dtype is always given explicitly: the default has changed between transformers versions.

# %% [markdown]
# ## 3 · Check the input first
#
# `folding.validate_sequence` normalises a sequence (whitespace removed, upper-cased) and rejects anything ESMFold
# cannot take, naming the bad characters and where they are. Every fold in this series goes through it.

# %%
print(folding.validate_sequence("  mktvrq erlk\n"))
for bad in ["", "   ", "MKTV1RQ-ERLK", "MKTVBZU"]:
    try:
        folding.validate_sequence(bad)
    except folding.SequenceError as err:
        print(f"{bad!r:>16} → {err}")

# %% [markdown]
# ## 4 · Load the fp32 model onto the GPU
#
# `models.load_model` wraps `EsmForProteinFolding.from_pretrained(..., dtype=torch.float32, device_map=DEVICE)` and
# the matching tokenizer. `memory.measure` records wall time, peak memory allocated and reserved by PyTorch, and
# the memory in use on the whole device as `nvidia-smi` reports it (what the seed article quoted). If memory runs
# out inside it, it catches the error, frees memory, and prints what to do next — the kernel survives.

# %%
with memory.measure("load fp32", device=DEVICE, variant="fp32") as load_record:
    model, tokenizer = models.load_model("fp32", device=DEVICE)
weights = models.weights_bytes(model)
print(f"weights on the device: {weights['total'] / GIB:.2f} GiB, dtypes: {sorted({str(p.dtype) for p in model.parameters()})}")
pd.Series(load_record)

# %% [markdown]
# ## 5 · Fold the seed's protein
#
# The seed article folds human carbonic anhydrase II (PDB [1CA2](https://www.rcsb.org/structure/1CA2)): 259
# residues in the deposited sequence, 256 of them resolved in the crystal structure (the article says “256”).
#
# **Will it fit?** The weights leave about 1.4 GiB of a T4, and the CUDA context takes a few hundred MiB of
# that. The largest single activation of the trunk is its triangle attention, which materialises a
# heads × L × L × L tensor of attention logits at once:

# %%
seed = data.seed_sequence()
L = len(seed)
trunk_cfg = model.config.esmfold_config.trunk
heads = trunk_cfg.pairwise_state_dim // trunk_cfg.pairwise_head_width
pair_gib = L * L * trunk_cfg.pairwise_state_dim * 4 / GIB
logits_gib = heads * L**3 * 4 / GIB
print(f"L = {L}: pair representation {pair_gib:.3f} GiB; triangle-attention logits {logits_gib:.3f} GiB "
      f"unchunked, {logits_gib * 64 / L:.3f} GiB in chunks of 64 rows")

# %% [markdown]
# With the real architecture (4 pair heads) the unchunked logits are ≈ 0.26 GiB per tensor, and the softmax and
# masking make further copies of the same size — several hundred MiB on top of weights that already fill 90 % of
# the card. Notebook 04's “will it fit?” predictor, which runs this model code on fake tensors, puts the whole fold
# at 13.94 GiB of tensors unchunked and 13.57 GiB with chunk size 64 (predictions, not measurements); add the CUDA
# context (a few hundred MiB) and PyTorch's allocator reserve, and unchunked is a gamble on a 14.56 GiB T4. We
# therefore fold with a **trunk chunk size of 64**: triangle attention then runs 64 rows at a time
# (the same numbers, computed in pieces — slightly slower, much less memory). Notebook 04 measures exactly how much
# each chunk size saves, at every length. If you see “Out of memory” below, try 32.
#
# `num_recycles=None` keeps the model's default: 4 trunk passes (`num_recycles=N` would run N + 1).

# %%
model.trunk.set_chunk_size(64)
with memory.measure("fold 1CA2", device=DEVICE, variant="fp32", length=L, chunk_size=64) as fold_record:
    result = folding.fold(model, tokenizer, seed, num_recycles=None)
print(result.summary())
results = pd.DataFrame([load_record, fold_record])
results

# %% [markdown]
# How to read the numbers:
# - **pLDDT** (0–100) is the model's confidence in each residue's local structure: > 90 very high, 70–90
#   confident, 50–70 low, < 50 very low. The Hugging Face model returns it on a 0–1 scale; the helpers rescale it
#   to 0–100, the scale of every published ESMFold number.
# - **Mean pLDDT** comes in two flavours and papers rarely say which: over Cα atoms (one value per residue) or
#   over all atoms. ESMFold's own outputs (e.g. 88.3 for the ESM README's example) are all-atom means.
# - **pTM** (0–1) estimates how well the overall fold — not just local structure — is predicted.
# - **Peak allocated** is what PyTorch's tensors needed at most; **peak reserved** adds PyTorch's caching
#   allocator's spare blocks; **device used** is what `nvidia-smi` shows (everything, CUDA context included).

# %% [markdown]
# ## 6 · Save and look at the prediction
#
# The PDB file carries the pLDDT (0–100) in its B-factor column, so any viewer can colour by confidence. It is
# written by `transformers`' own PDB writer.

# %%
from pathlib import Path

out_dir = Path("outputs")
out_dir.mkdir(exist_ok=True)
print("saved", result.save_pdb(out_dir / "1CA2_fp32.pdb"))

# %% [markdown]
# The interactive view below (rotate with the mouse) colours each residue by its pLDDT band. It only appears in
# a running notebook; on GitHub, look at the static pLDDT plot after it.

# %%
structure.show_structure(result.pdb).show()

# %%
plots.plot_plddt(result.plddt, title=f"1CA2, fp32 — mean pLDDT {result.mean_plddt_ca:.1f} (Cα)",
                 provenance=notebook.provenance_line(DEVICE));

# %% [markdown]
# What a real prediction looks like — the published ESMFold prediction for the ESM README's 65-residue example
# (all-atom mean pLDDT 88.3), drawn from its PDB file:
#
# ![pLDDT of the published 65-residue prediction](https://raw.githubusercontent.com/OWNER/gpu-poor-esmfold/v0.1.0/figures/01_reference_plddt.png)

# %% [markdown]
# ## Recap
# - ESMFold = ESM-2 language model (2.83 B parameters, runs once) → folding trunk (0.69 B, runs 4 times) →
#   structure module. 3.53 B parameters × 4 bytes ≈ 14.1 GB (13.1 GiB) in fp32: nearly a whole free T4.
# - Load with an explicit `dtype` and `device_map`, so the weights go straight to the GPU.
# - Activations grow with L² (pair representation) and, in triangle attention, L³; a trunk chunk size trades a
#   little time for a lot of memory.
# - pLDDT is 0–100 after rescaling; say whether a mean is over Cα or all atoms. Default recycles: `num_recycles=None`.
#
# ## Exercises
# 1. Fold 1CA2 with `num_recycles=0` (a single trunk pass). How much faster is it, and how does mean pLDDT change?
#    (Only the real weights can tell you whether the structure got worse.)
# 2. How many GiB does the language model alone take in fp32, and what fraction of a T4's budget is that? What
#    would it be at 2 bytes per parameter?
# 3. Fold the ESM README's 65-residue example (`data.REFERENCE_65AA`) and compare your all-atom mean pLDDT with
#    the published 88.3. With the real weights they should agree to within a few tenths.
#
# Solutions follow (hidden in Colab and Jupyter; click to expand).

# %% tags=["solution"] jupyter={"source_hidden": true} cellView="form"
# @title Solution 1 — fewer recycles
with memory.measure("fold 1CA2, 1 pass", device=DEVICE, variant="fp32", length=L) as one_pass:
    quick = folding.fold(model, tokenizer, seed, num_recycles=0)
print(f"4 passes: {fold_record['seconds']:.1f} s, mean pLDDT {result.mean_plddt_ca:.1f}")
print(f"1 pass:   {one_pass['seconds']:.1f} s, mean pLDDT {quick.mean_plddt_ca:.1f}")

# %% tags=["solution"] jupyter={"source_hidden": true} cellView="form"
# @title Solution 2 — the language model's share
lm = counts["language model (ESM-2)"]
print(f"fp32: {lm * 4 / GIB:.2f} GiB = {lm * 4 / GIB / memory.T4_BUDGET_GIB:.0%} of a T4; "
      f"fp16: {lm * 2 / GIB:.2f} GiB — the saving notebook 02 is about")

# %% tags=["solution"] jupyter={"source_hidden": true} cellView="form"
# @title Solution 3 — the published example
reference = folding.fold(model, tokenizer, data.REFERENCE_65AA)
print(f"all-atom mean pLDDT {reference.mean_plddt_all_atom:.1f} (published {data.REFERENCE_65AA_PLDDT}); "
      f"Cα mean {reference.mean_plddt_ca:.1f}")
if models.is_stand_in():
    print("(stand-in model: these numbers are meaningless — run with the real weights to compare)")

# %% [markdown]
# ## Next
# [02 · Half the language model: fp16](02_fp16.ipynb) — the first and cheapest saving: store the 2.8 B-parameter
# language model in 2 bytes per parameter.
#
# ← Previous: [the README](../README.md) (the series table)
