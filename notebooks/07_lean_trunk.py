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
# # 07 · A leaner folding trunk — a predicted 3,000 residues on a free T4 (advanced)
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/OWNER/gpu-poor-esmfold/blob/v0.1.0/notebooks/07_lean_trunk.ipynb)
#
# **What you will learn**
# - where a long fold's memory really goes: not the weights, but many L × L tensors alive at once;
# - why neither quantization nor `set_chunk_size` can fix that, and nine changes to the model code that do — the main
#   ones written out here, all nine in `helpers/lean.py`, each switchable and measured (predicted on a CPU, measured
#   on a GPU);
# - how to prove a faster or leaner model still gives the same numbers (equivalence first);
# - how to fold a ~2,000-residue protein within a free T4's memory — about twice the longest protein the original
#   model folds there with trunk chunking (≈ 1,024 aa, section 1 and notebook 06) — and, in an optional last section,
#   one of 3,056 residues, predicted to fit (no GPU has measured it yet).
#
#
# **Estimated run time on a free Colab T4:** about 30 minutes, download included; the optional last section adds about
# 25 ([how it is estimated](../docs/results.md#how-the-t4-run-times-are-estimated)).

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
NEEDS = ["optimum-quanto", "biotite", "torchao"]  # what this notebook uses that Colab lacks (pinned in helpers/colab.py)
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

import pandas as pd
import torch

from helpers import benchmark, data, fit, folding, gpu, lean, memory, metrics, models, notebook

# %% [markdown]
# ## Parameters
# The recipe, the lengths, the T4 cap, how many trunk passes the long demonstrations run, and the long proteins of
# sections 6 and 9 (the real MYH7 and ATM with real weights, fetched from UniProt; a stand-in folds the SARS-CoV-2
# spike's sequence repeated to the same lengths instead, with nothing to download). Section 9 is optional: its one
# fold takes about as long as the rest of the notebook (the header gives both estimates), so it runs only when
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
# After the ESM-2 language model has read the sequence, ESMFold's folding *trunk* (a stack of identical blocks)
# refines two representations: one vector per residue, and the *pair representation*, 128 numbers for every pair of
# residues (i, j) — an L × L × 128 tensor, a *pair tensor* for short, in fp32. Its size grows with L²:

# %% tags=["show-output"]
pair = pd.DataFrame({"L": [512, 1000, 1500, 2000]})
pair["one pair tensor, fp32 (GiB)"] = (pair["L"] ** 2 * 128 * 4 / 2**30).round(2)
pair[f"{RECIPE} weights (GiB)"] = round(models.expected_weights_bytes(RECIPE)["total"] / 2**30, 2)
pair["a T4's room after the CUDA context and weights, in pair tensors"] = (
    (gpu.T4.usable_gib - pair[f"{RECIPE} weights (GiB)"]) / pair["one pair tensor, fp32 (GiB)"]).round(1)
pair

# %% [markdown]
# With int8 weights a T4 has room for fewer than 6 pair tensors at L = 2,000 (last column) — and PyTorch's allocator
# keeps some cache beyond the live tensors. The original model keeps many of them alive at once.
#
# Two of the trunk's updates come from AlphaFold 2 ([Jumper et al. 2021](https://www.nature.com/articles/s41586-021-03819-2)):
# *triangle multiplication* and *triangle attention* update pair (i, j) from the pairs (i, k) and (j, k) — the other
# two sides of the triangle i, j, k — for every k. Section 2 writes both out. Reading transformers'
# `modeling_esmfold.py` line by line, these are the L × L consumers of one fold:
#
# | where | what is alive | `set_chunk_size` helps? |
# |---|---|---|
# | triangle attention (×2 per block) | a layer-normed copy of z, q/k/v/gate projections (4 pair tensors), and the logits: heads × L × L × L | only the logits |
# | triangle multiplication (×2 per block) | layer-normed z, projections a and b with their gates, the product, its norm (5–6 pair tensors) | no — its in-place version exists in the code but is never called |
# | pair transition MLP | 128 → 512 channels: 4 pair tensors wide | no |
# | sequence-to-pair | an L × L × 256 intermediate + output | no |
# | recycling loop | the all-zero initial pair state (allocated anyway), the recycled pair, their sum, the current pair | no |
# | structure module | its projected pair input, a layer-normed copy, and the L × L × heads × points × 3 tensors of invariant point attention (the structure module's attention, which works in 3-D frames; sized in section 2) | no |
# | output heads (distogram: distance bins; pTM, PAE: predicted TM-score and aligned error) | their logits and probabilities: L × L × 64 each | no |
#
# The predictor of notebook 04 confirms it: the original model with trunk chunk 32 — the leanest setting it has —
# and int8 weights needs, at L = 1,024 and L = 1,536 (points of the committed grid: read, not traced):

# %% tags=["show-output"]
for length in (1024, 1536):
    print(fit.verdict("int8", length, 32, gpu.T4)[1])

# %% [markdown]
# ## 2 · The changes, in code
#
# Each change below is a plain function next to the transformers module it replaces. Before using one, check it
# against the original forward. Any weights will do — the question is whether the two codes compute the same function
# — so take a fresh module of the real size with random weights, and count the bytes of live tensors during each
# (`memory.LiveBytes`, the counter behind notebook 04's predictor: it adds up the tensors alive at each moment).
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


# %% tags=["show-output"]
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

# %% tags=["show-output"]
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
    with memory.LiveBytes() as original_count:
        original_count.track(z)  # count z itself in both: the peak is then what a fold would hold
        expected = z + to_pair(sequence_state)
    lean_z = z.clone()
    with memory.LiveBytes() as lean_count:
        lean_count.track(lean_z)
        sequence_to_pair_in_rows(to_pair, sequence_state, lean_z, rows=8)
pair_bytes = z.numel() * 4  # one pair tensor of this size
print(f"largest difference {float((expected - lean_z).abs().max()):.1e}; peak live bytes, z included: "
      f"{original_count.peak / pair_bytes:.1f} pair tensors original, {lean_count.peak / pair_bytes:.1f} in rows of 8")
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


# %% tags=["show-output"]
tri_mul = EsmFoldTriangleMultiplicativeUpdate(SimpleNamespace(pairwise_state_dim=128), _outgoing=True).eval()
for parameter in tri_mul.parameters():
    torch.nn.init.normal_(parameter, std=0.05)
with torch.no_grad():
    with memory.LiveBytes() as original_count:
        original_count.track(z)
        expected = z + tri_mul(z, mask=torch.ones(z.shape[:-1]))
    lean_z = z.clone()
    with memory.LiveBytes() as lean_count:
        lean_count.track(lean_z)
        outgoing_update_in_rows(tri_mul, lean_z, rows=8)
print(f"largest difference {float((expected - lean_z).abs().max()):.1e}; peak live bytes, z included: "
      f"{original_count.peak / pair_bytes:.1f} pair tensors original, {lean_count.peak / pair_bytes:.1f} in rows of 8")
assert torch.allclose(expected, lean_z, atol=1e-4)

# %% [markdown]
# **Triangle attention with SDPA.** The "starting node" triangle attention runs attention along each row i of the pair
# tensor: pair (i, j) attends to the pairs (i, k) of its row, with a bias from pair (j, k), the triangle's third side
# (the "ending node" does the same along columns). transformers computes the attention logits of all rows at once:
# heads × L × L × L numbers, an L³ tensor; `set_chunk_size` splits it into blocks of rows.
#
# PyTorch's `torch.nn.functional.scaled_dot_product_attention` (SDPA,
# [docs](https://pytorch.org/docs/stable/generated/torch.nn.functional.scaled_dot_product_attention.html)) computes
# softmax(q kᵀ · scale + attn_mask) v in one call; on a GPU it can pick a fused kernel that never stores the logits.
# The triangle bias is exactly such an additive `attn_mask`: one L × L map per head, the same for every row. With it,
# rows at a time, added into z:

# %%
import math


def triangle_attention_sdpa(module, z, mask, rows):
    """z += EsmFoldTriangleAttention(z), in place, `rows` rows at a time, the triangle bias as SDPA's attn_mask."""
    x = z if module.starting else z.transpose(1, 2)  # the ending node: the same on the transposed z (a view)
    batch, length = x.shape[:2]
    mha = module.mha
    heads, width = mha.no_heads, mha.c_hidden
    bias = x.new_empty(batch, heads, length, length)  # bias[h, j, k]: heads × L × L, shared by every row i
    for start in range(0, length, rows):
        bias[:, :, start:start + rows] = module.linear(module.layer_norm(x[:, start:start + rows])).permute(0, 3, 1, 2)
    if mask is not None:  # padded keys get −inf (in practice −1e9), as in the original's mask bias
        bias += (module.inf * (mask.to(bias.dtype) - 1))[:, None, None, :]

    def heads_first(t):  # (B, rows, L, heads · width) → (B, rows, heads, L, width)
        return t.view(t.shape[:-1] + (heads, width)).transpose(-2, -3)

    for start in range(0, length, rows):
        xr = module.layer_norm(x[:, start:start + rows])  # (B, rows, L, C)
        q = heads_first(mha.linear_q(xr)) / math.sqrt(width)
        k, v = heads_first(mha.linear_k(xr)), heads_first(mha.linear_v(xr))
        out = torch.stack([  # one protein of the batch at a time: its rows are SDPA's batch, its bias the attn_mask
            torch.nn.functional.scaled_dot_product_attention(q[b], k[b], v[b], attn_mask=bias[b:b + 1], scale=1.0)
            for b in range(batch)
        ]).transpose(-2, -3)  # (B, rows, L, heads, width)
        gate = torch.sigmoid(mha.linear_g(xr)).view(out.shape)
        x[:, start:start + rows] += mha.linear_o((out * gate).flatten(-2))


# %% [markdown]
# The check, on transformers' own `EsmFoldTriangleAttention` with the real model's sizes (read from its
# `config.json`), both orientations:

# %% tags=["show-output"]
import json

from transformers.models.esm.modeling_esmfold import EsmFoldTriangleAttention

trunk_config = json.loads(data.fetch("esmfold_v1/config.json").read_text())["esmfold_config"]["trunk"]
channels, width = trunk_config["pairwise_state_dim"], trunk_config["pairwise_head_width"]
heads = channels // width
print(f"triangle attention in esmfold_v1: {channels} channels, {heads} heads of {width}")
z = torch.randn(1, 64, 64, channels)
pair_bytes = z.numel() * 4
for starting in (True, False):
    tri_att = EsmFoldTriangleAttention(channels, width, heads, starting=starting).eval()
    for parameter in tri_att.parameters():
        torch.nn.init.normal_(parameter, std=0.05)
    with torch.no_grad():
        with memory.LiveBytes() as original_count:
            original_count.track(z)
            expected = z + tri_att(z)  # chunk_size=None: the logits of all rows at once
        lean_z = z.clone()
        with memory.LiveBytes() as lean_count:
            lean_count.track(lean_z)
            triangle_attention_sdpa(tri_att, lean_z, None, rows=8)
    print(f"{'starting' if starting else 'ending'} node: largest difference "
          f"{float((expected - lean_z).abs().max()):.1e}; peak live bytes, z included: "
          f"{original_count.peak / pair_bytes:.1f} pair tensors original, {lean_count.peak / pair_bytes:.1f} with SDPA "
          f"in rows of 8")
    assert torch.allclose(expected, lean_z, atol=1e-4)
print(f"the logits here: {heads * 64**3 * 4 / pair_bytes:.1f} pair tensors (heads × L / {channels} of them). "
      f"At L = 2,000: {heads * 2000**3 * 4 / 2**30:.0f} GiB whole, "
      f"{32 * heads * 2000**2 * 4 / 2**30:.2f} GiB per block of 32 rows (set_chunk_size(32))")

# %% [markdown]
# **Recycling.** ESMFold runs its trunk several times — 4 passes by default (`num_recycles=None`; `num_recycles=n`
# runs n + 1) — and feeds each pass's output into the next: the pair tensor, layer-normed, plus an embedding of the
# distances in the structure just predicted. This *recycling* also comes from AlphaFold 2.
#
# Beside the pair tensor the blocks work on, `EsmFoldingTrunk.forward` keeps the all-zero pair input that
# `EsmForProteinFolding.forward` allocates (`s_z_0`), the recycled pair (`recycle_z`) and, from the second pass on,
# the previous pass's output (`s_z`), referenced until the new pass ends. The lean loop keeps one pair tensor z and
# updates it in place, rows at a time; the blocks and the structure module are called as before:

# %%
from transformers.models.esm.modeling_esmfold import EsmFoldingTrunk


def trunk_one_pair_tensor(trunk, seq_feats, true_aa, residx, mask, no_recycles, rows):
    """EsmFoldingTrunk.forward (no_recycles + 1 passes) with one pair tensor z across the passes, updated in place."""
    batch, length = seq_feats.shape[:2]
    z = seq_feats.new_zeros(batch, length, length, trunk.config.pairwise_state_dim)  # the first pass starts from zeros
    recycle_s = torch.zeros_like(seq_feats)
    bins = torch.zeros(batch, length, length, dtype=torch.int64)  # no structure yet: distance bin 0 everywhere
    position = trunk.pairwise_positional_embedding
    for _ in range(no_recycles + 1):
        recycle_s = trunk.recycle_s_norm(recycle_s)
        for start in range(0, length, rows):  # z = norm(z) + embed(distance bins) + embed(relative position)
            r = slice(start, start + rows)
            z[:, r] = trunk.recycle_z_norm(z[:, r])
            z[:, r] += trunk.recycle_disto(bins[:, r])
            offset = (residx[:, None, :] - residx[:, r, None]).clamp(-position.bins, position.bins) + position.bins + 1
            z[:, r] += position.embedding(offset.masked_fill((mask[:, None, :] * mask[:, r, None]) == 0, 0))
        s = seq_feats + recycle_s
        for block in trunk.blocks:
            s, z = block(s, z, mask=mask, residue_index=residx, chunk_size=trunk.chunk_size)
        structure = trunk.structure_module({"single": trunk.trunk2sm_s(s), "pair": trunk.trunk2sm_z(z)}, true_aa,
                                           mask.float())
        recycle_s = s
        bins = EsmFoldingTrunk.distogram(structure["positions"][-1][:, :, :3], 3.375, 21.375, trunk.recycle_bins)
    structure["s_s"], structure["s_z"] = s, z
    return structure


# %% [markdown]
# The check runs a real `EsmFoldingTrunk`, built small (one block, a narrow sequence state) but with the real pair
# width, for 4 passes either way. A hook on the first block records the pair tensors alive as each pass starts
# (weights not counted):

# %% tags=["show-output"]
from transformers.models.esm.configuration_esm import TrunkConfig

small = TrunkConfig(num_blocks=1, sequence_state_dim=64, sequence_head_width=16, pairwise_state_dim=channels,
                    pairwise_head_width=width, chunk_size=None,
                    structure_module=dict(sequence_dim=64, pairwise_dim=32, ipa_dim=8, resnet_dim=32, num_heads_ipa=4,
                                          num_qk_points=4, num_v_points=4, num_blocks=2))
torch.manual_seed(0)
trunk = EsmFoldingTrunk(small).eval()
for parameter in trunk.parameters():
    torch.nn.init.normal_(parameter, std=0.05)
length = 48
seq_feats, aa = torch.randn(1, length, 64), torch.randint(0, 20, (1, length))
residx, mask = torch.arange(length)[None], torch.ones(1, length)
pair_bytes = length**2 * channels * 4
alive = []
hook = trunk.blocks[0].register_forward_pre_hook(lambda block, args: alive.append((count.live - weights) / pair_bytes))
recycling, outputs = {}, {}
with torch.no_grad():
    for name in ("original", "one pair tensor"):
        peaks = {}
        for passes in (1, 4):
            alive.clear()
            with memory.LiveBytes() as count:
                weights = count.track_module(trunk)
                if name == "original":  # EsmForProteinFolding.forward hands the trunk an all-zero pair input
                    out = trunk(seq_feats, seq_feats.new_zeros(1, length, length, channels), aa, residx, mask,
                                no_recycles=passes - 1)
                else:
                    out = trunk_one_pair_tensor(trunk, seq_feats, aa, residx, mask, no_recycles=passes - 1, rows=8)
            peaks[f"peak, {passes} pass{'es' if passes > 1 else ''}"] = round((count.peak - weights) / pair_bytes, 2)
        recycling[name] = {f"alive as pass {i + 1} starts": round(a, 2) for i, a in enumerate(alive)} | peaks
        outputs[name] = out  # the output of the 4-pass run
hook.remove()
a, b = outputs["original"], outputs["one pair tensor"]
print(f"largest difference: positions {float((a['positions'] - b['positions']).abs().max()):.1e} Å, "
      f"pair tensor {float((a['s_z'] - b['s_z']).abs().max()):.1e}; in pair tensors, weights not counted:")
assert torch.allclose(a["positions"], b["positions"], atol=1e-4) and torch.allclose(a["s_z"], b["s_z"], atol=1e-4)
pd.DataFrame(recycling).T

# %% [markdown]
# In the table above, the original loop holds three pair tensors as its first pass starts and four from the second
# on; the lean loop holds one in every pass. The peaks (inside the blocks, where at this small L the triangle
# attention's logits dominate) differ by as much.
#
# **The structure module.** After each trunk pass the structure module turns the two representations into
# coordinates: its blocks move a frame (a position and an orientation) per residue, each with *invariant point
# attention* (IPA: attention whose logits also compare 3-D points that each residue places in its own frame, so
# rotating the whole protein does not change it; AlphaFold 2's algorithm 22). It receives the pair tensor projected
# (`trunk2sm_z`), keeps a layer-normed copy through all its blocks, and each IPA call builds tensors of
# L × L × heads × points × 3. Their sizes in esmfold_v1:

# %% tags=["show-output"]
sm = trunk_config["structure_module"]
print(f"structure module: {sm['num_blocks']} blocks; IPA with {sm['num_heads_ipa']} heads, "
      f"{sm['num_qk_points']} query/key points and {sm['num_v_points']} value points per head")
per_pair = {  # numbers per residue pair, fp32
    "projected pair input (trunk2sm_z)": sm["pairwise_dim"],
    "its layer-normed copy (layer_norm_z)": sm["pairwise_dim"],
    "IPA's point distances: heads × query points × 3": sm["num_heads_ipa"] * sm["num_qk_points"] * 3,
    "IPA's weighted value points: heads × 3 × value points": sm["num_heads_ipa"] * 3 * sm["num_v_points"],
}
pd.DataFrame({f"GiB at L = {n:,}": {k: round(n**2 * c * 4 / 2**30, 2) for k, c in per_pair.items()}
              for n in (1024, 2000)})

# %% [markdown]
# The lean version builds the projected, normed pair input rows at a time into one tensor (one pair tensor instead
# of two), and runs IPA for a block of query rows at a time. Its largest tensor, the value points weighted by the
# attention and summed over keys, is a matrix product in disguise — transformers multiplies first and sums after:

# %% tags=["show-output"]
ipa_heads, points, length = sm["num_heads_ipa"], sm["num_v_points"], 64
attention = torch.softmax(torch.randn(1, ipa_heads, length, length), dim=-1)  # IPA's weights [B, H, query, key]
v_pts = torch.randn(1, ipa_heads, 3, length, points)  # value points in global coordinates [B, H, xyz, key, point]
with memory.LiveBytes() as original_count:
    original_count.track(attention)
    original_count.track(v_pts)
    expected = torch.sum(attention[..., None, :, :, None] * v_pts[..., None, :, :], dim=-2)  # as transformers
with memory.LiveBytes() as lean_count:
    lean_count.track(attention)
    lean_count.track(v_pts)
    o_pt = torch.matmul(attention.unsqueeze(-3), v_pts)  # the same sum over keys, as a matrix product
print(f"largest difference {float((expected - o_pt).abs().max()):.1e}; peak live bytes "
      f"{original_count.peak / 2**20:.2f} MiB multiply-then-sum, {lean_count.peak / 2**20:.2f} MiB as a matmul "
      f"(L = {length})")
assert torch.allclose(expected, o_pt, atol=1e-5)

# %% [markdown]
# **`make_lean`: these changes applied to every block.** The other three changes are written the same way: `trimul` is
# the triangle multiplication with both projections kept whole (z, a and b: 3 pair tensors); `heads` computes the
# distogram, pTM and PAE heads rows at a time, like the pair MLP; `park_lm` moves the language model's weights to CPU
# RAM once it has run (`model.esm.to("cpu")`) and back at the next fold.
#
# `helpers/lean.py` holds all nine. `lean.make_lean(model)` binds them to a loaded model: the block's forward in every
# block of the trunk, the trunk's recycling loop, IPA's forward and the whole model's forward. The weights are the
# same; `lean.undo_lean(model)` restores the original methods.

# %% [markdown]
# ## 3 · Nine changes, one at a time
#
# Each change is a switch of `lean.LeanOptions`: `lean.make_lean(model, lean.LeanOptions.only("pair_mlp"))` turns on
# one, `lean.make_lean(model)` all nine:
#
# | change | what it does |
# |---|---|
# | `sdpa_attention` | triangle attention through SDPA (on a GPU, a memory-efficient kernel: no L³ logits), a block of rows at a time, added into z in place |
# | `trimul` | the triangle multiplication keeps z, a and b (3 pair tensors) and writes its output rows at a time into z |
# | `pair_mlp` | the 128 → 512 → 128 pair MLP, rows at a time, in place |
# | `seq_to_pair` | the sequence-to-pair projection and the pair-to-sequence bias, rows at a time |
# | `recycling` | one pair tensor across recycles: no all-zero initial state, no copies |
# | `structure_module` | its pair input built rows at a time; invariant point attention rows at a time |
# | `heads` | distogram, pTM and PAE rows at a time; the PAE probabilities (`softmax(ptm_logits)`) are not kept |
# | `one_projection` | the triangle multiplication keeps one projection whole and computes the other per block of rows (section 2): z and one projection, 2 pair tensors; the block also drops the sequence attention's weights (heads × L × L) before the pair updates |
# | `park_lm` | the language model runs once per fold, before the trunk; then its weights wait in CPU RAM until the next fold needs them, so the trunk has the GPU to itself (two copies per fold over PCIe, the bus between CPU and GPU; fp32's language model is too big for a free Colab runtime's RAM and stays) |
#
# "Rows at a time" means a slice of the pair tensor of about 2¹⁸ positions, so the temporaries stay small (the next
# cell prints the chunk at L = 2,000). The table gives the **predicted** peak at L = 1,000 and 2,000 as the changes are
# switched on one after another (int8 weights, default recycles). Each step is a fake-tensor trace of the full-size model (tensors with shapes but no
# data, notebook 04), which takes minutes on a CPU (column `seconds to predict`), so the committed table is read by
# default. Values as `nvidia-smi` (the GPU's own memory report) would show them on a T4:

# %% tags=["show-output"]
RECOMPUTE = False  # True: trace every step again on this machine's CPU (minutes)
if RECOMPUTE:
    steps = fit.lean_steps("int8", (1000, 2000))
else:
    steps = pd.read_csv(data.repo_file("figures/07_lean_steps.csv"))
rows_2000 = lean.LeanOptions().chunk_rows(2000)
print(f"a chunk at L = 2,000: {rows_2000} rows; the pair MLP's 512-channel temporary then holds "
      f"{rows_2000 * 2000 * 512 * 4 / 2**30:.2f} GiB")
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
# to the next L² tensors; only when the last of them is gone does the peak fall to what the triangle multiplication
# needs (z, a and b).
#
# Keeping one projection removes one of the three; parking the language model
# takes its weights off the card while the trunk runs. With int8 weights at L = 2,000 the fold's peak then lies in the
# language model's own run (its fp32 activations, every weight still on the GPU), no longer in the trunk. The trunk's
# peak, read from the committed grid of notebook 04's predictor (every change on):

# %% tags=["show-output"]
grid = pd.read_csv(data.repo_file("figures/04_predicted_grid.csv"))
lean_rows = grid[(grid["profile"] == fit.activation_profile(RECIPE)) & (grid["chunk size"] == fit.LEAN)
                 & (grid["length"] >= 2048)]
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
# anything structural. The repository's tests check every change alone and together on the tiny model, alone and in
# padded batches (`tests/test_lean.py`); `python -m tools.lean_check check` runs the same comparison on the full-size
# architecture, and its result is on the [results page](../docs/results.md).

# %% [markdown]
# ## 5 · Measured, change by change
#
# The next cell folds one `L_STEPS`-residue sequence with the original model (chunk 32) and then with each change
# switched on in turn, under the T4 cap, and puts the measured peak next to the prediction. A step that does not fit
# runs out of memory — caught, reported, and the next step runs. (Without a GPU, memory is counted on the CPU.)
#
# Each fold runs **one trunk pass** (`num_recycles=0`): four passes each would take up to four times as long (column
# `≤ s, 4 passes`). From `+ recycling` on, every pass holds the same tensors, so one pass peaks as four do or slightly
# lower (the H100's measurements: notebook 04, section 3). Before it, the original loop's later passes hold one pair
# tensor more than its first (section 2's recycling check): those rows may measure up to one pair tensor (section 1's
# table) below the prediction, which is for default recycles.

# %%
sequence, origin = data.sequence_of_length(L_STEPS)
measured = []
with memory.gpu_budget(T4):
    for label, opts in lean.cumulative_steps(32):  # the labels of the predicted table above
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
# β-myosin heavy chain (MYH7, UniProt [P12883](https://www.uniprot.org/uniprotkb/P12883/entry)), fetched from UniProt
# at run time. First ask the predictor, then fold under the T4 cap — with **one trunk pass**: on a T4 a pass at this
# length takes minutes, and with the lean recycling loop the peak is the same with four (section 2).
# `benchmark.stage_times` splits the fold, so the cell can say what the default 4 passes would take.

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
# A structure this long is too big to look at usefully in a notebook viewer: fold it with default recycles (the
# time above), `folding.fold(model, tokenizer, LONG_SEQUENCE).save_pdb("MYH7.pdb")`, and open the file in PyMOL or
# ChimeraX, coloured by B-factor (pLDDT, the per-residue confidence). Myosin's tail is a long coiled coil (UniProt's
# entry above); look for it as one long helix.

# %% [markdown]
# ## 7 · Is the lean trunk slower?
#
# Chunking trades time for memory; so could the lean trunk. At `L_TIME` residues, where the predictor says the
# original model still fits a T4 with chunk 32 (the cell prints it), time both, one trunk pass each, on the same model:

# %%
print(fit.verdict(RECIPE, L_TIME, 32, gpu.T4)[1])
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
table[table["recipe"].str.contains("lean") | table["recipe"].isin(["int8", "int4"])]

# %% tags=["show-output"]
fit.recipe_table()

# %% [markdown]
# ## 9 · Optional: 3,056 residues on a T4, predicted to fit
#
# **This optional section on a free Colab T4:** about 25 minutes (an estimate from the run plan, as in the header).
#
# Human ATM, the kinase that signals DNA double-strand breaks (UniProt
# [Q13315](https://www.uniprot.org/uniprotkb/Q13315/entry)), is one chain about as long as the lean trunk is
# predicted (not yet measured) to fold within a T4's memory. A pair tensor is several GiB at this length (the cell prints it), so the fold
# lives on the last two changes: one projection kept, and the language model parked in CPU RAM while the trunk runs.
# One trunk pass, as in section 6; the cell prints the predictor's verdict first, and runs the fold only when
# `FOLD_LONGEST` is True (parameter cell).

# %% tags=["optional"]
print(f"{LONGEST_ORIGIN}: {len(LONGEST_SEQUENCE)} residues; "
      f"one pair tensor {len(LONGEST_SEQUENCE) ** 2 * 128 * 4 / 2**30:.1f} GiB")
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
# - A long fold's memory is a handful of L × L × 128 pair tensors alive at once; at L = 2,000 each is 1.9 GiB.
#   Smaller weights and `set_chunk_size` do not touch them.
# - Seven inference-only changes (SDPA triangle attention, in-place triangle multiplication, row-chunked pair MLP,
#   sequence-to-pair, recycling, structure module, heads) bring the trunk's peak down to z and the triangle
#   multiplication's two projections; keeping one projection leaves z and one (about 2.2 pair tensors at 2,048 and
#   more residues, section 3), and parking the language model in CPU RAM once it has run leaves the trunk the whole
#   card.
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
print(pick or "no recipe of the ladder, lean trunk included, fits what a 6 GB card leaves PyTorch at 1,500 "
      f"residues; at 1,024: {fit.recommend(6.0, 1024)}")

# %% [markdown]
# ## Next
# [08 · No GPU at all — ESMFold on a CPU within 12.7 GB of RAM](08_cpu_only.ipynb) ([Colab](https://colab.research.google.com/github/OWNER/gpu-poor-esmfold/blob/v0.1.0/notebooks/08_cpu_only.ipynb))
#
# ← Previous: [06 · GPU-poor recipes: long proteins on a T4, CPU offload, batch folding, complexes](06_recipes.ipynb) ([Colab](https://colab.research.google.com/github/OWNER/gpu-poor-esmfold/blob/v0.1.0/notebooks/06_recipes.ipynb))
