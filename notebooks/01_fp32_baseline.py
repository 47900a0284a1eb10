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
# **Estimated run time on a free Colab T4:** about 4 minutes, download included ([how it is
# estimated](../docs/results.md#how-the-t4-run-times-are-estimated)).
#
# This series runs Meta's ESMFold ([Lin et al., Science 2023](https://doi.org/10.1126/science.ade2574)) through
# Hugging Face `transformers`, following and extending the article
# [“GPU poor ESMFold through Hugging Face and Quanto”](https://github.com/davideaguglia/ESMFold) — the *seed
# article*, or *seed*, whose recipes and measurements the series starts from. This first notebook is the baseline
# that every later notebook is compared with. Two words used from the start: *activations* are the tensors a fold
# computes on the way (as opposed to the weights), and *nvidia-smi* is NVIDIA's command-line tool that shows how much
# of a GPU's memory is in use.

# %% [markdown]
# ## Setup
# **First choose a GPU: *Runtime → Change runtime type → T4 GPU*.**
#
# In Colab this cell installs the few packages Colab lacks (never its torch or transformers); on your own computer,
# install them first (README). Every fresh Colab runtime downloads the 8.4 GB checkpoint again, a minute or two.
# To keep it in your Google Drive instead (folder *MyDrive/hf-cache*, 8.4 GB of a free account's 15 GB), set
# `DRIVE_CACHE = True` before *Run all*, and click *Connect to Google Drive* when Colab asks.

# %%
import importlib.metadata
import subprocess
import sys

IS_COLAB = "google.colab" in sys.modules
REPO = "https://github.com/OWNER/gpu-poor-esmfold"  # stamped by `python -m tools.stamp`
REF = "v0.1.0"
NEEDS = ["py3Dmol"]  # what this notebook uses that Colab lacks (pinned in helpers/colab.py)
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

from helpers import data, fit, folding, gpu, memory, models, notebook, plots, structure

# %% [markdown]
# ## Parameters
# `MODEL_ID` is what `from_pretrained` opens: the real `facebook/esmfold_v1` on the Hugging Face hub — or, when
# `ESMFOLD_WEIGHTS=tiny` is set (the tests do), a tiny random-weight stand-in of the same classes in a local folder,
# which *rehearses* the notebook as a free T4 would run it (every fold planned against a T4's memory). Every call
# below is the same either way. `notebook.start()` checks your torch/transformers versions (a warning, never an
# error), prints a large banner if a **stand-in** is in use, and stops with a clear message if no GPU is visible — the
# real fp32 model on a Colab CPU runtime would fill its 12.7 GB of RAM and kill the kernel.

# %%
MODEL_ID = models.checkpoint_path()  # "facebook/esmfold_v1" (or a stand-in's folder)
DEVICE = notebook.start()  # "cuda"

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
# We can count the parameters of each stage *before downloading anything*: built on PyTorch's `meta` device, the
# model has every shape but no data. The configuration is esmfold_v1's own (a few kB) — under a stand-in too, so the
# numbers here are always the real model's.

# %% tags=["show-output"]
import pandas as pd
import torch
from transformers import EsmForProteinFolding

config = models.load_config("random-full")  # esmfold_v1's configuration (random-full = the real architecture)
with torch.device("meta"):
    skeleton = EsmForProteinFolding(config)


def count(module):
    return sum(p.numel() for p in module.parameters())


structure_module = count(skeleton.trunk.structure_module)
counts = {"language model (ESM-2)": count(skeleton.esm),
          "folding trunk": count(skeleton.trunk) - structure_module,
          "structure module": structure_module}
counts["heads and adapters"] = count(skeleton) - sum(counts.values())
counts["total"] = count(skeleton)
params = pd.DataFrame({"parameters": counts})
params["billions"] = (params["parameters"] / 1e9).round(3)
params["share"] = (params["parameters"] / counts["total"]).map("{:.0%}".format)
params

# %% [markdown]
# The language model holds 80 % of the parameters. The folding trunk is much smaller, but as we will see in
# notebook 04, it is the trunk's *activations* — not its weights — that grow with sequence length.
# (`models.component_parameters(model)` is this cell in one function; later notebooks use it.)

# %% [markdown]
# ## 2 · The memory arithmetic
#
# Every parameter stored in fp32 takes 4 bytes. So the weights alone need:

# %% tags=["show-output"]
GIB = 2**30
fp32_gib = {stage: n * 4 / GIB for stage, n in counts.items()}
print(f"fp32 weights: {counts['total'] / 1e9:.3f} B parameters × 4 bytes = "
      f"{counts['total'] * 4 / 1e9:.2f} GB = {fp32_gib['total']:.2f} GiB")
print(f"a free Colab T4: {gpu.T4.total_gib:.2f} GiB for a process, of which the CUDA context takes ≈ "
      f"{gpu.T4.context_gib} GiB → {gpu.T4.usable_gib - fp32_gib['total']:.2f} GiB left for all activations")

# %% tags=["show-output"]
from IPython.display import Image

Image(filename=str(data.repo_file("figures/01_weights_per_stage.png")))  # the committed figure (the published copy in Colab)

# %% [markdown]
# *Computed from the esmfold_v1 architecture (parameter count × bytes per parameter; exact and device-independent;
# regenerate with `make figures`).*
#
# **A T4's budget, and where it comes from.** Each step has one name, used in every notebook
# ([the table, with sources](../docs/results.md#a-t4s-memory-budget)). nvidia-smi shows a Colab T4 with 15,360 MiB
# (the *nvidia-smi total*). CUDA offers a process 15,835,660,288 bytes of it — 14.75 GiB, the *CUDA total*
# (PyTorch's out-of-memory message writes the same bytes as "14.74 GiB"). The **CUDA context** — CUDA's own code and
# data, loaded when a process first touches the GPU — takes "around 400MB"
# ([a PyTorch maintainer](https://github.com/pytorch/pytorch/issues/109888)). What is left is *PyTorch's budget*,
# 14.35 GiB. The context is *assumed* for a T4, not measured (on an H100 it measured 1.14 GiB,
# `fit.CUDA_CONTEXT_GIB`), so every verdict of this series within 0.5 GiB of the limit is called *borderline*.
#
# The real checkpoint on the hub is 8.44 GB, not 14 GB, because it stores the language model in fp16
# (2.832 B × 2 bytes + 0.693 B × 4 bytes). We load it with `dtype=torch.float32`, which upcasts the language
# model to fp32 on the way in: this is the *baseline* the seed article starts from. Notebook 02 keeps it in fp16.

# %% [markdown]
# ## 3 · From a sequence to model inputs
#
# The tokenizer turns one-letter codes into token ids. ESMFold wants the bare sequence: `add_special_tokens=False`
# (the language model's start and end tokens are added inside the model).

# %% tags=["show-output"]
from transformers import AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained(MODEL_ID)
inputs = tokenizer(["MKTAYIAKQR"], return_tensors="pt", add_special_tokens=False)
print(inputs["input_ids"])
print(tokenizer.convert_ids_to_tokens(inputs["input_ids"][0]))

# %% [markdown]
# The tokenizer silently maps anything it does not know to an "unknown" token. So check the sequence first:
# `folding.validate_sequence` normalises it (whitespace removed, upper-cased) and rejects what ESMFold cannot take,
# naming the bad characters and where they are.

# %% tags=["show-output"]
print(folding.validate_sequence("  mktvrq erlk\n"))
for bad in ["", "   ", "MKTV1RQ-ERLK", "MKTVBZU"]:
    try:
        folding.validate_sequence(bad)
    except folding.SequenceError as err:
        print(f"{bad!r:>16} → {err}")

# %% [markdown]
# ## 4 · Load the fp32 model onto the GPU, and measure it
#
# Two things about `from_pretrained`:
# - `device_map=DEVICE` places each tensor straight on the GPU, so Colab's 12.7 GB of CPU RAM never has to hold the
#   whole model;
# - the `dtype` is always given explicitly: its default has changed between transformers versions.
#
# To measure memory, PyTorch keeps a running maximum of the bytes its tensors occupy on the GPU:
# `torch.cuda.reset_peak_memory_stats()` restarts it, `torch.cuda.max_memory_allocated()` reads it. A small
# function that times a step and reads its peak (on a machine without CUDA it reports no GPU peak):

# %%
import time


def timed(step):
    """Run `step()`; return its result, the seconds it took and its peak GPU memory allocated (GiB)."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    result = step()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return result, time.perf_counter() - start, torch.cuda.max_memory_allocated() / GIB


model, seconds, peak = timed(lambda: EsmForProteinFolding.from_pretrained(
    MODEL_ID, dtype=torch.float32, device_map=DEVICE))
model.eval()
print(f"loaded in {seconds:.1f} s; peak GPU memory allocated {peak:.2f} GiB")
print("dtypes:", sorted({str(p.dtype) for p in model.parameters()}),
      f"| weights: {sum(p.numel() * p.element_size() for p in model.parameters()) / GIB:.2f} GiB")

# %% [markdown]
# `nvidia-smi` shows more than `max_memory_allocated`: the CUDA context (≈ 0.4 GiB on a T4, assumed) and the blocks PyTorch's caching
# allocator keeps for reuse (`torch.cuda.max_memory_reserved()`). The helpers' `memory.measure` is `timed` grown up:
# it records allocated, reserved and nvidia-smi's number, the CPU's peak RAM, and if memory runs out inside it, it
# frees the memory and prints what to do next instead of killing your session. We use it from here on.

# %% [markdown]
# ## 5 · Fold a protein
#
# The fold itself is one call under `torch.inference_mode()` (no gradients are kept). `num_recycles=None` keeps the
# model's default: 4 trunk passes (`num_recycles=N` would run N + 1).

# %%
sequence = data.REFERENCE_65AA
model.trunk.set_chunk_size(64)
with memory.measure("fold 65 aa", device=DEVICE, recipe="fp32", length=len(sequence), chunk_size=64) as fold_record:
    inputs = tokenizer([sequence], return_tensors="pt", add_special_tokens=False).to(DEVICE)
    with torch.inference_mode():
        outputs = model(**inputs, num_recycles=None)
pd.Series(fold_record)

# %% [markdown]
# The outputs are a dictionary of tensors. The ones you read:
# - `outputs.plddt` — shape (batch, L, 37): a pLDDT for each of the 37 atom slots of each residue, **on a 0–1
#   scale** (every published ESMFold number is 0–100). Slot 1 is the Cα atom;
# - `outputs.ptm` — one number for the whole (unpadded) structure, 0–1;
# - `outputs.positions` — (structure-module blocks, batch, L, 14, 3): atom coordinates in Å after each of the
#   structure module's 8 blocks, in the last trunk pass; `[-1]` is the final structure;
# - `model.output_to_pdb(outputs)` — a PDB text per sequence (it writes pLDDT 0–1 into the B-factor column).

# %%
print({k: tuple(v.shape) for k, v in outputs.items() if k in ("plddt", "ptm", "positions")})
plddt_ca = outputs.plddt[0, :, 1].float().cpu() * 100
print(f"mean pLDDT (Cα) {plddt_ca.mean():.1f} · pTM {float(outputs.ptm):.3f}")
pdb_text = model.output_to_pdb(outputs)[0]
print(pdb_text.splitlines()[1][:66])

# %% [markdown]
# The same steps as one function — validate, tokenize, run, read — the way you would write it for your own work:

# %%
def fold(model, tokenizer, sequence, num_recycles=None):
    """Fold one protein; return (mean pLDDT over Cα atoms 0–100, pTM, per-residue Cα pLDDT 0–100)."""
    sequence = folding.validate_sequence(sequence)
    inputs = tokenizer([sequence], return_tensors="pt", add_special_tokens=False).to(model.device)
    with torch.inference_mode():
        outputs = model(**inputs, num_recycles=num_recycles)
    plddt = outputs.plddt[0, :, 1].float().cpu() * 100
    return float(plddt.mean()), float(outputs.ptm), plddt


mean_plddt, ptm, plddt = fold(model, tokenizer, sequence)
print(f"mean pLDDT (Cα) {mean_plddt:.1f} · pTM {ptm:.3f}")

# %% [markdown]
# From here on the series calls `folding.fold` — this function plus the all-atom mean pLDDT, the PDB (with pLDDT
# 0–100 in its B-factors) and padded batches. The next cell checks that both give the same answer:

# %%
result = folding.fold(model, tokenizer, sequence)
assert abs(result.mean_plddt_ca - mean_plddt) < 1e-3 and abs(result.ptm - ptm) < 1e-5
print(f"all-atom mean pLDDT {result.mean_plddt_all_atom:.1f} (published: {data.REFERENCE_65AA_PLDDT})")
pd.Series({**fold_record, **result.summary()}).to_frame(notebook.label("fold of 65 aa, fp32"))

# %% [markdown]
# How to read the numbers:
# - **pLDDT** (0–100) is the model's confidence in each residue's local structure: > 90 very high, 70–90
#   confident, 50–70 low, < 50 very low.
# - **Mean pLDDT** comes in two flavours and papers rarely say which: over Cα atoms (one value per residue) or
#   over all atoms. ESMFold's own outputs (e.g. 88.3 for the ESM README's example) are all-atom means.
# - **pTM** (0–1) estimates how well the overall fold — not just local structure — is predicted.
# - **Peak allocated** is what PyTorch's tensors needed at most; **peak reserved** adds PyTorch's caching
#   allocator's spare blocks; **device used** is what `nvidia-smi` shows (everything, CUDA context included).

# %% [markdown]
# ## 6 · Save and look at the prediction
#
# The PDB file carries the pLDDT (0–100) in its B-factor column, so any viewer can colour by confidence.

# %%
from pathlib import Path

out_dir = Path("outputs")
out_dir.mkdir(exist_ok=True)
print("saved", result.save_pdb(out_dir / "esm_example_fp32.pdb"))

# %% [markdown]
# The interactive view below (rotate with the mouse) colours each residue by its pLDDT band. It only appears in
# a running notebook; on GitHub, look at the static pLDDT plot after it.

# %%
structure.show_structure(result.pdb).show()

# %%
plots.plot_plddt(result.plddt, title=notebook.label(f"ESM README example (65 aa), fp32 — mean pLDDT "
                                                    f"{result.mean_plddt_ca:.1f} (Cα)"),
                 provenance=notebook.provenance_line(DEVICE));

# %% [markdown]
# What the real model predicts for the same sequence — the published ESMFold prediction (all-atom mean pLDDT 88.3),
# drawn from its PDB file:

# %% tags=["show-output"]
Image(filename=str(data.repo_file("figures/01_reference_plddt.png")))  # the committed figure (the published copy in Colab)

# %% [markdown]
# ## 7 · Will the seed's protein fit?
#
# The seed article folds human carbonic anhydrase II (PDB [1CA2](https://www.rcsb.org/structure/1CA2)): 259
# residues in the deposited sequence, 256 of them resolved in the crystal structure (the article says “256”).
# The weights leave about 1.2 GiB of a T4. The largest single activation of the trunk is its **triangle
# attention** — each pair of residues (i, j) attends over every third residue k, so it materialises a
# heads × L × L × L tensor of attention logits at once (computed here from the real architecture's sizes):

# %% tags=["show-output"]
seed = data.seed_sequence()
L = len(seed)
trunk_config = config.esmfold_config.trunk
heads = trunk_config.pairwise_state_dim // trunk_config.pairwise_head_width
pair_gib = L * L * trunk_config.pairwise_state_dim * 4 / GIB
logits_gib = heads * L**3 * 4 / GIB
print(f"L = {L}: pair representation {pair_gib:.3f} GiB; triangle-attention logits {logits_gib:.3f} GiB "
      f"unchunked, {logits_gib * 64 / L:.3f} GiB in chunks of 64 rows")

# %% [markdown]
# The softmax and masking make further copies of those logits, on top of weights that already fill most of the card.
# A **trunk chunk size** makes triangle attention run that many rows at a time — the same numbers, computed in
# pieces, a little slower, less memory: `model.trunk.set_chunk_size(64)`.
#
# Will it fit? Notebook 04's predictor answers without a GPU (it runs the real model code on tensors without data,
# and adds the allocator's cache and a T4's CUDA context; `fit.verdict`):

# %% tags=["show-output"]
for chunk in (None, 64):
    print(fit.verdict("fp32", L, chunk, gpu.T4)[1])

# %% [markdown]
# Unchunked, 1CA2 sits at the edge of a T4: the estimate cannot say which side. So we **try it on purpose**, inside
# `memory.measure(..., may_run_out=True)`: if memory runs out, the error is caught, the memory freed, and the cell
# says what to do next — the kernel survives. Then the same fold with chunk 64.

# %%
model.trunk.set_chunk_size(None)
with memory.measure("1CA2, fp32, unchunked", device=DEVICE, may_run_out=True) as unchunked:
    folding.fold(model, tokenizer, seed)
model.trunk.set_chunk_size(64)
with memory.measure("1CA2, fp32, chunk 64", device=DEVICE) as chunked:
    folding.fold(model, tokenizer, seed)
print(notebook.label("1CA2 in fp32 on this GPU"))
pd.DataFrame([unchunked, chunked]).set_index("label").filter(["status", "seconds", "peak allocated (GiB)",
                                                               "device used, nvidia-smi (GiB)"])

# %% [markdown]
# Whatever the first row says on your T4, the chunked fold is the one to use. The seed article measured 16 GB with
# nvidia-smi for this protein, unchunked. Notebook 02 makes room the cheap way: half the language model.

# %% [markdown]
# ## Recap
# - ESMFold = ESM-2 language model (2.83 B parameters, runs once) → folding trunk (0.69 B, runs 4 times) →
#   structure module. 3.53 B parameters × 4 bytes ≈ 14.1 GB (13.1 GiB) in fp32: nearly a whole free T4.
# - `AutoTokenizer.from_pretrained` + `tokenizer(..., add_special_tokens=False)`;
#   `EsmForProteinFolding.from_pretrained(..., dtype=torch.float32, device_map=...)`; `model(**inputs)` under
#   `torch.inference_mode()`; pLDDT is 0–1 in the outputs (×100 for the published scale), pTM 0–1.
# - `torch.cuda.reset_peak_memory_stats()` / `max_memory_allocated()` measure a step's peak; nvidia-smi shows more.
# - Activations grow with L² (pair representation) and, in triangle attention, L³; `model.trunk.set_chunk_size`
#   trades a little time for memory. In fp32, 1CA2 fits a T4 only with chunking (estimate).
# - `memory.measure(..., may_run_out=True)` tries a fold that may not fit: out of memory is caught, freed, explained.
#   Default recycles: `num_recycles=None`.
#
# ## Exercises
# 1. Fold the 65-residue protein with `num_recycles=0` (a single trunk pass). How much faster is it, and how does
#    mean pLDDT change? (Only the real weights can tell you whether the structure got worse.)
# 2. How many GiB does the language model alone take in fp32, and what fraction of a T4 is that? What would it be
#    at 2 bytes per parameter?
# 3. Does chunk size 32 buy anything over 64 for 1CA2 in fp32? Ask the predictor (`fit.verdict`) before folding.
#
# Solutions follow (hidden in Colab and Jupyter; click to expand).

# %% cellView="form" jupyter={"source_hidden": true} tags=["solution"]
# @title Solution 1 — fewer recycles
# both timed now: the first fold of section 5 also paid CUDA's start-up, which would flatter the comparison
with memory.measure("fold, 4 passes", device=DEVICE) as four_passes:
    default = folding.fold(model, tokenizer, sequence)
with memory.measure("fold, 1 pass", device=DEVICE) as one_pass:
    quick = folding.fold(model, tokenizer, sequence, num_recycles=0)
print(f"4 passes: {four_passes['seconds']:.1f} s, mean pLDDT {default.mean_plddt_ca:.1f}")
print(f"1 pass:   {one_pass['seconds']:.1f} s, mean pLDDT {quick.mean_plddt_ca:.1f}")

# %% cellView="form" jupyter={"source_hidden": true} tags=["solution"]
# @title Solution 2 — the language model's share
lm = counts["language model (ESM-2)"]
print(f"fp32: {lm * 4 / GIB:.2f} GiB = {lm * 4 / GIB / gpu.T4.total_gib:.0%} of a T4; "
      f"fp16: {lm * 2 / GIB:.2f} GiB — the saving notebook 02 is about")

# %% cellView="form" jupyter={"source_hidden": true} tags=["solution"]
# @title Solution 3 — chunk 32 against chunk 64
for chunk in (64, 32):
    print(fit.verdict("fp32", L, chunk, gpu.T4)[1])
print("The same: below 64 rows the chunked logits are no longer the peak — the trunk's other L × L tensors are "
      "(notebook 07).")

# %% [markdown]
# ## Next
# [02 · Half the language model: fp16](02_fp16.ipynb) ([Colab](https://colab.research.google.com/github/OWNER/gpu-poor-esmfold/blob/v0.1.0/notebooks/02_fp16.ipynb)) — the first and cheapest saving: store the 2.8 B-parameter
# language model in 2 bytes per parameter.
#
# ← Previous: [the README](../README.md) (the series table)
