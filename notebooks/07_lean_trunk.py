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
# # 07 · A leaner folding trunk — 3,000 residues on a free T4 (advanced)
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/OWNER/gpu-poor-esmfold/blob/v0.1.0/notebooks/07_lean_trunk.ipynb)
#
# **What you will learn**
# - where a long fold's memory really goes: not the weights, but a dozen L × L tensors alive at once;
# - why neither quantization nor `set_chunk_size` can fix that, and nine changes to the model code that do — each
#   switchable, each measured (predicted on a CPU, measured on a GPU);
# - how to prove a faster or leaner model still gives the same numbers (equivalence first);
# - how to fold a ~2,000-residue protein within a free T4's memory — about twice the longest protein the original
#   model folds there with trunk chunking (≈ 1,024 aa, notebook 06) — and, in an optional last section, one of
#   3,056 residues.
#
# **Estimated run time on a free Colab T4:** about 30 minutes, a fresh runtime's setup and 8.4 GB download included
# (2.4 min); 1 checkpoint read, 17 folds — *an estimate from the series' run plan (figures/t4_plan.csv), not a
# measurement: fold times measured on an H100, × 8.3 for the trunk's compute and × 10.5 for memory-bound steps (the
# ratios of the two GPUs' published fp32 throughput and memory bandwidth), checkpoint reads at 150 MB/s (assumed), the
# download at 100 MB/s (below the 106–175 MB/s reported on Colab); not measured on a T4*. The optional last section,
# off by default, adds about 25 minutes.

# %% [markdown]
# ## Setup

# %%
import importlib.metadata
import subprocess
import sys

IS_COLAB = "google.colab" in sys.modules
REPO = "https://github.com/OWNER/gpu-poor-esmfold"  # stamped by `python -m tools.stamp`
REF = "v0.1.0"
NEEDS = ["optimum-quanto==0.2.7", "biotite==1.6.0"]  # what this notebook uses that Colab lacks
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
import torch

from helpers import benchmark, data, fit, folding, gpu, lean, memory, metrics, models, notebook

DRIVE_CACHE = False  # True: keep the 8.4 GB checkpoint in your Google Drive, so a fresh runtime does not download it
if DRIVE_CACHE:
    notebook.use_drive_cache()

# %% [markdown]
# ## Parameters
# The recipe, the lengths, the T4 cap, how many trunk passes the long demonstrations run, and the long proteins of
# sections 6 and 9 (the real MYH7 and ATM with real weights, fetched from UniProt; a stand-in folds the SARS-CoV-2
# spike's sequence repeated to the same lengths instead, with nothing to download). Section 9 is optional: its one
# fold takes longer than the rest of the notebook (its T4 time is in the header), so it runs only when
# `FOLD_LONGEST` is True.

# %%
DEVICE = notebook.start()  # "cuda"
RECIPE = "int8"
T4 = gpu.T4.usable_gib  # a T4's memory for PyTorch: the cap of the measured folds on a larger GPU
L_STEPS, L_TIME, L_TRACE = 1000, 800, 1000  # sections 5 and 7; solution 2's traced length
ONE_PASS = 0  # num_recycles of the long demonstrations (sections 5–7): one trunk pass each, minutes on a T4
EQUIVALENCE = data.seed_sequence()  # section 4's protein: 1CA2, 259 aa
FOLD_LONGEST = models.is_stand_in()  # section 9 (optional): True folds 3,056 residues; a stand-in always does
if models.is_stand_in():
    LONG_SEQUENCE, LONG_ORIGIN = data.sequence_of_length(1935)
    LONGEST_SEQUENCE, LONGEST_ORIGIN = data.sequence_of_length(3056)
else:
    LONG_SEQUENCE, LONG_ORIGIN = data.read_fasta(data.fetch("sequences/P12883_MYH7.fasta"))[0][1], "human MYH7, UniProt P12883"
    LONGEST_SEQUENCE, LONGEST_ORIGIN = (data.read_fasta(data.fetch("sequences/Q13315_ATM.fasta"))[0][1],
                                        "human ATM, UniProt Q13315")

# %% [markdown]
# ## 1 · Where the memory goes
#
# The trunk's pair representation holds 128 numbers for every pair of residues: L × L × 128 fp32 values. At
# L = 2,000 one such tensor is **1.9 GiB** — and the original model keeps many of them alive at once:

# %% tags=["show-output"]
pair = pd.DataFrame({"L": [512, 1000, 1500, 2000]})
pair["one pair tensor, fp32 (GiB)"] = (pair["L"] ** 2 * 128 * 4 / 2**30).round(2)
pair["int8 weights (GiB)"] = round(fit.variant_weight_bytes("int8") / 2**30, 2)
pair["a T4's room after the CUDA context and weights, in pair tensors"] = (
    (gpu.T4.usable_gib - pair["int8 weights (GiB)"]) / pair["one pair tensor, fp32 (GiB)"]).round(1)
pair

# %% [markdown]
# With int8 weights a T4 has room for fewer than **6 pair tensors** at L = 2,000 — everything else has to be small (and
# PyTorch's allocator keeps some cache beyond the live tensors).
# Reading transformers' `modeling_esmfold.py` line by line, these are the L × L consumers of one fold:
#
# | where | what is alive | `set_chunk_size` helps? |
# |---|---|---|
# | triangle attention (×2 per block) | a layer-normed copy of z, q/k/v/gate projections (4 pair tensors), and the logits: heads × L × L × L | only the logits |
# | triangle multiplication (×2 per block) | layer-normed z, projections a and b with their gates, the product, its norm (5–6 pair tensors) | no — its in-place variant exists in the code but is never called |
# | pair transition MLP | 128 → 512 channels: 4 pair tensors wide | no |
# | sequence-to-pair | an L × L × 256 intermediate + output | no |
# | recycling loop | the all-zero initial pair state (allocated anyway), the recycled pair, their sum, the current pair | no |
# | structure module | its projected pair input, a layer-normed copy, and invariant point attention's L × L × heads × points × 3 tensors (1.1 GiB at L = 1,024) | no |
# | output heads | distogram, pTM and PAE logits and probabilities: L × L × 64 each | no |
#
# The predictor of notebook 04 confirms it: the original model with trunk chunk 32 — the leanest setting it has —
# and int8 weights needs, at L = 1,024 and L = 1,536 (points of the committed grid: read, not traced):

# %% tags=["show-output"]
for length in (1024, 1536):
    print(fit.verdict("int8", length, 32, gpu.T4)[1])

# %% [markdown]
# ## 2 · Two of the changes, in code
#
# **The pair MLP.** transformers computes `z + mlp(z)` for the whole pair tensor at once: the MLP widens 128 channels
# to 512, so four pair tensors' worth of memory is alive at its peak, plus the new z. The same arithmetic, a block of
# rows at a time, written straight into z:

# %%
from transformers.models.esm.modeling_esmfold import EsmFoldResidueMLP, EsmFoldSequenceToPair


def pair_mlp_in_rows(module, z, rows):
    """z + mlp(z), computed `rows` rows of the pair representation at a time, written into z itself."""
    for start in range(0, z.shape[1], rows):
        z[:, start:start + rows] += module.mlp(z[:, start:start + rows])


# %% [markdown]
# Before using it, check it against the original forward. Any weights will do — the question is whether the two codes
# compute the same function — so take a fresh module of the real size with random weights, and count the bytes of
# live tensors during each (`memory.LiveBytes`, the counter behind notebook 04's predictor):

# %%
torch.manual_seed(0)
mlp = EsmFoldResidueMLP(128, 512).eval()
for parameter in mlp.parameters():
    torch.nn.init.normal_(parameter, std=0.05)
z = torch.randn(1, 96, 96, 128)
with torch.no_grad():
    with memory.LiveBytes() as original_count:
        expected = mlp(z)
    lean_z = z.clone()
    with memory.LiveBytes() as lean_count:
        pair_mlp_in_rows(mlp, lean_z, rows=8)
print(f"largest difference {float((expected - lean_z).abs().max()):.1e}; peak live bytes "
      f"{original_count.peak / 2**20:.1f} MiB original, {lean_count.peak / 2**20:.1f} MiB in rows of 8")
assert torch.allclose(expected, lean_z, atol=1e-5)

# %% [markdown]
# **Sequence to pair.** Each block adds to z an L × L projection of the sequence state: an outer product and an outer
# difference of two halves of a projection, concatenated (L × L × 256) and projected back to 128 channels. Rows at a
# time, that 256-channel intermediate never exists whole:

# %%
def sequence_to_pair_in_rows(module, sequence_state, z, rows):
    """z += sequence_to_pair(sequence_state), `rows` rows at a time, without the L × L × 256 intermediate."""
    q, k = module.proj(module.layernorm(sequence_state)).chunk(2, dim=-1)
    for start in range(0, z.shape[1], rows):
        k_rows = k[:, start:start + rows, None, :]
        z[:, start:start + rows] += module.o_proj(torch.cat([q[:, None] * k_rows, q[:, None] - k_rows], dim=-1))


to_pair = EsmFoldSequenceToPair(1024, 64, 128).eval()
for parameter in to_pair.parameters():
    torch.nn.init.normal_(parameter, std=0.05)
sequence_state = torch.randn(1, 96, 1024)
with torch.no_grad():
    expected = z + to_pair(sequence_state)
    lean_z = z.clone()
    sequence_to_pair_in_rows(to_pair, sequence_state, lean_z, rows=8)
print(f"largest difference {float((expected - lean_z).abs().max()):.1e}")
assert torch.allclose(expected, lean_z, atol=1e-4)

# %% [markdown]
# **The triangle multiplication with one projection kept.** The "outgoing" update computes, for every channel,
# x_ij = Σ_k a_ik · b_jk, where a and b are gated projections of the layer-normed z. transformers builds a and b whole
# (two pair tensors beside z). But the rows i of the output need a only from z's rows i: keep b whole, compute a for
# one block of rows just before that block is updated, and add the result into z. Rows not yet updated are still the
# original z, so nothing is read after it changed. (The "incoming" update is the same on the transposed z.)

# %%
from types import SimpleNamespace

from transformers.models.esm.modeling_esmfold import EsmFoldTriangleMultiplicativeUpdate


def outgoing_update_in_rows(module, z, rows):
    """z += the outgoing triangle multiplication of z, with only projection b whole (z and b: 2 pair tensors)."""
    def gated(zl, gate, projection):
        return torch.sigmoid(gate(zl)) * projection(zl)

    length = z.shape[1]
    b = z.new_empty(z.shape[0], z.shape[-1], length, length)  # b[c, k, j]
    for start in range(0, length, rows):
        zl = module.layer_norm_in(z[:, start:start + rows])
        b[..., start:start + rows] = gated(zl, module.linear_b_g, module.linear_b_p).permute(0, 3, 2, 1)
    for start in range(0, length, rows):
        zl = module.layer_norm_in(z[:, start:start + rows])
        a = gated(zl, module.linear_a_g, module.linear_a_p).permute(0, 3, 1, 2)  # a[c, i, k] for these rows i only
        x = module.linear_z(module.layer_norm_out(torch.matmul(a, b).permute(0, 2, 3, 1)))
        z[:, start:start + rows] += x * torch.sigmoid(module.linear_g(zl))


tri_mul = EsmFoldTriangleMultiplicativeUpdate(SimpleNamespace(pairwise_state_dim=128), _outgoing=True).eval()
for parameter in tri_mul.parameters():
    torch.nn.init.normal_(parameter, std=0.05)
with torch.no_grad():
    with memory.LiveBytes() as original_count:
        original_count.track(z)  # count z itself in both: the peak is then what a fold would hold
        expected = z + tri_mul(z, mask=torch.ones(z.shape[:-1]))
    lean_z = z.clone()
    with memory.LiveBytes() as lean_count:
        lean_count.track(lean_z)
        outgoing_update_in_rows(tri_mul, lean_z, rows=8)
pair = z.numel() * 4
print(f"largest difference {float((expected - lean_z).abs().max()):.1e}; peak live bytes, z included: "
      f"{original_count.peak / pair:.1f} pair tensors original, {lean_count.peak / pair:.1f} in rows of 8")
assert torch.allclose(expected, lean_z, atol=1e-4)

# %% [markdown]
# `helpers/lean.py` holds these three and six more, written the same way; `lean.make_lean(model)` swaps them into a
# loaded model's forward methods (the block's, the trunk's, the structure module's, the whole model's).

# %% [markdown]
# ## 3 · Nine changes, one at a time
#
# `helpers.lean.make_lean(model)` swaps the forward methods of a loaded model — same weights, same arithmetic, fewer
# tensors alive. Each change is a switch of `lean.LeanOptions`:
#
# | change | what it does |
# |---|---|
# | `sdpa_attention` | triangle attention through `torch.nn.functional.scaled_dot_product_attention` (on a GPU, a memory-efficient kernel: no L³ logits), a block of rows at a time, added into z in place |
# | `trimul` | the triangle multiplication keeps z, a and b (3 pair tensors) and writes its output rows at a time into z |
# | `pair_mlp` | the 128 → 512 → 128 pair MLP, rows at a time, in place |
# | `seq_to_pair` | the sequence-to-pair projection and the pair-to-sequence bias, rows at a time |
# | `recycling` | one pair tensor across recycles: no all-zero initial state, no copies |
# | `structure_module` | its pair input built rows at a time; invariant point attention rows at a time |
# | `heads` | distogram, pTM and PAE rows at a time; the PAE probabilities (`softmax(ptm_logits)`) are not kept |
# | `one_projection` | the triangle multiplication keeps one projection whole and computes the other per block of rows (section 2): z and one projection, 2 pair tensors; the block also drops the sequence attention's weights (heads × L × L) before the pair updates |
# | `park_lm` | the language model runs once per fold, before the trunk; then its weights wait in CPU RAM until the next fold needs them, so the trunk has the GPU to itself (two copies over PCIe per fold; fp32's language model is too big for a free Colab runtime's RAM and stays) |
#
# “Rows at a time” means a slice of the pair tensor of about 2¹⁸ positions (131 rows at L = 2,000), so the
# temporaries stay below ≈ 0.5 GiB. Switched on cumulatively, the **predicted** peak at L = 1,000 and 2,000 (int8
# weights, default recycles; every step a fake-tensor trace of the full-size model — ≈ 20 minutes on a laptop CPU, so
# the committed table is read by default):

# %% tags=["show-output"]
RECOMPUTE = False  # True: trace every step again on this machine's CPU (minutes)
if RECOMPUTE:
    steps = fit.lean_steps("int8", (1000, 2000))
else:
    steps = pd.read_csv(data.repo_file("figures/07_lean_steps.csv"))
steps["on a T4, as nvidia-smi would show it (GiB)"] = fit.nvidia_smi_estimate(
    "int8", steps["predicted peak allocated (GiB)"],
    steps["predicted peak allocated (GiB)"] - steps["activations peak (GiB)"], context_gib=gpu.T4.context_gib).round(2)
steps.pivot(index="step", columns="length", values="on a T4, as nvidia-smi would show it (GiB)").reindex(
    list(dict.fromkeys(steps["step"])))

# %% tags=["show-output"]
from IPython.display import Image

Image(filename=str(data.repo_file("figures/07_lean_steps.png")))  # the committed figure (the published copy in Colab)

# %% [markdown]
# Read it top to bottom. SDPA removes the L³ logits but, as tracing each step shows, the peak then moves
# to the next L² tensors; only when the last of them is gone does the peak fall to about 3 pair tensors (z, and
# the triangle multiplication's a and b). Keeping one projection removes one of the three; parking the language model
# takes its weights off the card while the trunk runs. With int8 weights at L = 2,000 the fold's peak then lies in the
# language model's own run (its fp32 activations, every weight still on the GPU), no longer in the trunk. The trunk's
# peak, read from the committed grid of notebook 04's predictor (every change on):

# %% tags=["show-output"]
grid = pd.read_csv(data.repo_file("figures/04_predicted_grid.csv"))
lean_rows = grid[(grid["profile"] == "fp32") & (grid["chunk size"] == fit.LEAN) & (grid["length"] >= 2048)]
for _, row in lean_rows.iterrows():
    pair_bytes = row["length"] ** 2 * 128 * 4
    print(f"L = {row['length']:,}: the trunk's activations peak at {row['activation bytes, LM parked'] / pair_bytes:.2f} "
          f"fp32 pair tensors ({pair_bytes / 2**30:.2f} GiB each) beside the weights left on the GPU — predicted")

# %% [markdown]
# ## 4 · Equivalence first
#
# A leaner model is only useful if it computes the same thing. Fold the same sequence with the original and the lean
# model and compare (notebook 02's agreement metrics), alone and in a padded batch:

# %%
model, tokenizer = models.load_model(RECIPE, device=DEVICE, chunk_size=64)
seed = EQUIVALENCE
batch = [seed, seed[: len(seed) // 2], seed[len(seed) // 5 :]]
original_one = folding.fold(model, tokenizer, seed)
original_batch = folding.fold_many(model, tokenizer, batch)
lean.make_lean(model)
lean_one = folding.fold(model, tokenizer, seed)
lean_batch = folding.fold_many(model, tokenizer, batch)
rows = [metrics.compare_predictions(original_one, lean_one)]
rows += [metrics.compare_predictions(a, b) for a, b in zip(original_batch, lean_batch)]
agreement = pd.DataFrame(rows, index=[f"alone ({len(seed)} aa)"] + [f"batch: {len(s)} aa" for s in batch])
agreement

# %%
worst = max(abs(a.positions - b.positions).max() for a, b in zip([original_one, *original_batch], [lean_one, *lean_batch]))
print(f"largest coordinate difference: {worst:.1e} Å")
assert worst < 0.01, "the lean model must give the original's coordinates"

# %% [markdown]
# The differences are floating-point rounding (a matrix product summed in another order), orders of magnitude below
# anything structural. The tests (run on every change to the repository) check every change alone and together on the
# tiny model, alone and in padded batches
# (`tests/test_lean.py`); `python -m tools.lean_check check` runs the same comparison on the full-size architecture
# (≈ 15 GB of RAM, too much for the tests; the README reports its result).

# %% [markdown]
# ## 5 · Measured, change by change
#
# The next cell folds one `L_STEPS`-residue sequence with the original model (chunk 32) and then with each change
# switched on in turn, under the T4 cap, and puts the measured peak next to the prediction. Each fold runs **one trunk
# pass** (`num_recycles=0`): the peak is the same as with four, and eight folds of 1,000 residues with four passes
# would take most of an hour on a T4. A step that does not fit runs out of memory — caught, reported, and the next
# step runs. (Without a GPU, memory is counted on the CPU.)

# %%
sequence, origin = data.sequence_of_length(L_STEPS)
options = [None] + [lean.LeanOptions.only(*lean.CHANGES[:i + 1]) for i in range(len(lean.CHANGES))]
labels = ["original model, chunk 32"] + [f"+ {c}" for c in lean.CHANGES]
measured = []
with memory.gpu_budget(T4):
    for label, opts in zip(labels, options):
        lean.undo_lean(model)
        if opts is not None:
            lean.make_lean(model, opts)
        model.trunk.set_chunk_size(32)
        record = benchmark.measure_fold(model, tokenizer, sequence, DEVICE, label, num_recycles=ONE_PASS,
                                        may_run_out=True)
        predicted = steps[(steps["length"] == L_STEPS) & (steps["step"] == label)]["predicted peak allocated (GiB)"]
        measured.append({"step": label, "status": record["status"], "seconds, one pass": round(record["seconds"], 1),
                         "≤ s, 4 passes": round(4 * record["seconds"], 1),  # an upper bound: the LM runs once anyway
                         "measured peak (GiB)": record["peak allocated (GiB)"],
                         "predicted (GiB)": float(predicted.iloc[0]) if len(predicted) else None})
print(notebook.label(f"{RECIPE}, {origin}, one trunk pass (≤ s, 4 passes: the default recycles would take at most)"))
pd.DataFrame(measured)

# %% [markdown]
# ## 6 · 2,000 residues on a T4
#
# The final recipe: **int8 weights + the lean trunk** — the model we have, with every change on
# (`lean.make_lean(model)`; `models.load_model("int8", chunk_size="lean")` loads it in one call). Our protein is human
# β-myosin heavy chain (MYH7, UniProt P12883, 1,935 aa), fetched from UniProt at run time. First ask the predictor,
# then fold under the T4 cap — with **one trunk pass**: on a T4 a pass at this length takes minutes, and the peak is the
# same with four. `benchmark.stage_times` splits the fold, so the cell can say what the default 4 passes would take.

# %%
print(f"{LONG_ORIGIN}: {len(LONG_SEQUENCE)} residues")
print(fit.verdict(RECIPE, len(LONG_SEQUENCE), fit.LEAN, gpu.T4)[1])
measured = pd.read_csv(data.repo_file("figures/09_gpu_vs_predicted.csv"))
at_2000 = measured[(measured["lean trunk"].astype(str) == "True") & (measured["length"] == 2000)
                   & (measured["status"] == "ok")]
print(f"measured on an H100 under a T4 cap with the first seven changes (before one_projection and park_lm): "
      f"{at_2000['peak allocated (GiB)'].max():.2f} GiB allocated at 2,000 residues, int8 + lean")

# %%
lean.make_lean(model)
model.trunk.set_chunk_size(None)
with memory.gpu_budget(T4), memory.measure("the long protein, one pass", device=DEVICE, may_run_out=True) as long_fold:
    long_stages = benchmark.stage_times(model, tokenizer, LONG_SEQUENCE, num_recycles=ONE_PASS)
print(notebook.label(f"status {long_fold['status']} · {long_fold['seconds']:.0f} s for one trunk pass"))
if long_fold["status"] == "ok":
    print(f"measured peak {long_stages['fold peak (GiB)']:.2f} GiB (on a CPU: the live tensors counted) · with the "
          f"default 4 passes: ≈ {benchmark.seconds_with_passes(long_stages, 4):.0f} s")

# %% [markdown]
# A 1,935-residue structure is too big to look at usefully in a notebook viewer: fold it with default recycles (the
# time above), `folding.fold(model, tokenizer, LONG_SEQUENCE).save_pdb("MYH7.pdb")`, and open the file in PyMOL or
# ChimeraX, coloured by B-factor (pLDDT). Myosin's long coiled-coil tail should come out as one long helix; expect a low pTM for a molecule
# this elongated.

# %% [markdown]
# ## 7 · Is the lean trunk slower?
#
# Chunking trades time for memory; so could the lean trunk. At L = 800 — where the original model still fits a T4
# with chunk 32 — time both, one trunk pass each, on the same model:

# %%
sequence, origin = data.sequence_of_length(L_TIME)
timing = []
with memory.gpu_budget(T4):
    for trunk in ("chunk 32", "lean"):
        lean.undo_lean(model)
        if trunk == "lean":
            lean.make_lean(model)
        model.trunk.set_chunk_size(32 if trunk == "chunk 32" else None)
        record = benchmark.measure_fold(model, tokenizer, sequence, DEVICE, trunk, num_recycles=ONE_PASS,
                                        may_run_out=True)
        timing.append({"trunk": trunk, "length": L_TIME, "status": record["status"],
                       "seconds, one pass": record["seconds"], "≤ s, 4 passes": 4 * record["seconds"],
                       "peak allocated (GiB)": record["peak allocated (GiB)"]})
print(notebook.label(f"{RECIPE}, chunk 32 against the lean trunk"))
pd.DataFrame(timing)

# %% [markdown]
# ## 8 · The hardware table, with the lean trunk
#
# The “Which recipe fits my hardware?” table of notebooks 04 and 06, with the lean trunk added (its rows and the
# recipe ladder: each recipe tries chunk sizes first, then the lean trunk):

# %% tags=["show-output"]
table = fit.hardware_table()
table[table["variant"].str.contains("lean") | table["variant"].isin(["int8", "int4"])]

# %% tags=["show-output"]
fit.recipe_table()

# %% [markdown]
# ## 9 · Optional: 3,056 residues on a T4
#
# **This optional section on a free Colab T4:** about 25 minutes (an estimate from the run plan, as in the header).
#
# Human ATM, the kinase that signals DNA double-strand breaks (UniProt
# [Q13315](https://www.uniprot.org/uniprotkb/Q13315/entry), 3,056 residues), is one chain about as long as the lean
# trunk is predicted to fold within a T4's memory. Every pair tensor is 4.5 GiB at this length, so the fold lives on
# the last two changes: one projection kept, and the language model parked in CPU RAM while the trunk runs. One trunk
# pass, as in section 6; the cell prints the predictor's verdict first, and runs the fold only when `FOLD_LONGEST` is
# True (parameter cell).

# %% tags=["optional"]
print(f"{LONGEST_ORIGIN}: {len(LONGEST_SEQUENCE)} residues")
print(fit.verdict(RECIPE, len(LONGEST_SEQUENCE), fit.LEAN, gpu.T4)[1])
if FOLD_LONGEST:
    lean.make_lean(model)
    model.trunk.set_chunk_size(None)
    with memory.gpu_budget(T4), memory.measure("the longest protein, one pass", device=DEVICE,
                                               may_run_out=True) as longest_fold:
        longest_stages = benchmark.stage_times(model, tokenizer, LONGEST_SEQUENCE, num_recycles=ONE_PASS)
    print(notebook.label(f"status {longest_fold['status']} · {longest_fold['seconds']:.0f} s for one trunk pass"))
    if longest_fold["status"] == "ok":
        print(f"measured peak {longest_stages['fold peak (GiB)']:.2f} GiB · language model "
              f"{longest_stages['language model (s)']:.0f} s · trunk pass {longest_stages['trunk pass 1 (s)']:.0f} s · "
              f"the rest (heads, parking the language model) {longest_stages['other (s)']:.0f} s")
else:
    print("Not folded: set FOLD_LONGEST = True in the parameter cell to run it.")

# %%
del model  # the notebook's only model: free the GPU
memory.free_memory()

# %% [markdown]
# ## Recap
# - Past ≈ 500 residues a fold's memory is a handful of L × L × 128 tensors alive at once; at L = 2,000 each is
#   1.9 GiB. Smaller weights and `set_chunk_size` do not touch them.
# - Seven inference-only changes (SDPA triangle attention, in-place triangle multiplication, row-chunked pair MLP,
#   sequence-to-pair, recycling, structure module, heads) bring the peak down to ≈ 3 pair tensors plus weights;
#   keeping one of the triangle multiplication's projections brings it to about 2, and parking the language model in
#   CPU RAM once it has run leaves the trunk the whole card.
# - Prove equivalence before measuring anything: same coordinates to rounding, alone and in padded batches.
# - int8 + lean trunk: ≈ 2,000 residues fold within a free T4 with room to spare, and ≈ 3,000 are predicted to fit
#   (section 8's table).
#
# ## Exercises
# 1. Which single change saves the most at L = 2,000? Read it off the table of section 3.
# 2. `LeanOptions(rows=...)` sets the chunk of rows. Trace one lean trunk block at `L_TRACE` residues with `rows=16`
#    and with the default (`fit.block_peak`: a block on fake tensors, seconds): what does a smaller chunk buy, and what
#    does it cost?
# 3. With the lean trunk, which recipe does a 6 GB card need for 1,500 residues? (`fit.recommend`)
#
# Solutions follow (hidden in Colab and Jupyter; click to expand).

# %% cellView="form" jupyter={"source_hidden": true} tags=["solution"]
# @title Solution 1 — the biggest single saving
at_2000 = steps[steps["length"] == 2000].reset_index(drop=True)
saving = -at_2000["predicted peak allocated (GiB)"].diff()
best = saving.idxmax()
print(f"{at_2000.loc[best, 'step']} saves {saving[best]:.1f} GiB at L = 2,000 (cumulative order as in the table)")

# %% cellView="form" jupyter={"source_hidden": true} tags=["solution"]
# @title Solution 2 — the row chunk
for rows in (16, None):  # one full-size block on fake tensors: seconds
    r = fit.block_peak(L_TRACE, lean=lean.LeanOptions(rows=rows))
    print(f"rows={rows or lean.LeanOptions().chunk_rows(L_TRACE)}: one block's activations peak at "
          f"{r['activations peak (GiB)']:.2f} GiB")
print("A smaller chunk trims the temporaries; many more, smaller kernels cost time on a GPU.")

# %% cellView="form" jupyter={"source_hidden": true} tags=["solution"]
# @title Solution 3 — a 6 GB card, 1,500 residues
pick = fit.recommend(6.0, 1500)
print(pick or "no recipe: even fp16-offload + the lean trunk needs more than a 6 GB card leaves PyTorch at 1,500 "
      f"residues; at 1,024: {fit.recommend(6.0, 1024)}")

# %% [markdown]
# ## Next
# [08 · No GPU at all — ESMFold on a CPU within 12.7 GB of RAM](08_cpu_only.ipynb) ([Colab](https://colab.research.google.com/github/OWNER/gpu-poor-esmfold/blob/v0.1.0/notebooks/08_cpu_only.ipynb))
#
# ← Previous: [06 · GPU-poor recipes: long proteins on a T4, CPU offload, batch folding, complexes](06_recipes.ipynb) ([Colab](https://colab.research.google.com/github/OWNER/gpu-poor-esmfold/blob/v0.1.0/notebooks/06_recipes.ipynb))
