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
# # 04 · Memory and time against sequence length — and “will it fit?”
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/OWNER/gpu-poor-esmfold/blob/v0.1.0/notebooks/04_memory_vs_length.ipynb)
#
# **What you will learn**
# - how peak GPU memory and time grow with sequence length for each recipe, and where a T4 runs out;
# - what the trunk's chunk size buys in memory and costs in time;
# - where one fold's time goes: language model, trunk passes, structure module;
# - how to predict a fold's peak memory on a CPU in seconds — no weights, no GPU — by running the real model code on
#   *fake* tensors, and the “Which recipe fits my hardware?” table computed that way.
#
# **Estimated run time on a free Colab T4:** about 15 minutes, a fresh runtime's setup and 8.4 GB download included
# (2.4 min); 4 checkpoint reads, 36 folds, 5 of them at the edge of memory on purpose (they may run out; the notebook
# catches it) — *an estimate from the series' run plan (figures/t4_plan.csv), not a measurement: fold times measured
# on an H100, × 8.3 for the trunk's compute and × 10.5 for memory-bound steps (the ratios of the two GPUs' published
# fp32 throughput and memory bandwidth), checkpoint reads at 150 MB/s (assumed), the download at 100 MB/s (below the
# 106–175 MB/s reported on Colab); not measured on a T4*.

# %% [markdown]
# ## Setup

# %%
import importlib.metadata
import importlib.util
import subprocess
import sys

IS_COLAB = "google.colab" in sys.modules
REPO = "https://github.com/OWNER/gpu-poor-esmfold"  # stamped by `python -m tools.stamp`
REF = "v0.1.0"
NEEDS = ["optimum-quanto==0.2.7"]  # what this notebook uses that Colab lacks
if importlib.util.find_spec("torchao") is None:  # keep Colab's own torchao where it has one
    NEEDS.append("torchao==0.18.0")
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

from helpers import benchmark, data, fit, folding, gpu, memory, models, notebook, plots

DRIVE_CACHE = False  # True: keep the 8.4 GB checkpoint in your Google Drive, so a fresh runtime does not download it
if DRIVE_CACHE:
    notebook.use_drive_cache()

# %% [markdown]
# ## Parameters
# Which recipes, chunk sizes and lengths the sweep measures. The sweep times **one trunk pass** per fold
# (`num_recycles=0`): peak memory does not depend on the number of passes (an H100 measured the same peak for 1 and 4
# passes at 480 aa), and four passes would take four times as long. `FULL = True` runs the whole grid — every recipe
# × chunk size none/128/64/32 × lengths up to where a T4 runs out: hours on a T4.

# %%
DEVICE = notebook.start()  # "cuda"
FULL = False
if FULL:
    RECIPES, CHUNKS = [r for r in models.RECIPES if r not in ("fp16-seed", "bf16")], [None, 128, 64, 32]
    LENGTHS = [30, 64, 128, 256, 384, 480, 640, 768, 896, 1024, 1280, 1536]
else:
    RECIPES, CHUNKS, LENGTHS = ["fp32", "fp16", "int8"], [None, 32], [30, 128, 256, 384, 480, 640, 768]
SWEEP_RECYCLES = 0  # one trunk pass per fold in the sweep (None: the default 4)
STAGE_LENGTH = 256  # section 5's protein length

# %% [markdown]
# ## 1 · One protein, three chunk sizes
#
# `model.trunk.set_chunk_size(n)` makes triangle attention work on n rows of the pair representation at a time
# (`None`: all at once). The same protein, folded unchunked and with chunk 32, each inside `memory.measure` —
# notebook 01's `reset_peak_memory_stats` / `max_memory_allocated` pair, with reserved memory and nvidia-smi's number
# beside it. First what the predictor expects on a free T4:

# %%
import pandas as pd

model, tokenizer = models.load_model("fp16", device=DEVICE)  # notebook 02's fp16_esm load, in one call
sequence, origin = data.sequence_of_length(LENGTHS[-1])
for chunk in [None, *CHUNKS[1:]]:
    print(fit.verdict("fp16", len(sequence), chunk, gpu.T4)[1])
chunk_rows = []
for chunk in [None, *CHUNKS[1:]]:
    model.trunk.set_chunk_size(chunk)
    with memory.measure(f"chunk {chunk}", device=DEVICE, chunk_size=chunk or "none", may_run_out=True) as record:
        folding.fold(model, tokenizer, sequence, num_recycles=SWEEP_RECYCLES)
    chunk_rows.append(record)
print(notebook.label(f"fp16, {origin}, one trunk pass"))
pd.DataFrame(chunk_rows)

# %% [markdown]
# Unchunked, the fold is predicted not to fit a T4, and on one it runs out of memory — caught, freed, explained
# (`may_run_out=True` says the cell expects it). Chunked, the same fold fits.

# %% [markdown]
# ## 2 · Where the time goes
#
# The same model, one fold of `STAGE_LENGTH` residues with the default 4 trunk passes, split with forward hooks into
# the language model (runs once), each of the 4 trunk passes (48 blocks each) and the structure module — time, and
# the peak memory reached inside each stage (weights included):

# %%
model.trunk.set_chunk_size(64)
stages = benchmark.stage_times(model, tokenizer, data.sequence_of_length(STAGE_LENGTH)[0])
del model
memory.free_memory()
print(notebook.label(f"stages of one fold, fp16, {STAGE_LENGTH} aa, chunk 64"))
pd.Series(stages).round(3)

# %% [markdown]
# With the real model the trunk dominates time: 4 passes × 48 blocks, in fp32 in every recipe of notebooks 02–03.
# Halving or quantizing the language model changes only the first row — which is why fp16 is not faster than fp32
# (notebook 03 compares int8's stages with fp32's). Memory peaks inside the trunk passes (pair representation and
# triangle attention); the language model's own activations are small at these lengths.

# %% [markdown]
# ## 3 · The sweep
#
# `benchmark.sweep` is section 1's cell in a loop: for each recipe it loads the model **once**, then folds sequences
# of increasing length with each chunk size, resetting the peak-memory counters before every fold. A sweep looks for
# the edge: a recipe/chunk size that runs out of memory skips its longer lengths (the error is caught; the kernel
# survives). Sequences are
# real: the first L residues of the SARS-CoV-2 spike protein (UniProt P0DTC2, 1,273 aa) — memory and time depend on
# the length, not the letters; past 1,273 the sequence is repeated, and the table says so.

# %%
from pathlib import Path

sweep = benchmark.sweep(RECIPES, LENGTHS, CHUNKS, DEVICE, num_recycles=SWEEP_RECYCLES)
provenance = notebook.provenance_line(DEVICE)
Path("outputs").mkdir(exist_ok=True)
sweep.assign(provenance=provenance).to_csv("outputs/04_sweep.csv", index=False)
sweep["≤ s, 4 passes"] = sweep["seconds"] * 4 / sweep["trunk passes"]  # an upper bound: the LM runs once anyway
print(notebook.label("the sweep (seconds: one trunk pass; ≤ s, 4 passes: what the default recycles would take at most)"))
sweep[["variant", "chunk size", "length", "status", "seconds", "≤ s, 4 passes", "peak allocated (GiB)",
       "predicted peak allocated (GiB)"]].round(3)

# %% [markdown]
# ## 4 · Memory against length
#
# Solid lines are unchunked, dotted ones use chunk size 32 (for the quick grid); the dotted horizontal lines are each
# recipe's weights alone — the floor no fold can go below. The hollow squares are the seed article's published
# `nvidia-smi` readings, **cited** from [its repository](https://github.com/davideaguglia/ESMFold) (GPU not stated,
# no chunking; `nvidia-smi` also counts the CUDA context — 1.14 GiB on an H100 — and the allocator's cache, which
# peak-allocated does not).

# %%
plots.plot_memory_vs_length(sweep, seed=data.SEED_MEMORY_GB, budget_gib=gpu.T4.usable_gib, provenance=provenance,
                            title=notebook.label("Peak memory (allocated) against length"));

# %% [markdown]
# **Reading the curves.**
# - **The floor** is the weights: 13.1 GiB (fp32), 7.9 GiB (fp16 LM), 3.3 GiB (int8). Everything above it is
#   activations.
# - **Quadratic growth** comes from the pair representation: L × L × 128 channels, 4 bytes each, plus the output
#   heads' L × L × 64 logits. A trunk block keeps several pair tensors alive.
# - **Cubic bursts** come from triangle attention, which materialises heads × L × L × L attention logits at once.
#   This is what `set_chunk_size` splits into row blocks.
# - **Chunking does not remove everything**: the triangle multiplicative updates and the pair transition MLP
#   (4 × 128 channels over all L² pairs) are never chunked, so even chunk 32 grows with L². Notebook 07 attacks those.
#
# The sizes, from the real architecture's configuration:

# %% tags=["show-output"]
trunk_sizes = models.load_config("random-full").esmfold_config.trunk
heads = trunk_sizes.pairwise_state_dim // trunk_sizes.pairwise_head_width
for L in (480, 768):
    pair = L * L * trunk_sizes.pairwise_state_dim * 4 / 2**30
    logits = heads * L**3 * 4 / 2**30
    print(f"L = {L}: one fp32 pair tensor {pair:.2f} GiB; triangle attention's logits ({heads} heads × L³) "
          f"{logits:.2f} GiB")

# %% [markdown]
# ## 5 · Time against length, and what chunking costs

# %%
plots.plot_time_vs_length(sweep, provenance=provenance,
                          title=notebook.label("Seconds per trunk pass against length (one pass per fold)"));

# %% [markdown]
# Time grows faster than linearly: the trunk's pair operations are O(L²) per block and triangle attention O(L³).
# Smaller chunks do the same arithmetic in more, smaller pieces — a little slower on a GPU, because each piece
# launches its own kernels.

# %% [markdown]
# ## 6 · Will it fit? Predicting peak memory without a GPU
#
# Memory is decided by the model code, not by the weights' values. So we can run the **real transformers code** on
# PyTorch *fake tensors* — tensors that have a shape, a dtype and a device but no data — and count the bytes of every
# tensor that is alive at each step, freeing them when Python frees them. The highest count is the peak that
# `torch.cuda.max_memory_allocated` would report. No weights are downloaded and no GPU is needed.
#
# First one trunk block, by hand. Under `FakeTensorMode`, building the block and its inputs allocates nothing;
# `memory.LiveBytes` (a dispatch mode that sees every tensor PyTorch creates) counts the bytes of the tensors alive
# at each step of its forward pass:

# %% tags=["show-output"]
import contextlib

import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from transformers.models.esm.modeling_esmfold import EsmFoldTriangularSelfAttentionBlock

trunk_config = models.load_config("random-full").esmfold_config.trunk  # the real architecture's sizes
BLOCK_L = 256


def block_activations(block, L, fake_mode=None):
    """Peak bytes (GiB) that one forward pass of `block` adds at L residues, counted by LiveBytes; with `fake_mode`,
    on fake tensors."""
    mode = fake_mode if fake_mode is not None else contextlib.nullcontext()
    with mode:
        s = torch.zeros(1, L, trunk_config.sequence_state_dim)
        z = torch.zeros(1, L, L, trunk_config.pairwise_state_dim)
        mask = torch.ones(1, L)
    counter = memory.LiveBytes()
    with mode, counter, torch.no_grad():
        for tensor in (s, z, mask):
            counter.track(tensor)
        counter.track_module(block)
        counter.reset_peak()
        before = counter.live
        block(s, z, mask=mask, chunk_size=None)
    return (counter.peak - before) / 2**30


fake_mode = FakeTensorMode(allow_non_fake_inputs=True)
with fake_mode:
    fake_block = EsmFoldTriangularSelfAttentionBlock(trunk_config).eval()
print("a fake weight:", type(fake_block.tri_att_start.mha.linear_q.weight).__name__,
      tuple(fake_block.tri_att_start.mha.linear_q.weight.shape), "— a shape, no data")
predicted = block_activations(fake_block, BLOCK_L, fake_mode)
real_block = EsmFoldTriangularSelfAttentionBlock(trunk_config).eval()  # real tensors (random weights) on this CPU
measured = block_activations(real_block, BLOCK_L)
print(f"one trunk block at L = {BLOCK_L}: {predicted:.3f} GiB of activations on fake tensors, {measured:.3f} GiB "
      "counted during a real forward pass")

# %% [markdown]
# The two agree: the fake run allocates nothing, yet sees every tensor the real one makes. (`fit.block_peak` is this
# cell as a function.) The whole model is the same idea at scale: 36 language-model layers, 4 × 48 trunk blocks, the
# structure module and the heads — about a minute on a laptop's CPU. Two spots in the model read values (pTM's argmax)
# and get a stand-in index; quantized recipes use the fp32 trace for activations plus their exact quantized weight
# bytes, because Quanto's tensors do not run on fake tensors.

# %% tags=["show-output"]
query = fit.predict_peak("fp16", 480, chunk_size=None)
pd.Series(query)

# %% [markdown]
# The seed article measured ≈ 14.4 GB (13.4 GiB) with `nvidia-smi` for this point. The prediction is peak
# *allocated*; `nvidia-smi` also shows the CUDA context (1.14 GiB on an H100) and what PyTorch's caching allocator keeps
# beyond the live tensors. `predicted nvidia-smi (GiB)` above adds both, with terms measured on an H100 — it lies 2–8 %
# above each of the seed's readings (README, "Measured on a GPU").
#
# Every point of the sweep above carries the prediction next to the measurement:

# %%
plots.plot_prediction_vs_measurement(sweep, provenance=provenance);  # under a stand-in: the tiny model's own trace

# %% [markdown]
# ## 7 · Which recipe fits my hardware?
#
# The table below was computed with the predictor over a grid of lengths (64 … 1,536) and chunk sizes, for every
# recipe (`python -m tools.grid grid`, then `python -m tools.figures`): the longest grid length whose predicted need
# fits each GPU size after its CUDA context, with the largest (fastest) chunk size that gets there; "borderline" — an
# estimate, not a verdict — where the need comes within 0.5 GiB of the limit, closer than the assumed CUDA context
# and the allocator cache measured on an H100 can promise. It is a **prediction**, committed with its provenance in
# `figures/04_max_length.csv`; the README shows the same table.

# %% tags=["show-output"]
table = pd.read_csv(data.repo_file("figures/04_max_length.csv"))  # the local copy, or the published one in Colab
table

# %% [markdown]
# **Ask before you fold.** `fit.check_fits` returns the predicted need, or stops with a message that names a recipe
# predicted to fit — a clear error instead of an out-of-memory crash twenty minutes into a download:

# %% tags=["show-output"]
for variant, length in [("fp16", 400), ("fp32", 700)]:
    try:
        print(f"{variant}, {length} aa: fits a free T4, ≈ {fit.check_fits(variant, length, card=gpu.T4):.1f} GiB "
              "as nvidia-smi would show it")
    except fit.TooLongError as err:
        print(err)

# %% tags=["show-output"]
from IPython.display import Image

Image(filename=str(data.repo_file("figures/04_predicted_memory.png")))  # the committed figure (the published copy in Colab)

# %% [markdown]
# ## Recap
# - Peak memory = weights (the floor) + activations that grow with L² (pair representation, output heads) and, in
#   triangle attention, L³. Quantization lowers the floor; chunking flattens the L³ part; neither touches the
#   unchunked L² parts.
# - Time is dominated by the 4 trunk passes, which every recipe here runs in fp32; a sweep can time one pass
#   (`num_recycles=0`) — the peak is the same.
# - `fit.predict_peak(variant, length, chunk_size)` answers “will it fit?” on a CPU by running the real model code on
#   fake tensors; the README's hardware table was computed with it.
#
# ## Exercises
# 1. Predict the peak for the longest protein you care about with the recipe you can afford. Does it fit a T4?
# 2. How much memory does chunk size 32 save over no chunking at L = 768 for fp16, according to the predictor?
# 3. Using the sweep, estimate the exponent of time against length (fit `seconds ∝ L^k` for one recipe).
#
# Solutions follow (hidden in Colab and Jupyter; click to expand).

# %% cellView="form" jupyter={"source_hidden": true} tags=["solution"]
# @title Solution 1 — your protein
print(fit.verdict("int8", 384, None, gpu.T4)[1])  # from the committed grid: instant

# %% cellView="form" jupyter={"source_hidden": true} tags=["solution"]
# @title Solution 2 — what chunking saves
saving = fit.lookup_or_predict("fp16", 768, None) - fit.lookup_or_predict("fp16", 768, 32)
print(f"chunk 32 saves {saving:.2f} GiB at L = 768 (fp16 LM)")

# %% cellView="form" jupyter={"source_hidden": true} tags=["solution"]
# @title Solution 3 — how time scales
import numpy as np

ok = sweep[(sweep["status"] == "ok") & (sweep["variant"] == RECIPES[0]) & (sweep["chunk size"] == "none")]
k, _ = np.polyfit(np.log(ok["length"]), np.log(ok["seconds"]), 1)
print(f"seconds ∝ L^{k:.2f} for {RECIPES[0]} (unchunked) over L = {ok['length'].min()}–{ok['length'].max()}"
      if len(ok) > 1 else f"{RECIPES[0]} unchunked fitted fewer than two lengths: try another recipe")

# %% [markdown]
# ## Next
# [05 · How much accuracy does each recipe cost?](05_accuracy.ipynb) ([Colab](https://colab.research.google.com/github/OWNER/gpu-poor-esmfold/blob/v0.1.0/notebooks/05_accuracy.ipynb)) — measuring accuracy properly, against fp32 and
# against experimental structures.
#
# ← Previous: [03 · Quanto int8 and beyond](03_quantization.ipynb) ([Colab](https://colab.research.google.com/github/OWNER/gpu-poor-esmfold/blob/v0.1.0/notebooks/03_quantization.ipynb))
