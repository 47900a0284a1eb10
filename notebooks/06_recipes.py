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
# # 06 · GPU-poor recipes: long proteins on a T4, CPU offload, batch folding, complexes
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/OWNER/gpu-poor-esmfold/blob/v0.1.0/notebooks/06_recipes.ipynb)
#
# **What you will learn**
# - how to fold the longest protein a free T4 can take — int8/int4 weights plus trunk chunking — and where that stops;
# - how to keep the 2.8 B-parameter language model off the GPU (accelerate offload) and fold on a 4 GB or 6 GB card;
# - how to fold a whole FASTA file into PDBs and a summary table that survives bad records, out-of-memory and
#   interruptions, with a correct pTM for every sequence of a padded batch;
# - how ESMFold folds a complex: chains joined by a glycine linker, a gap in the residue index, the linker removed.
#
# **Estimated run time on a free Colab T4:** about 17 minutes, a fresh runtime's setup and 8.4 GB download included
# (2.4 min); 3 checkpoint reads, 25 folds — *an estimate from the series' run plan (figures/t4_plan.csv), not a
# measurement: fold times measured on an H100, × 8.3 for the trunk's compute and × 10.5 for memory-bound steps (the
# ratios of the two GPUs' published fp32 throughput and memory bandwidth), checkpoint reads at 150 MB/s (assumed), the
# download at 100 MB/s (below the 106–175 MB/s reported on Colab); not measured on a T4*.

# %% [markdown]
# ## Setup

# %%
import importlib.metadata
import subprocess
import sys

IS_COLAB = "google.colab" in sys.modules
REPO = "https://github.com/OWNER/gpu-poor-esmfold"  # stamped by `python -m tools.stamp`
REF = "v0.1.0"
NEEDS = ["optimum-quanto==0.2.7", "py3Dmol==2.5.5"]  # what this notebook uses that Colab lacks
try:
    importlib.metadata.version("gpu-poor-esmfold")  # the series' helpers are installed (a stray helpers.py is not them)
except importlib.metadata.PackageNotFoundError:
    if IS_COLAB and "/OWNER/" in REPO:
        sys.exit("This copy does not name its repository yet: open the notebook from the Colab badge in the published "
                 "README, or clone the repository and run it on your own machine.")
    if IS_COLAB:  # idempotent: once installed, a second run installs nothing
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", *NEEDS], check=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", f"git+{REPO}@{REF}"], check=True)
    else:
        sys.path.insert(0, "..")  # running from a clone without `pip install -e .`

from pathlib import Path

import pandas as pd

from helpers import accuracy, batch, benchmark, complexes, data, fit, folding, gpu, memory, models, notebook, structure

DRIVE_CACHE = False  # True: keep the 8.4 GB checkpoint in your Google Drive, so a fresh runtime does not download it
if DRIVE_CACHE:
    notebook.use_drive_cache()

# %% [markdown]
# ## Parameters
# The lengths folded, the memory caps (a T4's own on a larger GPU; a 4 GB and a 6 GB card for offloading), where
# offloading puts the language model, how many FASTA records and how long a chain the batch and complex sections take.

# %%
MODEL_ID = models.checkpoint_path()  # "facebook/esmfold_v1" (or a stand-in's folder)
DEVICE = notebook.start()  # "cuda"
LONG = 1024  # section 1's long protein
LONG_RECYCLES = 0  # section 1 times one trunk pass (the default 4 would take four times as long)
T4 = gpu.T4.usable_gib  # a T4's memory for PyTorch: the cap of the measured folds on a larger GPU
OFFLOAD_RUNS = [("4 GB", 192), ("6 GB", 512)]  # (card of gpu.CARDS, length) of the offloaded folds
OFFLOAD_TO = "disk" if DEVICE == "cpu" else "cpu"  # no GPU: the offload hooks stream the LM from disk (a smoke test)
MAX_RECORDS = None  # FASTA records folded in section 3 (shortest first; None: all)
DIMER_CHAIN = None  # residues of each chain in section 4 (None: the whole chain)
WORK = Path("outputs") / "06"
WORK.mkdir(parents=True, exist_ok=True)

# %% [markdown]
# ## 1 · The longest protein on a T4
#
# Notebook 04 showed that past ≈ 500 residues the **activations**, not the weights, fill the GPU. Two levers remain:
# smaller weights (int8, int4) and trunk chunking. The predictor of notebook 04 tells us, without loading anything,
# how far each combination goes on a T4 (its need as nvidia-smi would show it, read from the committed grid with
# `fit.grid_estimate`; default recycles):

# %% tags=["show-output"]
rows = []
for variant in ["fp16", "fp16-offload", "int8", "int4"]:
    for chunk in [None, 64, 32]:
        row = {"recipe": variant, "chunk size": chunk or "none"}
        for length in [1024, 1280, 1536]:
            need = fit.grid_estimate(variant, length, chunk)["reserved (GiB)"]
            said = gpu.verdict(need, gpu.T4.usable_gib)
            row[f"L = {length}"] = f"{need + gpu.T4.context_gib:.1f} GiB" + {"fits": " ✓", "borderline": " ?"}.get(said, "")
        rows.append(row)
print(f"PREDICTED GPU memory of the esmfold_v1 architecture as nvidia-smi would show it; ✓ = fits a free T4 "
      f"({gpu.T4.total_gib:.2f} GiB), ? = borderline (estimate): within {gpu.BORDERLINE_GIB} GiB of the limit, "
      "closer than the assumed CUDA context can promise")
pd.DataFrame(rows)

# %% [markdown]
# Read the table from left to right and top to bottom:
# - **unchunked**, no recipe gets near 1,024 residues: triangle attention materialises heads × L³ logits.
# - **chunk 64 and chunk 32 give the same number.** Chunking (`model.trunk.set_chunk_size`) only splits triangle
#   attention. What is left is the part that chunking does not touch: the triangle multiplicative update and the pair
#   transition MLP work on whole L × L × 128 pair tensors (and the pair MLP widens them to 512 channels), and several
#   L² pair tensors are alive across the recycling loop. That floor grows with L², and at ≈ 1,300 residues it meets
#   the T4 whatever the weights. Notebook 07 removes it.
# - Within that floor, smaller weights buy length: int4 + chunk 64 is predicted to fold **1,024 residues** within a
#   T4 (the table); the whole SARS-CoV-2 spike protein (1,273 aa) is not — it needs notebook 07.
#   (Measured on an H100 under a T4 cap: `int8` + chunk 64 folded 1,024 residues and ran out of memory at 1,280.)
#
# The next cell folds the first `LONG` residues of the spike with `int4`, trunk chunk 64, under a T4 cap
# (`memory.gpu_budget`; on a T4 itself it changes nothing), and puts the measurement next to the prediction. It times
# **one trunk pass** (`num_recycles=0`): the peak memory is the same with the default 4 passes.
# `benchmark.stage_times` splits the time, so the cell can say what the default would take.

# %%
sequence, origin = data.sequence_of_length(LONG)
print(fit.verdict("int4", LONG, 64, gpu.T4)[1])
with memory.gpu_budget(T4):
    model, tokenizer = models.load_model("int4", device=DEVICE, chunk_size=64)
    with memory.measure(f"int4, {LONG} aa, one pass", device=DEVICE, may_run_out=True) as long_fold:
        stages = benchmark.stage_times(model, tokenizer, sequence, num_recycles=LONG_RECYCLES)
del model
memory.free_memory()
print(notebook.label(f"{origin}: status {long_fold['status']}, {long_fold['seconds']:.1f} s for one trunk pass"))
if long_fold["status"] == "ok":
    print(f"with the default 4 passes: ≈ {benchmark.seconds_with_passes(stages, 4):.0f} s "
          "(the language model once, the trunk and structure module 4 times)")
    print(f"measured peak allocated {stages['fold peak (GiB)']:.3f} GiB (on a CPU: the live tensors counted) · "
          f"predicted {fit.grid_estimate('int4', LONG, 64)['allocated (GiB)']:.3f} GiB for the full-size model")

# %% [markdown]
# ## 2 · Keep the language model off the GPU (offload)
#
# The language model is 2.8 of ESMFold's 3.5 B parameters, yet it runs **once** per fold — the 48 trunk blocks run
# four times. So the LM can live in CPU RAM: [accelerate](https://huggingface.co/docs/accelerate/usage_guides/big_modeling)
# hooks move each of its layers to the GPU just before it runs and drop it after. `from_pretrained` does this when
# its `device_map` says `"cpu"` for the `esm` module and the GPU for everything else:

# %%
import torch
from transformers import AutoConfig, AutoTokenizer, EsmForProteinFolding

device_map = {"esm": OFFLOAD_TO, "esm_s_combine": DEVICE, "esm_s_mlp": DEVICE, "embedding": DEVICE,
              "af2_to_esm": DEVICE, "trunk": DEVICE, "distogram_head": DEVICE, "ptm_head": DEVICE,
              "lm_head": DEVICE, "lddt_head": DEVICE}
config = AutoConfig.from_pretrained(MODEL_ID)
config.esmfold_config.fp16_esm = True  # notebook 02: the LM stays in the checkpoint's fp16
offloaded = EsmForProteinFolding.from_pretrained(MODEL_ID, config=config, dtype=torch.float32, device_map=device_map,
                                                 offload_folder=str(WORK / "offload"))
offloaded.eval().trunk.set_chunk_size(64)
tokenizer = AutoTokenizer.from_pretrained(MODEL_ID)
print("language model weights on:", {str(p.device) for p in offloaded.esm.parameters()},
      "| trunk on:", {str(p.device) for p in offloaded.trunk.parameters()})

# %% [markdown]
# The recipe is `fp16-offload`: the fp16 LM in RAM (5.6 GB — fits Colab's 12.7 GB), the fp32 trunk (2.6 GiB) on the
# GPU. Its numbers are exactly `fp16`'s; its cost is copying 5.6 GB over PCIe once per fold. (transformers refuses CPU
# offload for Quanto-quantized models, so there is no int8 + offload recipe.) `models.load_model("fp16-offload")` is
# the load above in one call (`models.offload_device_map` is its map).
#
# We fold with it as on a 4 GB and a 6 GB card: `memory.gpu_budget` caps this process's GPU memory at what such a
# card leaves PyTorch after its CUDA context (`gpu.CARDS`), at lengths the predictor says fit them. Then we load
# plain `fp16` once, fold the same sequences on the T4, and check that the predictions are the same. That `fp16` model
# stays loaded for the rest of the notebook.

# %%
offload_rows, offload_results = [], {}
for card, length in OFFLOAD_RUNS:
    sequence, origin = data.sequence_of_length(length)
    print(fit.verdict("fp16-offload", length, 64, gpu.CARDS[card])[1])
    with memory.gpu_budget(gpu.CARDS[card].usable_gib), memory.measure(f"fp16-offload, {length} aa", device=DEVICE,
                                                                       may_run_out=True) as record:
        offload_results[("fp16-offload", length)] = folding.fold(offloaded, tokenizer, sequence)
    offload_rows.append({"recipe": "fp16-offload", "GPU cap (GiB)": gpu.CARDS[card].usable_gib, "length": length,
                         **record})
del offloaded
memory.free_memory()
model, tokenizer = models.load_model("fp16", device=DEVICE, chunk_size=64)
for _, length in OFFLOAD_RUNS:
    sequence, origin = data.sequence_of_length(length)
    with memory.gpu_budget(T4), memory.measure(f"fp16, {length} aa", device=DEVICE) as record:
        offload_results[("fp16", length)] = folding.fold(model, tokenizer, sequence)
    offload_rows.append({"recipe": "fp16", "GPU cap (GiB)": T4, "length": length, **record})
print(notebook.label("fp16 with and without the language model offloaded"))
pd.DataFrame(offload_rows).filter(["recipe", "GPU cap (GiB)", "length", "status", "seconds", "peak allocated (GiB)",
                                   "device used, nvidia-smi (GiB)"])

# %%
for _, length in OFFLOAD_RUNS:
    a, b = offload_results.get(("fp16", length)), offload_results.get(("fp16-offload", length))
    if a is not None and b is not None:
        diff = abs(a.positions - b.positions).max()
        print(f"L = {length}: largest coordinate difference fp16 vs fp16-offload {diff:.2e} Å")
        assert diff < 1e-3, "offloading must not change the prediction"

# %% [markdown]
# What to look for on a GPU: the offloaded fold's peak is the trunk's weights plus the activations — about 5.3 GiB
# less than `fp16`'s — and its time is `fp16`'s plus the copy of the LM (seconds: PCIe, the bus between CPU RAM and
# the GPU, moves a few GB/s when the source is ordinary, "pageable" memory rather than memory pinned for transfers). When the notebook runs on the tiny stand-in, the numbers above are meaningless; only the equality
# of the two predictions is checked.

# %% [markdown]
# ## 3 · Fold a whole FASTA file
#
# `batch.fold_fasta` folds every record of a FASTA file into `<id>.pdb` (pLDDT 0–100 in the B-factor column, file
# names made safe from the headers) and appends one row per record to `summary.csv`: id, length, mean pLDDT, pTM,
# seconds, peak memory, recipe. Records are sorted by length and packed into padded batches of at most
# `token_budget` residues (batch size × longest length). An invalid record gets a row with the reason; a batch that
# runs out of memory is retried one record at a time, and a record that fails alone gets a row saying so. The run goes
# on either way, and **a second run skips every record already in the summary** — a Colab disconnect costs only the
# batch in flight.
#
# Our file: the 20 experimental targets of notebook 05 plus one broken record.

# %%
targets = accuracy.local_targets()  # notebook 05's 20 targets (shortest first): shared data, else RCSB per entry
records = [(t["target"], t["sequence"]) for t in targets][:MAX_RECORDS]
records.append(("broken_record a sequence with a digit and a gap", "MKT-AYI4AKQR"))
fasta = WORK / "targets.fasta"
fasta.write_text("".join(f">{header}\n{seq}\n" for header, seq in records))
out_dir = WORK / "batch"
for old in out_dir.glob("*"):  # start clean, so that the resume below is visible
    old.unlink()
RECIPE = "fp16, chunk 64"  # section 2's model

# %% [markdown]
# First run, **interrupted** after two folds (`stop_after=2` stands in for a disconnect):

# %%
first = batch.fold_fasta(model, tokenizer, fasta, out_dir, recipe=RECIPE, stop_after=2)
print(notebook.label(f"folded now: {first.attrs['folded now']}"))
first[["id", "length", "status", "mean pLDDT (Cα)", "pTM", "seconds", "reason"]]

# %% [markdown]
# Second run: it resumes — only the records not yet in the summary are folded. A third run folds nothing.

# %%
second = batch.fold_fasta(model, tokenizer, fasta, out_dir, recipe=RECIPE)
third = batch.fold_fasta(model, tokenizer, fasta, out_dir, recipe=RECIPE)
print(notebook.label(f"second run folded {second.attrs['folded now']}, third run folded {third.attrs['folded now']}"))
assert third.attrs["folded now"] == 0 and len(third) == len(records)
assert (third["status"] == "invalid").sum() == 1
second.sort_values("length")[["id", "length", "status", "batch size", "mean pLDDT (Cα)", "pTM", "seconds",
                              "peak memory (GiB)", "pdb"]]

# %% [markdown]
# **One pTM per sequence.** For a padded batch the model's `ptm` output is a single number for the whole batch (the
# maximum over every sequence's alignments, padding included), not one per sequence. `folding.fold_many` computes pTM
# for each sequence from its own block of `ptm_logits`, padding masked out — the check below folds three sequences
# alone and together:

# %%
check = batch.ptm_batch_check(model, tokenizer, [seq for _, seq in records[:3]], num_recycles=None)
check

# %% [markdown]
# The per-sequence column equals folding alone (a test asserts it to 1e-4 on the tiny model); the model's batch
# output does not.

# %% [markdown]
# ## 4 · A complex: two chains in one fold
#
# ESMFold was trained on single chains, but it can fold a complex the way its authors did: join the chains with a
# 25-glycine linker, add 512 to the residue index from the second chain on (so the trunk's relative-position
# features see the chains as far apart), then remove the linker from the structure, the pLDDT and the pTM. Our
# example is 2RBG, a homodimer in the PDB (notebook 05's target list holds its chain A).

# %%
chain = next(t["sequence"] for t in targets if t["target"] == "2RBG_A")
chain = chain[:DIMER_CHAIN]
joined, residue_index, chain_index = complexes.complex_inputs([chain, chain])
print(f"joined length {len(joined)} = {len(chain)} + 25 linker + {len(chain)}; residue index jumps "
      f"{residue_index[len(chain) + 24]} → {residue_index[len(chain) + 25]} at chain B")
dimer = complexes.fold_complex(model, tokenizer, [chain, chain])
print(notebook.label(f"mean pLDDT (Cα, linker excluded) {dimer.mean_plddt_ca:.1f} · per chain {dimer.chain_plddt()} · "
                     f"pTM {dimer.ptm:.3f}"))
dimer.save_pdb(WORK / "2RBG_dimer.pdb")

# %%
pdb_lines = [line for line in dimer.pdb.splitlines() if line.startswith("ATOM")]
chains_in_pdb = sorted({line[21] for line in pdb_lines})
residues = {(line[21], line[22:26]) for line in pdb_lines if line[12:16].strip() == "CA"}
print(f"chains {chains_in_pdb}, {len(residues)} residues (2 × {len(chain)}; the 25 linker glycines are gone)")
assert chains_in_pdb == ["A", "B"] and len(residues) == 2 * len(chain)
structure.show_structure(dimer.pdb)

# %% [markdown]
# With the real weights, look at the interface: are the two copies packed against each other as in the crystal, or
# floating apart? pLDDT says how sure the model is of each chain; it says nothing about the interface. ESMFold's
# paper reports that this linker trick recovers some complexes, not most — treat a predicted interface as a
# hypothesis.

# %% [markdown]
# ## 5 · Which recipe fits my hardware?
#
# Notebook 04's hardware table gave the longest protein per recipe. Turned around — *I have X GB of GPU memory and a
# protein of L residues: what do I use?* — with this notebook's recipes in the ladder (`fit.recommend`):

# %% tags=["show-output"]
fit.recipe_table()

# %% tags=["show-output"]
fit.recommend(6.0, 400)

# %% [markdown]
# The same table is in the README, generated by `python -m tools.figures` into `figures/06_recipes.csv`. Every
# cell is a **prediction** (fake-tensor trace of the esmfold_v1 architecture, default recycles, + the allocator's
# cache as measured on an H100 + each card's CUDA context, 0.4 GiB assumed), a fold that fits with a margin preferred
# over a borderline one; a GPU run of this notebook measures two of them (sections 1 and 2).

# %% [markdown]
# ## Recap
# - On a T4, smaller weights + trunk chunking reach ≈ 1,024 residues (int4, chunk 64); below chunk 64 nothing more is
#   gained, because the triangle multiplication, the pair MLP and the recycling loop's pair tensors are not chunked.
# - Offloading the language model to CPU RAM (`fp16-offload`) takes 5.3 GiB off the GPU without changing a number;
#   it brings a 6 GB card to several hundred residues (the recipe table above).
# - `batch.fold_fasta` turns a FASTA file into PDBs and a summary CSV; bad records and OOM are rows, not crashes, and
#   a rerun resumes. pTM must be computed per sequence from masked `ptm_logits`.
# - Complexes: poly-G linker + residue-index gap, then remove the linker everywhere.
#
# ## Exercises
# 1. `fit.recommend` for your own GPU: what does a 8 GB card get for a 700-residue protein?
# 2. Re-run section 3 with `token_budget=100` (six records are enough): how do the batch sizes change?
# 3. Fold the 2RBG dimer with a 50-glycine linker. Do the per-chain pLDDTs change?
#
# Solutions follow (hidden in Colab and Jupyter; click to expand).

# %% cellView="form" jupyter={"source_hidden": true} tags=["solution"]
# @title Solution 1 — an 8 GB card, 700 residues
print(fit.recommend(8.0, 700))  # (recipe, chunk size, predicted GiB as nvidia-smi would show it)

# %% cellView="form" jupyter={"source_hidden": true} tags=["solution"]
# @title Solution 2 — a smaller token budget
small = WORK / "batch_small"
for old in small.glob("*"):
    old.unlink()
# six records, not all of them: Run all executes this cell too
print(batch.fold_fasta(model, tokenizer, fasta, small, recipe=RECIPE, token_budget=100, stop_after=6)[
    ["id", "length", "batch size"]])

# %% cellView="form" jupyter={"source_hidden": true} tags=["solution"]
# @title Solution 3 — a longer linker
longer = complexes.fold_complex(model, tokenizer, [chain, chain], linker="G" * 50)
print("25 G:", dimer.chain_plddt(), "\n50 G:", longer.chain_plddt())
del model
memory.free_memory()

# %% [markdown]
# ## Next
# [07 · A leaner folding trunk — 3,000 residues on a free T4 (advanced)](07_lean_trunk.ipynb) ([Colab](https://colab.research.google.com/github/OWNER/gpu-poor-esmfold/blob/v0.1.0/notebooks/07_lean_trunk.ipynb))
#
# ← Previous: [05 · How much accuracy does each recipe cost?](05_accuracy.ipynb) ([Colab](https://colab.research.google.com/github/OWNER/gpu-poor-esmfold/blob/v0.1.0/notebooks/05_accuracy.ipynb))
