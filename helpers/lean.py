"""A memory-lean ESMFold for inference: the same weights and numbers, far fewer L × L tensors alive at once.

`make_lean(model)` swaps the forward methods of a loaded `EsmForProteinFolding` (nothing else changes; `undo_lean`
restores them). Each change can be switched on alone (`LeanOptions`), so its effect can be measured:

- `sdpa_attention`: triangle attention through `scaled_dot_product_attention` (no heads × L³ logits), rows at a time,
  added into the pair tensor in place;
- `trimul`: the triangle multiplicative update from two projections (a, b) with its output computed rows at a time and
  added in place (z, a and b alive: 3 pair tensors, not 5–6);
- `one_projection`: the triangle multiplicative update keeps only one of its two projections whole and computes the
  other for each chunk of rows, just before that chunk's output (z and one projection alive: 2 pair tensors); the
  block also drops the sequence attention's weights (heads × L × L) before the pair updates;
- `pair_mlp`: the pair transition MLP (128 → 512 → 128) rows at a time, in place;
- `seq_to_pair`: the sequence-to-pair projection (an L × L × 256 intermediate) and the pair-to-sequence bias rows at a
  time;
- `recycling`: the recycling loop keeps one pair tensor (no all-zero initial pair state, no extra copies);
- `structure_module`: its pair input projected and normalised rows at a time, and invariant point attention computed
  rows at a time (the original builds L × L × heads × points × 3 tensors: 1.1 GiB at L = 1,024);
- `heads`: distogram, pTM and PAE heads rows at a time (the softmaxed PAE probabilities are not kept: they are
  `softmax(ptm_logits)`);
- `park_lm`: once the language model has run (it runs once per fold, before the trunk), its weights wait in CPU RAM
  until the next fold needs them, so the trunk has the GPU to itself (folds of at least `park_from` residues; a fold on
  the CPU, a language model that accelerate already offloads, or one too big for CPU RAM (`parkable`; said once, as a
  warning) is left as it is).

Inference only (in-place updates; no autograd). Padding rows of a padded batch may differ from the original model's —
they never reach a real residue's output (every use of a padded position is masked).
"""

from __future__ import annotations

import math
import types
import warnings
from dataclasses import dataclass

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from transformers.models.esm.modeling_esmfold import (EsmFoldingTrunk, EsmFoldTriangularSelfAttentionBlock,
                                                      EsmForProteinFoldingOutput, categorical_lddt, flatten_final_dims,
                                                      permute_final_dims)
from transformers.models.esm.openfold_utils import make_atom14_masks
from transformers.models.esm.openfold_utils.loss import _calculate_bin_centers

from helpers import memory

#: Pair positions (rows × L) processed per chunk when `rows` is None: ≈ 0.5 GiB of fp32 temporaries in the pair MLP.
AUTO_POSITIONS = 2**18
#: Pair positions per chunk that ran fastest on a CPU (measured in notebook 08: chunks that stay in the caches).
CPU_POSITIONS = 2**13
#: The shortest fold whose language model is parked (0: every fold on a GPU). Parking costs two copies of the LM's
#: weights over PCIe per fold (out once it has run, back at the next fold: on a T4 ≈ 2 s for int8 weights, ≈ 4 s for
#: fp16 — an estimate at 3 GB/s, `tools/plan.py`); it pays wherever the trunk would not fit beside the LM, which on a
#: small card happens at any length. A fold that fits anyway can skip it: `LeanOptions(park_from=…)`.
PARK_FROM = 0
#: The most bytes of LM weights parking puts in CPU RAM: a free Colab runtime's 12.7 GB less ≈ 3 GB for Python, the
#: libraries and the runtime itself (assumed). fp16 LM weights (5.7 GB) and int8 ones (2.8 GB) park; fp32's (11.3 GB)
#: stay on the GPU.
PARK_RAM_BYTES = 9.7e9


def park_refusal(lm_bytes: float, available_bytes: float | None = None) -> str | None:
    """Why `lm_bytes` of LM weights (as stored: `memory.stored_bytes`) may not wait in CPU RAM — more than
    PARK_RAM_BYTES, or (if `available_bytes` is given) more than what the machine has available now less 1 GB — in one
    sentence; None if they may. The rule of both the runtime (`CPUParking`) and the predictor (`helpers.fit`)."""
    if lm_bytes > PARK_RAM_BYTES:
        return (f"The language model stays on the GPU: its {lm_bytes / 1e9:.1f} GB of weights are more than the "
                f"{PARK_RAM_BYTES / 1e9:.1f} GB that parking may put in a free Colab runtime's CPU RAM.")
    if available_bytes is not None and lm_bytes > available_bytes - 1e9:
        return (f"The language model stays on the GPU: its {lm_bytes / 1e9:.1f} GB of weights would leave less than "
                f"1 GB of the {available_bytes / 1e9:.1f} GB of CPU RAM available now.")
    return None


def parkable(lm_bytes: float, available_bytes: float | None = None) -> bool:
    """Whether `lm_bytes` of LM weights may wait in CPU RAM (`park_refusal` gives no reason against it)."""
    return park_refusal(lm_bytes, available_bytes) is None


@dataclass(frozen=True)
class LeanOptions:
    """Which memory-saving changes are on (all by default) and how many pair rows each chunk holds (None = auto)."""

    sdpa_attention: bool = True
    trimul: bool = True
    pair_mlp: bool = True
    seq_to_pair: bool = True
    recycling: bool = True
    structure_module: bool = True
    heads: bool = True
    one_projection: bool = True
    park_lm: bool = True
    rows: int | None = None
    positions: int = AUTO_POSITIONS  # pair positions (rows × L) per chunk when rows is None
    park_from: int = PARK_FROM  # the shortest fold whose language model is parked in CPU RAM once it has run

    def parks(self, length: int) -> bool:
        """Whether a fold of `length` residues parks its language model once it has run (`park_lm`, `park_from`)."""
        return self.park_lm and length >= self.park_from

    def chunk_rows(self, length: int) -> int:
        """Pair rows per chunk for a protein of `length` residues."""
        return self.rows or max(1, self.positions // max(length, 1))

    @classmethod
    def only(cls, *names: str, rows: int | None = None, positions: int = AUTO_POSITIONS,
             park_from: int = PARK_FROM) -> "LeanOptions":
        """Options with only the named changes on."""
        unknown = set(names) - set(CHANGES)
        if unknown:
            raise ValueError(f"Unknown lean changes {sorted(unknown)}; choose from {list(CHANGES)}")
        return cls(**{name: name in names for name in CHANGES}, rows=rows, positions=positions, park_from=park_from)


#: The `chunk_size` that asks for the lean trunk instead of a trunk chunk size (`models.load_model`, grids, tables).
LEAN = "lean"

#: The changes in the order the notebook switches them on.
CHANGES = ("sdpa_attention", "trimul", "pair_mlp", "seq_to_pair", "recycling", "structure_module", "heads",
           "one_projection", "park_lm")


def cumulative_steps(chunk_size: int = 32) -> list[tuple[str, LeanOptions | None]]:
    """Notebook 07's steps, (label, options): the original model with trunk chunk `chunk_size`, then each of CHANGES
    switched on after the ones before it. Predictions, measurements and figures join on these labels."""
    return [(f"original model, chunk {chunk_size}", None)] + [
        (f"+ {change}", LeanOptions.only(*CHANGES[:i + 1])) for i, change in enumerate(CHANGES)]


def _row_chunks(length: int, rows: int | None):
    """Slices over `length` rows, `rows` at a time (None: the default LeanOptions' chunk)."""
    step = rows or LeanOptions().chunk_rows(length)
    return [slice(i, min(i + step, length)) for i in range(0, length, step)]


# --- the pair operations --------------------------------------------------------------------------------------------

#: Device types on which the trunk's attention may only use PyTorch's memory-efficient SDPA kernel: its other kernel
#: that takes an additive bias, the math kernel, materialises the logits (heads × rows × L × L: 4 heads × 85 rows ×
#: 3,056² × 4 bytes = 12.7 GB at 3,056 residues with the default chunk) — a long fold would run out of memory instead of
#: saying why. FlashAttention takes no bias, so it never applies here.
KERNEL_RESTRICTED_ON = ("cuda",)
KERNEL = SDPBackend.EFFICIENT_ATTENTION
#: What PyTorch's error says when no allowed kernel takes the inputs (CUDA's wording, then the CPU's).
_NO_KERNEL = ("No available kernel", "No viable backend")


class AttentionKernelError(RuntimeError):
    """The memory-efficient attention kernel refused the lean trunk's inputs (and the math kernel is not allowed)."""


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """softmax(q kᵀ + bias) v by `scaled_dot_product_attention` (q already scaled); on KERNEL_RESTRICTED_ON devices only
    with the memory-efficient kernel (`KERNEL`), so that a fallback to the math kernel raises AttentionKernelError
    instead of allocating the logits. Elsewhere (the CPU) PyTorch picks the kernel, as before."""
    if q.device.type not in KERNEL_RESTRICTED_ON:
        return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=1.0)
    with sdpa_kernel(KERNEL):
        try:
            return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=1.0)
        except RuntimeError as error:
            if not any(words in str(error) for words in _NO_KERNEL):
                raise
            logits = math.prod(q.shape[:-1]) * k.shape[-2] * q.element_size()  # rows × heads × L × L
            raise AttentionKernelError(
                f"Triangle attention on {q.device} may only use PyTorch's memory-efficient kernel, and it refused "
                f"these inputs (queries {tuple(q.shape)}, {q.dtype}, bias {tuple(bias.shape)}); the math kernel "
                f"would hold {logits / 1e9:.1f} GB of attention logits for this chunk, so it is not used "
                f"(PyTorch said: {str(error).splitlines()[0]})") from error


def triangle_attention_(module, z: torch.Tensor, mask: torch.Tensor | None, rows: int | None) -> None:
    """z += EsmFoldTriangleAttention(z), in place: bias computed once (heads × L × L), attention by SDPA, rows at a time."""
    x = z if module.starting else z.transpose(1, 2)  # ending node: the same on the transposed (strided) view
    batch, length = x.shape[:2]
    mha = module.mha
    heads, width = mha.no_heads, mha.c_hidden
    chunks = _row_chunks(length, rows)
    bias = x.new_empty(batch, heads, length, length)
    for r in chunks:
        bias[:, :, r, :] = module.linear(module.layer_norm(x[:, r])).permute(0, 3, 1, 2)
    if mask is not None:  # keys at padded positions; a padded query row's output is never used
        bias += (module.inf * (mask.to(bias.dtype) - 1))[:, None, None, :]
    for r in chunks:
        xr = module.layer_norm(x[:, r])  # (B, r, L, C)

        def split(t):
            return t.view(t.shape[:-1] + (heads, width)).transpose(-2, -3)  # (B, r, H, L, d)

        q = split(mha.linear_q(xr)) / math.sqrt(width)
        k, v = split(mha.linear_k(xr)), split(mha.linear_v(xr))
        out = torch.stack([attention(q[b], k[b], v[b], bias[b:b + 1]) for b in range(batch)]).transpose(-2, -3)
        del q, k, v
        gate = torch.sigmoid(mha.linear_g(xr)).view(out.shape)
        out = mha.linear_o((out * gate).flatten(-2))
        x[:, r] += out


def triangle_multiplication_(module, z: torch.Tensor, mask: torch.Tensor | None, rows: int | None,
                              one_projection: bool = False) -> None:
    """z += EsmFoldTriangleMultiplicativeUpdate(z), in place: projections a and b, then the output rows at a time
    (`one_projection`: only one projection kept whole, `triangle_multiplication_one_`)."""
    if one_projection:
        triangle_multiplication_one_(module, z, mask, rows)
        return
    batch, length, _, channels = z.shape
    chunks = _row_chunks(length, rows)
    a = z.new_empty(batch, channels, length, length)  # a[c, i, k] with the sum over k
    b = z.new_empty(batch, channels, length, length)  # b[c, k, j]
    for r in chunks:
        zl = module.layer_norm_in(z[:, r])
        m = 1.0 if mask is None else mask[:, r].unsqueeze(-1).to(zl.dtype)
        pa = m * module.sigmoid(module.linear_a_g(zl)) * module.linear_a_p(zl)  # (B, r, L, C)
        pb = m * module.sigmoid(module.linear_b_g(zl)) * module.linear_b_p(zl)
        if module._outgoing:  # x_ij = sum_k a_ik b_jk
            a[:, :, r, :] = pa.permute(0, 3, 1, 2)
            b[:, :, :, r] = pb.permute(0, 3, 2, 1)
        else:  # incoming: x_ij = sum_k a_ki b_kj
            a[:, :, :, r] = pa.permute(0, 3, 2, 1)
            b[:, :, r, :] = pb.permute(0, 3, 1, 2)
        del zl, pa, pb
    for r in chunks:
        x = torch.matmul(a[:, :, r, :], b).permute(0, 2, 3, 1)  # (B, r, L, C)
        x = module.linear_z(module.layer_norm_out(x))
        gate = module.sigmoid(module.linear_g(module.layer_norm_in(z[:, r])))
        z[:, r] += x * gate


def triangle_multiplication_one_(module, z: torch.Tensor, mask: torch.Tensor | None, rows: int | None) -> None:
    """z += EsmFoldTriangleMultiplicativeUpdate(z), in place, with one projection kept whole (one pair tensor, not two).

    Outgoing, x_ij = sum_k a(z_ik) b(z_jk): the output's rows i need a only from z's same rows, so b is kept whole and
    a is computed for each chunk of rows just before that chunk is updated (rows not yet updated are untouched).
    Incoming, x_ij = sum_k a(z_ki) b(z_kj), is the same on the transposed pair tensor with a and b swapped."""
    batch, length, _, channels = z.shape
    outgoing = module._outgoing
    zv = z if outgoing else z.transpose(1, 2)  # incoming: work on the transposed (strided) view
    mv = None if mask is None else (mask if outgoing else mask.transpose(1, 2))
    a, b = (module.linear_a_g, module.linear_a_p), (module.linear_b_g, module.linear_b_p)
    by_rows, whole = (a, b) if outgoing else (b, a)

    def project(r, zl, gate_and_projection):  # mask · sigmoid(gate(zl)) · projection(zl), with one temporary less
        gate, projection = gate_and_projection
        out = projection(zl)
        out *= gate(zl).sigmoid_()
        if mv is not None:
            out *= mv[:, r].unsqueeze(-1).to(zl.dtype)
        return out  # (B, r, L, C)

    chunks = _row_chunks(length, rows)
    kept = z.new_empty(batch, channels, length, length)  # kept[c, k, j] = whole(zv_jk)
    for r in chunks:
        kept[:, :, :, r] = project(r, module.layer_norm_in(zv[:, r]), whole).permute(0, 3, 2, 1)
    for r in chunks:
        zl = module.layer_norm_in(zv[:, r])
        x = torch.matmul(project(r, zl, by_rows).permute(0, 3, 1, 2), kept)  # (B, C, r, L)
        x = module.layer_norm_out(x.permute(0, 2, 3, 1))
        x = module.linear_z(x)
        x *= module.linear_g(zl).sigmoid_()
        del zl
        zv[:, r] += x
        del x  # before the next chunk's temporaries exist


def residue_mlp_(module, z: torch.Tensor, rows: int | None) -> None:
    """z = EsmFoldResidueMLP(z) (z + mlp(z)), in place, rows at a time."""
    for r in _row_chunks(z.shape[1], rows):
        z[:, r] += module.mlp(z[:, r])


def sequence_to_pair_(module, sequence_state: torch.Tensor, z: torch.Tensor, rows: int | None) -> None:
    """z += EsmFoldSequenceToPair(sequence_state), in place, rows at a time (no L × L × 256 intermediate)."""
    s = module.proj(module.layernorm(sequence_state))
    q, k = s.chunk(2, dim=-1)
    for r in _row_chunks(z.shape[1], rows):
        kr = k[:, r, None, :]
        z[:, r] += module.o_proj(torch.cat([q[:, None, :, :] * kr, q[:, None, :, :] - kr], dim=-1))


def pair_to_sequence(module, z: torch.Tensor, rows: int | None) -> torch.Tensor:
    """EsmFoldPairToSequence(z) (B × L × L × heads) without a layer-normed copy of z."""
    batch, length = z.shape[:2]
    out = z.new_empty(batch, length, length, module.linear.out_features)
    for r in _row_chunks(length, rows):
        out[:, r] = module.linear(module.layernorm(z[:, r]))
    return out


# --- the block, the trunk, the heads ------------------------------------------------------------------------------

def _block_forward(self, sequence_state, pairwise_state, mask=None, chunk_size=None, **kwargs):
    """EsmFoldTriangularSelfAttentionBlock.forward with the switched-on changes; returns (s, z), z updated in place."""
    opts: LeanOptions = self._lean_options
    z = pairwise_state
    rows = opts.chunk_rows(z.shape[1])
    if opts.seq_to_pair:
        bias = pair_to_sequence(self.pair_to_sequence, z, rows)
    else:
        bias = self.pair_to_sequence(z)
    y = self.layernorm_1(sequence_state)
    y, weights = self.seq_attention(y, mask=mask, bias=bias)
    del bias
    if opts.one_projection:  # the attention weights (heads × L × L) are dead: not kept through the pair updates
        del weights
    sequence_state = self.mlp_seq(sequence_state + self.drop(y))

    if opts.seq_to_pair:
        sequence_to_pair_(self.sequence_to_pair, sequence_state, z, rows)
    else:
        z = z + self.sequence_to_pair(sequence_state)

    tri_mask = mask.unsqueeze(2) * mask.unsqueeze(1) if mask is not None else None
    for tri_mul in (self.tri_mul_out, self.tri_mul_in):
        if opts.trimul or opts.one_projection:
            triangle_multiplication_(tri_mul, z, tri_mask, rows, one_projection=opts.one_projection)
        else:
            z = z + tri_mul(z, mask=tri_mask)
    for tri_att in (self.tri_att_start, self.tri_att_end):
        if opts.sdpa_attention:
            triangle_attention_(tri_att, z, mask, rows)
        else:
            z = z + tri_att(z, mask=tri_mask, chunk_size=chunk_size)
    if opts.pair_mlp:
        residue_mlp_(self.mlp_pair, z, rows)
    else:
        z = self.mlp_pair(z)
    return sequence_state, z


def _relative_position_(module, residue_index, mask, z, rows) -> None:
    """z += EsmFoldRelativePosition(residue_index, mask), in place, rows at a time."""
    for r in _row_chunks(z.shape[1], rows):
        diff = residue_index[:, None, :] - residue_index[:, r, None]
        diff = diff.clamp(-module.bins, module.bins) + module.bins + 1
        if mask is not None:
            diff = diff.masked_fill((mask[:, None, :] * mask[:, r, None]) == 0, 0)
        z[:, r] += module.embedding(diff)


def _trunk_forward(self, seq_feats, pair_feats, true_aa, residx, mask, no_recycles):
    """EsmFoldingTrunk.forward keeping one pair tensor across recycles (`pair_feats` None = all zeros)."""
    if no_recycles is None:
        no_recycles = self.config.max_recycles
    else:
        if no_recycles < 0:
            raise ValueError("Number of recycles must not be negative.")
        no_recycles += 1
    batch, length = seq_feats.shape[:2]
    rows = self._lean_options.chunk_rows(length)
    chunks = _row_chunks(length, rows)
    recycle_s = torch.zeros_like(seq_feats)
    z = None
    bins = torch.zeros(batch, length, length, device=seq_feats.device, dtype=torch.int64)
    for _ in range(no_recycles):
        recycle_s = self.recycle_s_norm(recycle_s)
        if z is None:
            z = seq_feats.new_zeros(batch, length, length, self.config.pairwise_state_dim)
        for r in chunks:  # recycle_z_norm(previous z) + recycle_disto(bins) [+ the zero pair features], in place
            z[:, r] = self.recycle_z_norm(z[:, r])
            z[:, r] += self.recycle_disto(bins[:, r])
            if pair_feats is not None:
                z[:, r] += pair_feats[:, r]
        _relative_position_(self.pairwise_positional_embedding, residx, mask, z, rows)
        s = seq_feats + recycle_s
        for block in self.blocks:
            s, z = block(s, z, mask=mask, residue_index=residx, chunk_size=self.chunk_size)
        if self._lean_options.structure_module:
            structure = _structure_module(self, s, z, true_aa, mask, chunks)
        else:
            structure = self.structure_module({"single": self.trunk2sm_s(s), "pair": self.trunk2sm_z(z)}, true_aa,
                                              mask.float())
        recycle_s = s
        bins = EsmFoldingTrunk.distogram(structure["positions"][-1][:, :, :3], 3.375, 21.375, self.recycle_bins)
    structure["s_s"] = s
    structure["s_z"] = z
    return structure


def _structure_module(trunk, s, z, true_aa, mask, chunks):
    """The structure module on trunk2sm(s, z), with its layer-normed pair input built rows at a time."""
    sm = trunk.structure_module
    pair = z.new_empty(z.shape[:3] + (trunk.trunk2sm_z.out_features,))
    for r in chunks:
        pair[:, r] = sm.layer_norm_z(trunk.trunk2sm_z(z[:, r]))
    norm, sm.layer_norm_z = sm.layer_norm_z, torch.nn.Identity()
    try:
        return sm({"single": trunk.trunk2sm_s(s), "pair": pair}, true_aa, mask.float())
    finally:
        sm.layer_norm_z = norm


def _ipa_forward(self, s, z, r, mask, _offload_inference=False, _z_reference_list=None):
    """EsmFoldInvariantPointAttention.forward with the attention computed for query rows at a time (same arithmetic;
    the point-weighted sum over keys as a matrix product)."""
    rows = self._lean_options.chunk_rows(s.shape[1])
    heads = self.num_heads
    q = self.linear_q(s).view(s.shape[:-1] + (heads, -1))
    kv = self.linear_kv(s).view(s.shape[:-1] + (heads, -1))
    k, v = torch.split(kv, self.hidden_dim, dim=-1)
    q_pts = self.linear_q_points(s)
    q_pts = torch.stack(torch.split(q_pts, q_pts.shape[-1] // 3, dim=-1), dim=-1)
    q_pts = r[..., None].apply(q_pts)
    q_pts = q_pts.view(q_pts.shape[:-2] + (heads, self.num_qk_points, 3))
    kv_pts = self.linear_kv_points(s)
    kv_pts = torch.stack(torch.split(kv_pts, kv_pts.shape[-1] // 3, dim=-1), dim=-1)
    kv_pts = r[..., None].apply(kv_pts)
    kv_pts = kv_pts.view(kv_pts.shape[:-2] + (heads, -1, 3))
    k_pts, v_pts = torch.split(kv_pts, [self.num_qk_points, self.num_v_points], dim=-2)

    head_weights = self.softplus(self.head_weights).view((1,) * 3 + (-1, 1))
    head_weights = head_weights * math.sqrt(1.0 / (3 * (self.num_qk_points * 9.0 / 2)))
    square_mask = self.config.inf * (mask.unsqueeze(-1) * mask.unsqueeze(-2) - 1)
    k_t = permute_final_dims(k, (1, 2, 0))  # [*, H, C, N]
    v_t = v.transpose(-2, -3)  # [*, H, N, C]
    v_pts_t = permute_final_dims(v_pts, (1, 3, 0, 2))  # [*, H, 3, N, P_v]
    batch, length = s.shape[:2]
    o = o_pt = o_pair = None
    for rr in _row_chunks(length, rows):
        a = torch.matmul(permute_final_dims(q[:, rr], (1, 0, 2)), k_t)  # [*, H, r, N]
        a *= math.sqrt(1.0 / (3 * self.hidden_dim))
        a += math.sqrt(1.0 / 3) * permute_final_dims(self.linear_b(z[:, rr]), (2, 0, 1))
        pt_att = (q_pts[:, rr].unsqueeze(-4) - k_pts.unsqueeze(-5)) ** 2
        pt_att = sum(torch.unbind(pt_att, dim=-1)) * head_weights
        pt_att = permute_final_dims(torch.sum(pt_att, dim=-1) * (-0.5), (2, 0, 1))
        a = a + pt_att
        del pt_att
        a = a + square_mask[:, rr].unsqueeze(-3)
        a = self.softmax(a)
        if o is None:  # the original computes these in the attention weights' dtype (type promotion included)
            o = a.new_empty(batch, length, heads, self.hidden_dim)
            o_pt = a.new_empty(batch, length, heads, self.num_v_points, 3)
            o_pair = a.new_empty(batch, length, heads, z.shape[-1])
        o[:, rr] = torch.matmul(a, v_t.to(dtype=a.dtype)).transpose(-2, -3)
        o_pt[:, rr] = permute_final_dims(torch.matmul(a.unsqueeze(-3), v_pts_t.to(dtype=a.dtype)), (2, 0, 3, 1))
        o_pair[:, rr] = torch.matmul(a.transpose(-2, -3), z[:, rr].to(dtype=a.dtype))
    o = flatten_final_dims(o, 2)
    o_pt = r[..., None, None].invert_apply(o_pt)
    o_pt_norm = flatten_final_dims(torch.sqrt(torch.sum(o_pt**2, dim=-1) + self.config.epsilon), 2)
    o_pt = o_pt.reshape(*o_pt.shape[:-3], -1, 3)
    o_pair = flatten_final_dims(o_pair, 2)
    return self.linear_out(torch.cat((o, *torch.unbind(o_pt, dim=-1), o_pt_norm, o_pair), dim=-1).to(dtype=z.dtype))


def _pair_head(head, z, rows, symmetric=False):
    """A linear head over the pair tensor, rows at a time; `symmetric` averages it with its transpose."""
    batch, length = z.shape[:2]
    out = None
    for r in _row_chunks(length, rows):
        part = head(z[:, r])
        if symmetric:
            part = (part + head(z[:, :, r]).transpose(1, 2)) / 2
        if out is None:
            out = part.new_empty(batch, length, length, part.shape[-1])
        out[:, r] = part
    return out


def _tm_and_pae(logits, rows, max_bin=31, eps=1e-8):
    """(pTM, PAE, max PAE) exactly as transformers computes them, softmaxing rows at a time."""
    no_bins = logits.shape[-1]
    length = logits.shape[-2]
    centers = _calculate_bin_centers(torch.linspace(0, max_bin, steps=no_bins - 1, device=logits.device))
    clipped = max(length, 19)
    d0 = 1.24 * (clipped - 15) ** (1.0 / 3) - 1.8
    tm_per_bin = 1.0 / (1 + (centers**2) / (d0**2))
    weights = logits.new_ones(length)
    normed = weights / (eps + weights.sum())
    per_alignment = logits.new_empty(logits.shape[:-2])
    pae = logits.new_empty(logits.shape[:-1])
    for r in _row_chunks(logits.shape[-3], rows):
        probs = torch.nn.functional.softmax(logits[:, r], dim=-1)
        per_alignment[:, r] = torch.sum(torch.sum(probs * tm_per_bin, dim=-1) * normed, dim=-1)
        pae[:, r] = torch.sum(probs * centers, dim=-1)
    weighted = per_alignment * weights
    argmax = (weighted == torch.max(weighted)).nonzero()[0]
    return per_alignment[tuple(argmax)], pae, centers[-1]


def _model_forward(self, input_ids, attention_mask=None, position_ids=None, masking_pattern=None, num_recycles=None,
                   output_hidden_states=False, **kwargs):
    """EsmForProteinFolding.forward with the lean trunk and heads (inference only: runs under no_grad)."""
    if masking_pattern is not None:
        raise ValueError("The lean model is for inference: masking_pattern is not supported (undo_lean first).")
    opts: LeanOptions = self._lean_options
    with torch.no_grad():
        cfg = self.config.esmfold_config
        aa = input_ids
        batch, length = aa.shape
        device = input_ids.device
        if attention_mask is None:
            attention_mask = torch.ones_like(aa, device=device)
        if position_ids is None:
            position_ids = torch.arange(length, device=device).expand_as(input_ids)
        esmaa = self.af2_idx_to_esm_idx(aa, attention_mask)
        if self.__dict__.get("_lm_parked"):  # parked by an earlier fold: back onto this fold's device first
            self._lm_parking.unpark(self.esm, device)
            self._lm_parked = False
        esm_s = self.compute_language_model_representations(esmaa).to(self.esm_s_combine.dtype)
        if opts.parks(length):
            self._lm_parked = self._lm_parking.park(self.esm)
        if cfg.esm_ablate_sequence:
            esm_s = esm_s * 0
        esm_s = (self.esm_s_combine.softmax(0).unsqueeze(0) @ esm_s).squeeze(2)
        s_s_0 = self.esm_s_mlp(esm_s)
        del esm_s
        if cfg.embed_aa:
            s_s_0 += self.embedding(aa)
        if opts.recycling:
            structure = self.trunk(s_s_0, None, aa, position_ids, attention_mask, no_recycles=num_recycles)
        else:
            s_z_0 = s_s_0.new_zeros(batch, length, length, cfg.trunk.pairwise_state_dim)
            structure = self.trunk(s_s_0, s_z_0, aa, position_ids, attention_mask, no_recycles=num_recycles)
            del s_z_0
        keep = ["s_z", "s_s", "frames", "sidechain_frames", "unnormalized_angles", "angles", "positions", "states"]
        structure = {k: v for k, v in structure.items() if k in keep}
        rows = opts.chunk_rows(length) if opts.heads else length
        structure["distogram_logits"] = _pair_head(self.distogram_head, structure["s_z"], rows, symmetric=True)
        structure["lm_logits"] = self.lm_head(structure["s_s"])
        structure["aatype"] = aa
        make_atom14_masks(structure)
        for k in ["atom14_atom_exists", "atom37_atom_exists"]:
            structure[k] *= attention_mask.unsqueeze(-1)
        structure["residue_index"] = position_ids
        lddt_head = self.lddt_head(structure["states"]).reshape(structure["states"].shape[0], batch, length, -1,
                                                                self.lddt_bins)
        structure["lddt_head"] = lddt_head
        structure["plddt"] = categorical_lddt(lddt_head[-1], bins=self.lddt_bins)
        ptm_logits = _pair_head(self.ptm_head, structure["s_z"], rows)
        structure["ptm_logits"] = ptm_logits
        ptm, pae, max_pae = _tm_and_pae(ptm_logits, rows)
        structure["ptm"] = ptm
        structure["predicted_aligned_error"] = pae
        structure["max_predicted_aligned_error"] = max_pae
        if not opts.heads:
            structure["aligned_confidence_probs"] = torch.nn.functional.softmax(ptm_logits, dim=-1)
        return EsmForProteinFoldingOutput(**structure)


class ParkingRefused(UserWarning):
    """The language model could have been parked but is not: CPU RAM would run short (`park_refusal`)."""


class CPUParking:
    """Where `park_lm` keeps the language model between folds: CPU RAM (its weights as stored: 5.7 GB in fp16, 2.8 GB
    with int8 weights; `parkable`), copied back to the GPU when the next fold starts.

    `to`: where the weights wait; `sources`: the device types a language model is parked from (a GPU's). Both exist
    so the tests can run this very path where there is no GPU. `available`: how many bytes of RAM are available now
    (None: unknown). `last` holds the last decision: parked or not, why not, the bytes moved and, on CUDA, the bytes
    of GPU memory the move freed."""

    def __init__(self, to="cpu", sources=("cuda",), available=memory.available_ram_bytes):
        self.to, self.sources, self.available = torch.device(to), tuple(sources), available
        self.last: dict = {}
        self._said = False

    def park(self, lm: torch.nn.Module) -> bool:
        """Move the language model's weights to `to`; False (nothing moved) if they are not all on a `sources` device
        — a fold on the CPU, or weights accelerate already offloads (they wait on the meta device between its layer
        hooks) — or if CPU RAM would run short (`park_refusal`: said once, as a ParkingRefused warning)."""
        devices = {t.device.type for t in [*lm.parameters(), *lm.buffers()]}
        if not devices or not devices <= set(self.sources):
            self.last = {"parked": False, "why": f"the language model is on {', '.join(sorted(devices))}"}
            return False
        lm_bytes = memory.stored_bytes(lm)
        why = park_refusal(lm_bytes, self.available())
        if why is not None:
            self.last = {"parked": False, "why": why, "bytes": lm_bytes}
            if not self._said:
                warnings.warn(why, ParkingRefused, stacklevel=3)
                self._said = True
            return False
        on_cuda = "cuda" in devices
        before = torch.cuda.memory_allocated() if on_cuda else 0
        lm.to(self.to)
        if on_cuda:
            torch.cuda.empty_cache()  # hand the freed blocks back, so nvidia-smi shows the trunk's own need
        self.last = {"parked": True, "why": "", "bytes": lm_bytes,
                     "freed": before - torch.cuda.memory_allocated() if on_cuda else None}
        return True

    def unpark(self, lm: torch.nn.Module, device: torch.device) -> None:
        """Bring a parked language model back to `device`."""
        lm.to(device)


def make_lean(model, options: LeanOptions | None = None, parking=None):
    """Make a loaded EsmForProteinFolding memory-lean in place (same weights; see the module docstring); returns it.
    `parking` says where `park_lm` keeps the language model between folds (default `CPUParking()`)."""
    options = options or LeanOptions()
    undo_lean(model)
    model._lean_options = options
    model._lm_parking = parking or CPUParking()
    model.trunk._lean_options = options
    model.forward = types.MethodType(_model_forward, model)
    if options.recycling:
        model.trunk.forward = types.MethodType(_trunk_forward, model.trunk)
    if options.structure_module:
        ipa = model.trunk.structure_module.ipa
        ipa._lean_options = options
        ipa.forward = types.MethodType(_ipa_forward, ipa)
    for block in model.trunk.blocks:
        if isinstance(block, EsmFoldTriangularSelfAttentionBlock):
            make_block_lean(block, options)
    return model


def make_block_lean(block, options: LeanOptions):
    """One trunk block with the lean forward (`make_lean` does this to every block of a model); returns it."""
    block._lean_options = options
    block.forward = types.MethodType(_block_forward, block)
    return block


def undo_lean(model):
    """Restore the original transformers forward methods (and a parked language model); returns the model."""
    if model.__dict__.pop("_lm_parked", False):
        model._lm_parking.unpark(model.esm, model.esm_s_combine.device)
    model.__dict__.pop("_lm_parking", None)
    for module in [model, model.trunk, model.trunk.structure_module.ipa, *model.trunk.blocks]:
        module.__dict__.pop("forward", None)
        module.__dict__.pop("_lean_options", None)
    return model


def is_lean(model) -> LeanOptions | None:
    """The lean options of a model, or None for the original."""
    return model.__dict__.get("_lean_options")
