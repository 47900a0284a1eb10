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
# **Estimated run time on a free Colab T4:** about 14 minutes, download included ([how it is
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
NEEDS = ["optimum-quanto", "torchao"]  # what this notebook uses that Colab lacks (pinned in helpers/colab.py)
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

from helpers import benchmark, data, fit, folding, gpu, memory, models, notebook, plots, recipes

# %% [markdown]
# ## Parameters
# Which recipes, chunk sizes and lengths the sweep measures. The sweep times **one trunk pass** per fold
# (`num_recycles=0`): one pass peaks slightly lower than the default four (section 3 prints an H100's measurement),
# and four would take up to four times as long (the language model runs once either way).
#
# `FULL = True` runs the whole grid — every recipe × chunk size none/128/64/32 × lengths up to where a T4 runs out.
# That is many times the folds of the quick grid, and the T4 time estimate above does not include it.

# %%
DEVICE = notebook.start()  # "cuda"
FULL = False
if FULL:
    RECIPES, CHUNKS = recipes.shown_in(recipes.GPU_SWEEP), [None, 128, 64, 32]
    LENGTHS = [30, 64, 128, 256, 384, 480, 640, 768, 896, 1024, 1280, 1536]
else:
    RECIPES, CHUNKS, LENGTHS = ["fp32", "fp16", "int8"], [None, 32], [30, 128, 256, 384, 480, 640, 768]
SWEEP_RECYCLES = 0  # one trunk pass per fold in the sweep (None: the default 4)
STAGE_LENGTH = 256  # section 2's protein length

# %% [markdown]
# ## 1 · One protein, with and without chunking
#
# ESMFold's folding trunk works on a **pair representation**: one vector for every pair of residues (i, j), an
# L × L × 128 tensor for a protein of L residues. **Triangle attention** updates pair (i, j) by attending over the
# pairs (i, k) of its row, with a bias from (j, k), the third edge of the triangle i–j–k (a second triangle attention
# does the same along columns). It computes one score per attention head for every (i, j, k): heads × L³ numbers. `model.trunk.set_chunk_size(n)` makes triangle attention
# work on n rows of the pair representation at a time (`None`: all rows at once). Section 4 computes these sizes.
#
# The same protein is folded unchunked and with chunk 32, each inside `memory.measure`. It records three numbers
# (notebook 01's `reset_peak_memory_stats` / `max_memory_allocated` pair gives the first):
# - **peak allocated**: the most bytes held by live tensors at any moment;
# - **peak reserved**: allocated plus the **allocator cache**, freed blocks that PyTorch's caching allocator keeps
#   for reuse instead of handing them back to the driver;
# - **nvidia-smi**: what the GPU's own tool shows for the whole process, reserved plus the **CUDA context** (the
#   memory of the CUDA driver and libraries).
#
# First what the predictor expects on a free T4 (section 6 shows how it predicts without a GPU):

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
# Unchunked, the fold is predicted to need far more than a T4 offers (the first line above), so on a T4 it runs out
# of memory — caught, freed, explained (`may_run_out=True` says the cell expects it). Chunked, it is predicted to fit.

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
# On a GPU with the real model, compare the rows. The trunk runs 4 passes of 48 blocks (section 6 prints the
# architecture's counts), and its activations stay fp32 in every recipe of notebooks 02–03. fp16 halves only the
# language model, which runs once: the first row is the only one it can shorten (notebook 03 compares int8's stages
# with fp32's). The peak column shows which stage sets the fold's peak memory.

# %% [markdown]
# ## 3 · The sweep
#
# `benchmark.sweep` is section 1's cell in a loop: for each recipe it loads the model **once**, then folds sequences
# of increasing length with each chunk size, resetting the peak-memory counters before every fold. A sweep looks for
# the edge: a recipe/chunk size that runs out of memory skips its longer lengths (the error is caught; the kernel
# survives). Sequences are real: the first L residues of the SARS-CoV-2 spike protein
# ([UniProt P0DTC2](https://www.uniprot.org/uniprotkb/P0DTC2), 1,273 aa) — memory and time depend on the length, not
# the letters; past 1,273 the sequence is repeated, and the table says so. Beside each measurement the table shows
# the predictor's number for the same fold (section 6).
#
# Timing one trunk pass per fold is safe for memory. An H100 folded the same protein with one pass and with the
# default four (`figures/09_gpu_check.csv`):

# %% tags=["show-output"]
gpu_check = pd.read_csv(data.repo_file("figures/09_gpu_check.csv"))  # the local copy, or the published one in Colab
passes = gpu_check[(gpu_check["step"] == "fold") & (gpu_check["recipe"] == "int8") & (gpu_check["length"] == 480)]
passes = passes.astype({"length": int, "trunk passes": int})
print(passes[["device", "recipe", "length", "trunk passes", "peak allocated (GiB)"]].to_string(index=False))
one, four = (passes.loc[passes["trunk passes"] == n, "peak allocated (GiB)"].iloc[0] for n in (1, 4))
print(f"one pass peaks {(four - one) / four:.1%} below four passes")

# %%
from pathlib import Path

sweep = benchmark.sweep(RECIPES, LENGTHS, CHUNKS, DEVICE, num_recycles=SWEEP_RECYCLES)
provenance = notebook.provenance_line(DEVICE)
Path("outputs").mkdir(exist_ok=True)
sweep.assign(provenance=provenance).to_csv("outputs/04_sweep.csv", index=False)
sweep["≤ s, 4 passes"] = sweep["seconds"] * 4 / sweep["trunk passes"]  # an upper bound: the LM runs once anyway
print(notebook.label("the sweep (seconds: one trunk pass; ≤ s, 4 passes: what the default recycles would take at most)"))
sweep[["recipe", "chunk size", "length", "status", "seconds", "≤ s, 4 passes", "peak allocated (GiB)",
       "predicted peak allocated (GiB)"]].round(3)

# %% [markdown]
# ## 4 · Memory against length
#
# Solid lines are unchunked, dotted ones use chunk size 32 (for the quick grid); the dotted horizontal lines are each
# recipe's weights alone — the floor no fold can go below. The hollow squares are `nvidia-smi` readings **cited**
# from the article this series starts from, the *seed* ([its repository](https://github.com/davideaguglia/ESMFold);
# GPU not stated, no chunking). `nvidia-smi` also counts the CUDA context and the allocator cache (section 1), which
# peak allocated does not.

# %%
plots.plot_memory_vs_length(sweep, seed=data.SEED_MEMORY_GB, budget_gib=gpu.T4.usable_gib, provenance=provenance,
                            title=notebook.label("Peak memory (allocated) against length"));

# %% [markdown]
# **Reading the curves.** The cell after this list computes each size from the real architecture.
# - **The floor** is the weights. Everything above it is activations.
# - **Quadratic growth** comes from the pair representation, L × L × 128 fp32 numbers, and the output heads'
#   logits: L × L × 64 each for the distogram head (a distance distribution in 64 bins for every pair) and the pTM
#   head (pTM: predicted TM-score, the model's confidence in the whole fold). A trunk block keeps several pair
#   tensors alive.
# - **Cubic bursts** come from triangle attention's logits, heads × L × L × L scores computed at once; its softmax
#   briefly makes a second tensor of the same size (section 6 counts both). With `set_chunk_size(n)` it computes
#   them for n rows at a time, heads × n × L × L, and writes each chunk's result into one pair-sized output.
# - **Chunking does not remove everything.** The **triangle multiplicative updates** (pair (i, j) updated from the
#   products of pairs (i, k) and (j, k), summed over all k) and the pair transition (a two-layer MLP on every pair,
#   4 × 128 hidden channels) are never chunked. So even chunk 32 grows with L². Notebook 07 attacks those.

# %% tags=["show-output"]
architecture = models.meta_model("random-full")  # the real architecture on the meta device: shapes, no weights
trunk_sizes = architecture.config.esmfold_config.trunk
heads = trunk_sizes.pairwise_state_dim // trunk_sizes.pairwise_head_width
bins = architecture.distogram_head.out_features  # the pTM head has as many
transition = architecture.trunk.blocks[0].mlp_pair.mlp[1]  # the pair transition's first Linear
for recipe in RECIPES:  # the sweep's recipes: their weights, computed from the architecture
    print(f"floor, {recipe}: {models.expected_weights_bytes(recipe)['total'] / 2**30:.2f} GiB of weights")
print(f"pair representation: {trunk_sizes.pairwise_state_dim} channels; output heads: {bins} bins; pair transition: "
      f"{transition.in_features} → {transition.out_features} channels; triangle attention: {heads} heads of "
      f"{trunk_sizes.pairwise_head_width} channels")
for L in (480, 768):
    pair = L * L * trunk_sizes.pairwise_state_dim * 4 / 2**30
    head_logits = L * L * bins * 4 / 2**30
    logits = heads * L**3 * 4 / 2**30
    chunk_logits = heads * 32 * L**2 * 4 / 2**30
    print(f"L = {L}: one fp32 pair tensor {pair:.2f} GiB; one output head's L × L × {bins} logits "
          f"{head_logits:.2f} GiB; triangle attention's logits ({heads} heads × L³ × 4 bytes) {logits:.2f} GiB "
          f"unchunked, {chunk_logits:.3f} GiB for 32 rows at a time")

# %% [markdown]
# ## 5 · Time against length, and what chunking costs

# %%
plots.plot_time_vs_length(sweep, provenance=provenance,
                          title=notebook.label("Seconds per trunk pass against length (one pass per fold)"));

# %% [markdown]
# Time grows faster than linearly: per block, the pair transition's work grows as L², triangle attention's and the
# triangle multiplications' as L³. Smaller chunks do the same arithmetic in more, smaller pieces, each with its own
# GPU kernel launches; the sweep's `seconds` column shows what that costs on your GPU.

# %% [markdown]
# ## 6 · Will it fit? Predicting peak memory without a GPU
#
# Memory is decided by the model code, not by the weights' values. So we can run the **real transformers code** on
# PyTorch *fake tensors* — tensors that have a shape, a dtype and a device but no data — and count the bytes of every
# tensor that is alive at each step, freeing them when Python frees them. The highest count is the peak that
# `torch.cuda.max_memory_allocated` would report. No weights are downloaded and no GPU is needed.
#
# Two pieces of PyTorch do it. Inside `with FakeTensorMode():`, every tensor created, and every module built, is
# fake. A `TorchDispatchMode` is a hook that PyTorch calls for every operation it runs (a matmul, a softmax, an
# addition): the counter below records the storage of each tensor an operation returns, and a `weakref.finalize`
# callback tells it when Python frees that storage.
#
# First one trunk block of the real architecture, by hand: on fake tensors, then the same code on real tensors
# (on this machine's CPU; on a GPU also with `torch.cuda.max_memory_allocated`).

# %% tags=["show-output"]
import contextlib
import weakref

import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from transformers.models.esm.modeling_esmfold import EsmFoldTriangularSelfAttentionBlock


class CountLiveBytes(TorchDispatchMode):
    """Sees every operation PyTorch runs; adds up the bytes of the tensors alive now, and keeps the peak."""

    def __init__(self):
        super().__init__()
        self.live = self.peak = 0
        self.bytes_of = {}  # id of each storage alive now → its bytes

    def track(self, tensor):
        storage = tensor.untyped_storage()  # a view shares its base's storage: counted once
        key = id(storage)
        if key not in self.bytes_of:
            self.bytes_of[key] = storage.nbytes()
            self.live += storage.nbytes()
            self.peak = max(self.peak, self.live)
            weakref.finalize(storage, self.forget, key)  # runs when Python frees the storage

    def forget(self, key):
        self.live -= self.bytes_of.pop(key)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))  # run the operation (on fake tensors: shapes only)
        for leaf in tree_leaves(out):
            if isinstance(leaf, torch.Tensor):
                self.track(leaf)
        return out


def activation_peak(module, *inputs, mode=None):
    """Peak bytes one forward pass of `module` adds over its inputs and weights (inside `mode`, if given)."""
    counter = CountLiveBytes()
    with mode or contextlib.nullcontext(), counter, torch.no_grad():
        for tensor in (*inputs, *module.parameters(), *module.buffers()):
            counter.track(tensor)
        before = counter.live
        module(*inputs)
    return counter.peak - before


trunk_config = models.load_config("random-full").esmfold_config.trunk  # the real architecture's sizes
BLOCK_L, GIB = 256, 2**30


def block_and_inputs():
    """One trunk block and its inputs (sequence state, pair representation, mask) at BLOCK_L residues."""
    block = EsmFoldTriangularSelfAttentionBlock(trunk_config).eval()
    inputs = (torch.zeros(1, BLOCK_L, trunk_config.sequence_state_dim),
              torch.zeros(1, BLOCK_L, BLOCK_L, trunk_config.pairwise_state_dim), torch.ones(1, BLOCK_L))
    return block, inputs


fake_mode = FakeTensorMode()
with fake_mode:  # built here: fake weights and inputs, no memory
    fake_block, fake_inputs = block_and_inputs()
weight = fake_block.tri_att_start.mha.linear_q.weight
print(f"a fake weight: {type(weight).__name__} of shape {tuple(weight.shape)} — no data")
predicted = activation_peak(fake_block, *fake_inputs, mode=fake_mode)
in_attention = activation_peak(fake_block.tri_att_start, fake_inputs[1], mode=fake_mode)

real_block, real_inputs = block_and_inputs()  # real tensors on the CPU (randomly initialised)
counted = activation_peak(real_block, *real_inputs)
print(f"one trunk block at L = {BLOCK_L}, peak activations over its inputs and weights:")
print(f"  predicted on fake tensors:          {predicted / GIB:.3f} GiB")
print(f"  counted on real tensors (CPU):      {counted / GIB:.3f} GiB  (real / fake = {counted / predicted:.4f})")
if DEVICE.startswith("cuda"):
    gpu_block, gpu_inputs = real_block.to(DEVICE), [t.to(DEVICE) for t in real_inputs]
    with torch.no_grad():
        gpu_block(*gpu_inputs)  # a first pass: the CUDA libraries allocate their workspaces once
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        gpu_block(*gpu_inputs)
        torch.cuda.synchronize()
    allocated = torch.cuda.max_memory_allocated() - before
    print(f"  max_memory_allocated on the GPU:    {allocated / GIB:.3f} GiB  (GPU / fake = {allocated / predicted:.4f})")
    del gpu_block, gpu_inputs
    memory.free_memory()
logits = (trunk_config.pairwise_state_dim // trunk_config.pairwise_head_width) * BLOCK_L**3 * 4
print(f"  of which triangle attention alone:  {in_attention / GIB:.3f} GiB — its logits and their softmax, "
      f"2 × {logits / GIB:.3f} GiB, and pair-sized tensors")
print(f"  the helper, fit.block_peak({BLOCK_L}):   {fit.block_peak(BLOCK_L)['activations peak (GiB)']:.3f} GiB")

# %% [markdown]
# The fake run allocates nothing, yet sees every tensor the real one makes: the same bytes, counted the same way.
# The helpers do exactly this: `memory.LiveBytes` is `CountLiveBytes` with two additions for whole folds, and
# `fit.block_peak` is this cell as a function (its number is the last line).
#
# The whole model is the same idea at scale; the cell below prints its counts of layers and blocks and how long the
# trace took (`seconds to predict`). The two additions: pTM's computation reads values from tensors (an argmax), and
# on fake tensors `LiveBytes` returns a stand-in index of the same size. Quantized recipes use the fp32 trace for
# activations plus their exact quantized weight bytes, because Quanto's tensors do not run on fake tensors.

# %% tags=["show-output"]
full_config = models.load_config("random-full")
print(f"{full_config.num_hidden_layers} language-model layers; {full_config.esmfold_config.trunk.num_blocks} trunk "
      "blocks per pass, 4 passes by default")
query = fit.predict_peak("fp16", 480, chunk_size=None)
pd.Series(query)

# %% [markdown]
# The prediction gives peak *allocated* and, as `predicted nvidia-smi (GiB)`, what `nvidia-smi` should show: the
# allocated peak plus the allocator cache (a share of the activations) and the CUDA context, both terms measured on an
# H100 ([how good is the predictor?](../docs/results.md#how-good-is-the-predictor)). Against the seed's own
# `nvidia-smi` reading for this fold, and its other readings (`figures/04_seed_comparison.csv`):

# %% tags=["show-output"]
seed = pd.read_csv(data.repo_file("figures/04_seed_comparison.csv"))  # the local copy, or the published one in Colab
cited = seed[seed["estimate / seed"] != "—"]
reading = cited[(cited["seed recipe"] == "fp16-seed") & (cited["length"] == 480)].iloc[0]
print(f"the seed's nvidia-smi reading, fp16 language model at 480 aa: {data.SEED_MEMORY_GB['fp16-seed'][480]} GB "
      f"= {float(reading['seed nvidia-smi (GiB)']):.2f} GiB; predicted: {query['predicted nvidia-smi (GiB)']:.2f} GiB")
print(f"terms: CUDA context {fit.CUDA_CONTEXT_GIB} GiB (H100), allocator cache {fit.CACHE_SHARE} × activations")
ratios = cited["estimate / seed"].astype(float)
print(f"over the seed's {len(cited)} readings, predicted / seed lies between {ratios.min():.3f} and {ratios.max():.3f}")

# %% [markdown]
# Every point of the sweep above carries the prediction next to the measurement:

# %%
plots.plot_prediction_vs_measurement(sweep, provenance=provenance);  # under a stand-in: the tiny model's own trace

# %% [markdown]
# ## 7 · Which recipe fits my hardware?
#
# The table below applies the predictor to a grid of lengths and chunk sizes, for every recipe. For each GPU size it
# gives the longest grid length whose predicted need fits after the card's CUDA context, with the largest (fastest)
# chunk size that gets there. "Borderline" — an estimate, not a verdict — marks a need within a margin of the limit
# (printed below), closer than the assumed CUDA context and the allocator cache measured on an H100 can promise.
#
# It is a **prediction**, committed with its provenance in `figures/04_max_length.csv`; `fit.hardware_table()`
# recomputes it from the committed grid, and the [results page](../docs/results.md#which-recipe-fits-my-hardware)
# shows the same table.

# %% tags=["show-output"]
from IPython.display import display

table = pd.read_csv(data.repo_file("figures/04_max_length.csv"))  # the local copy, or the published one in Colab
print(f"grid lengths: {', '.join(map(str, fit.GRID_LENGTHS))}; the lean trunk's (notebook 07) also "
      f"{', '.join(map(str, fit.LEAN_GRID_LENGTHS[len(fit.GRID_LENGTHS):]))}")
print(f"borderline: within {gpu.BORDERLINE_GIB} GiB of the card's limit")
print("provenance:", table["provenance"].iloc[0])  # one provenance for every row
with pd.option_context("display.max_colwidth", None, "display.max_columns", None, "display.width", None):
    display(table.drop(columns="provenance"))

# %% [markdown]
# **Ask before you fold.** `fit.check_fits` returns the predicted need, or stops with a message that names a recipe
# predicted to fit — a clear error before any download or load, instead of an out-of-memory crash later.
#
# It reads the committed grid at the length you ask. Between two grid lengths it interpolates: a power law through
# the two neighbours (400 residues: between 384 and 512), and its message says which lengths it read. The number it
# returns is what `nvidia-smi` should show on that card, so it adds the card's CUDA context: for a T4 an assumed
# one, smaller than the H100's that section 6's `predicted nvidia-smi` adds. The last line compares the two at 480 aa.

# %% tags=["show-output"]
for recipe, length in [("fp16", 400), ("fp32", 700)]:
    try:
        need = fit.check_fits(recipe, length, card=gpu.T4)
        print(f"{recipe}, {length} aa: fits a free T4, ≈ {need:.1f} GiB as nvidia-smi would show it "
              f"({fit.grid_estimate(recipe, length)['how']})")
    except fit.TooLongError as err:
        print(err)
print(f"fp16, 480 aa, as nvidia-smi would show it: {fit.check_fits('fp16', 480, card=gpu.T4):.2f} GiB on a T4 (CUDA "
      f"context {gpu.T4.context_gib} GiB, assumed), {query['predicted nvidia-smi (GiB)']:.2f} GiB on the H100 (CUDA "
      f"context {fit.CUDA_CONTEXT_GIB} GiB, measured; section 6's trace): one need, two CUDA contexts")

# %% tags=["show-output"]
from IPython.display import Image

Image(filename=str(data.repo_file("figures/04_predicted_memory.png")))  # the committed figure (the published copy in Colab)

# %% [markdown]
# ## Recap
# - Peak memory = weights (the floor) + activations that grow with L² (pair representation, output heads) and, in
#   triangle attention, L³. Quantization lowers the floor; chunking flattens the L³ part; neither touches the
#   unchunked L² parts.
# - Time: the trunk's 4 passes keep fp32 activations in every recipe here, and only the language model's row is
#   shortened by fp16; a sweep can time one pass (`num_recycles=0`), whose peak is slightly lower than four passes'
#   (section 3).
# - `FakeTensorMode` plus a `TorchDispatchMode` that counts live storages predicts a peak without a GPU or weights;
#   on one trunk block it matches the real run's count. `fit.predict_peak(recipe, length, chunk_size)` does it for
#   the whole model; the hardware table and `fit.check_fits` read its committed grid.
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

ok = sweep[(sweep["status"] == "ok") & (sweep["recipe"] == RECIPES[0]) & (sweep["chunk size"] == "none")]
k, _ = np.polyfit(np.log(ok["length"]), np.log(ok["seconds"]), 1)
print(f"seconds ∝ L^{k:.2f} for {RECIPES[0]} (unchunked) over L = {ok['length'].min()}–{ok['length'].max()}"
      if len(ok) > 1 else f"{RECIPES[0]} unchunked fitted fewer than two lengths: try another recipe")

# %% [markdown]
# ## Next
# [05 · How much accuracy does each recipe cost?](05_accuracy.ipynb) ([Colab](https://colab.research.google.com/github/OWNER/gpu-poor-esmfold/blob/v0.1.0/notebooks/05_accuracy.ipynb)) — measuring accuracy properly, against fp32 and
# against experimental structures.
#
# ← Previous: [03 · Quanto int8 and beyond: 8-bit, 4-bit and float8 weights](03_quantization.ipynb) ([Colab](https://colab.research.google.com/github/OWNER/gpu-poor-esmfold/blob/v0.1.0/notebooks/03_quantization.ipynb))
