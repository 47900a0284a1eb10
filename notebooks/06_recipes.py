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
# **Estimated run time on a free Colab T4:** about 13 minutes, download included ([how it is
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
NEEDS = ["optimum-quanto", "py3Dmol"]  # what this notebook uses that Colab lacks (pinned in helpers/colab.py)
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

from pathlib import Path

import numpy as np
import pandas as pd

from helpers import (accuracy, batch, benchmark, complexes, cpu, data, fit, folding, gpu, memory, models, notebook,
                     recipes, structure)

# %% [markdown]
# ## Parameters
# The lengths folded, the memory caps (a T4's own on a larger GPU; a 4 GB and a 6 GB card for offloading), where
# offloading puts the language model, how many FASTA records and how long a chain the batch and complex sections take.

# %%
MODEL_ID = models.checkpoint_path()  # "facebook/esmfold_v1" (or a stand-in's folder)
DEVICE = notebook.start()  # "cuda"
LONG = 1024  # section 1's long protein
LONG_RECYCLES = 0  # section 1 times one trunk pass (the cell estimates what the default passes would take)
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
# Notebook 04 showed that for long proteins the **activations** (the tensors a fold computes on its way, as opposed
# to the weights) fill the GPU. Two levers remain: smaller weights (int8, int4: weights stored as 8- or 4-bit
# integers, notebook 03) and **trunk chunking**.
#
# The trunk is ESMFold's folding part: blocks that refine one vector per residue and a *pair representation*, one
# vector for every pair of residues (L × L for L residues). Chunking (`model.trunk.set_chunk_size(n)`) computes the
# trunk's triangle attention — attention along the rows and columns of the pair representation — n rows at a time,
# so only one slice of its intermediate tensors exists at once.
#
# The predictor of notebook 04 tells us, without loading anything, how far each combination goes on a T4 (its need
# as nvidia-smi would show it, read from the committed grid with `fit.grid_estimate`; default recycles). The recipes
# are this notebook's ladder (`recipes.ladder()`): `fp16` and `int8`/`int4` from notebooks 02–03, `fp16-offload` (the
# language model kept in CPU RAM, section 2) and `int8-lm` (int8 weights in the language model only, the trunk fp32):

# %% tags=["show-output"]
LADDER = recipes.ladder()  # notebook 06's recipes, most accurate first (`fit.recommend` tries them in this order)
rows = []
for recipe in LADDER:
    for chunk in [None, 64, 32]:
        row = {"recipe": recipe, "chunk size": chunk or "none"}
        for length in [1024, 1280, 1536]:
            need = fit.grid_estimate(recipe, length, chunk)["reserved (GiB)"]
            said = gpu.verdict(need, gpu.T4.usable_gib)
            row[f"L = {length}"] = f"{need + gpu.T4.context_gib:.1f} GiB" + {"fits": " ✓", "borderline": " ?"}.get(said, "")
        rows.append(row)
print(f"PREDICTED GPU memory of the esmfold_v1 architecture as nvidia-smi would show it (the need + the CUDA "
      f"context); ✓ = the need fits PyTorch's budget on a free T4 ({gpu.T4.usable_gib:.2f} GiB), ? = borderline "
      f"(estimate): within {gpu.BORDERLINE_GIB} GiB of the limit, "
      "closer than the assumed CUDA context can promise")
pd.DataFrame(rows)

# %% [markdown]
# Three questions the table answers, printed from the same predictions: how long each recipe gets with chunk 64, what
# chunk 32 adds, and whether the whole spike protein fits. Then what a measurement said (a fold on an H100 whose
# memory was capped near a T4's, committed in `figures/09_gpu_limits.csv`).

# %% tags=["show-output"]
lengths = [length for length in fit.GRID_LENGTHS if length <= 1536]
for recipe in LADDER:
    said = {length: gpu.verdict(fit.grid_estimate(recipe, length, 64)["reserved (GiB)"], gpu.T4.usable_gib)
            for length in lengths}
    fitting = [length for length, verdict in said.items() if verdict == "fits"]
    edge = [length for length, verdict in said.items() if verdict == "borderline"]
    saved = max(fit.grid_estimate(recipe, length, 64)["reserved (GiB)"]
                - fit.grid_estimate(recipe, length, 32)["reserved (GiB)"] for length in lengths)
    borderline = f", borderline up to {max(edge)} aa" if edge and max(edge) > max(fitting, default=0) else ""
    print(f"{recipe:>12}, chunk 64: longest grid length predicted to fit a T4 with margin: "
          f"{max(fitting, default='none')} aa{borderline} · chunk 32 instead saves at most {saved:.3f} GiB")
smallest = min((fit.grid_estimate(v, 1280, 64)["reserved (GiB)"], v) for v in LADDER)
print(f"at 1280 aa the smallest need is {smallest[0]:.2f} GiB ({smallest[1]}, chunk 64; the table above adds the "
      f"CUDA context: {smallest[0] + gpu.T4.context_gib:.1f} GiB), over PyTorch's budget on a T4, "
      f"{gpu.T4.usable_gib:.2f} GiB")
spike_length = len(data.read_fasta(data.fetch("sequences/P0DTC2_spike.fasta"))[0][1])  # the sequence section 1 folds
print(f"the whole spike protein ({spike_length} aa):", fit.verdict("int4", spike_length, 64)[1])
trunk_config = models.config_dict()["esmfold_config"]["trunk"]
print(f"pair tensors: L × L × {trunk_config['pairwise_state_dim']} channels; the pair transition MLP widens them to "
      f"{4 * trunk_config['pairwise_state_dim']}; {trunk_config['num_blocks']} trunk blocks, "
      f"{trunk_config['max_recycles']} trunk passes by default (esmfold_v1 config)")
limits = pd.read_csv(data.repo_file("figures/09_gpu_limits.csv"))
limits = limits[(limits["step"] == "fold") & (limits["recipe"] == "int8") & (limits["lean trunk"].astype(str) == "False")]
print("MEASURED on an H100, a full-size model with untrained weights (memory and time only), "
      "figures/09_gpu_limits.csv:")
print(limits[["recipe", "length", "chunk size", "trunk passes", "cap (GiB)", "status", "peak allocated (GiB)"]]
      .to_string(index=False))

# %% [markdown]
# Reading the table and the lines under it:
# - **Unchunked**, no recipe gets near 1,024 residues: triangle attention materialises heads × L³ logits at once.
# - **Chunk 32 saves nothing over chunk 64** (the lines above). Chunking only splits triangle attention.
#
# What is left is the part that chunking does not touch. The triangle multiplicative update (pair (i, j) updated from
# the products of pairs (i, k) and (j, k) over all k) and the pair transition MLP (two other layers of every trunk
# block) work on whole L × L pair tensors, and the MLP widens them (the channel counts are printed above). Several
# L² pair tensors also stay alive across the recycling loop: the trunk runs several passes, each starting from the
# last one's output.
#
# That floor grows with L², and between 1,024 and 1,280 residues it meets the T4 whatever the weights (the lines
# above). Within it, smaller weights buy length: compare fp16's longest length with int4's. The whole SARS-CoV-2
# spike protein ([UniProt P0DTC2](https://www.uniprot.org/uniprotkb/P0DTC2)) is predicted not to fit; it needs
# notebook 07, which removes the floor. The measured H100 folds agree: int8 + chunk 64 folded 1,024 residues and
# ran out of memory at 1,280, with chunk 32 as with chunk 64.
#
# The next cell folds the first `LONG` residues of the spike with `int4`, trunk chunk 64, under a T4 cap
# (`memory.gpu_budget`; on a T4 itself it changes nothing), and puts the measurement next to the prediction. It times
# **one trunk pass** (`num_recycles=0`): its peak is slightly lower than the default passes' (notebook 04, section 3).
# `benchmark.stage_times` splits the time, so the cell can say what the default would take.

# %%
sequence, origin = data.sequence_of_length(LONG)
print(fit.verdict("int4", LONG, 64)[1])
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
# ESMFold's language model (ESM-2) turns the sequence into the per-residue vectors the trunk starts from. It holds
# most of ESMFold's parameters, yet it runs **once** per fold, while the trunk's blocks run once per pass (the next
# cell prints both from the committed weight tables and the esmfold_v1 config):

# %% tags=["show-output"]
per_stage = pd.read_csv(data.repo_file("figures/01_weights_per_stage.csv")).set_index("stage")["parameters"]
fp16_weights = models.expected_weights_bytes("fp16")  # computed from the architecture (figures/03: measured)
lm_bytes = fp16_weights["language model (ESM-2)"]
print(f"language model: {per_stage['language model (ESM-2)'] / 1e9:.2f} B of {per_stage.sum() / 1e9:.2f} B parameters "
      "(figures/01_weights_per_stage.csv)")
print(f"the language model in fp16: {lm_bytes / 1e9:.2f} GB = {lm_bytes / 2**30:.2f} GiB — what offloading moves to "
      f"CPU RAM (a free Colab runtime has {cpu.COLAB_RAM_GB} GB)")
print(f"what stays on the GPU (trunk, structure module, heads; fp32): "
      f"{(fp16_weights['total'] - lm_bytes) / 2**30:.2f} GiB")
print(f"trunk: {trunk_config['num_blocks']} blocks × {trunk_config['max_recycles']} passes by default; "
      "language model: 1 pass")

# %% [markdown]
# So the LM can live in CPU RAM: [accelerate](https://huggingface.co/docs/accelerate/usage_guides/big_modeling)
# hooks copy each of its layers to the GPU just before it runs and drop it after (**offloading**). `from_pretrained`
# does this when its `device_map` says `"cpu"` for the `esm` module and the GPU for everything else:

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
# The recipe is `fp16-offload`: the fp16 LM in RAM, the fp32 rest on the GPU (both sizes printed above). Its numbers
# are exactly `fp16`'s. Its cost is copying the LM over PCIe (the bus between CPU RAM and the GPU) once per fold.
# transformers refuses a CPU or disk `device_map` for Quanto-quantized models
# ([quantizer_quanto.py](https://github.com/huggingface/transformers/blob/main/src/transformers/quantizers/quantizer_quanto.py)),
# so there is no int8 + offload recipe. `models.load_model("fp16-offload")` is the load above in one call
# (`models.offload_device_map` is its map).
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
# What to look for on a GPU: the offloaded fold's peak is the GPU-resident weights plus the activations — lower than
# `fp16`'s by the LM's fp16 weights (printed at the start of this section). Its time is `fp16`'s plus the copy of the
# LM. When the notebook runs on the tiny stand-in, the numbers above are meaningless; only the equality of the two
# predictions is checked.

# %% [markdown]
# ## 3 · Fold a whole FASTA file
#
# `batch.fold_fasta` folds every record of a FASTA file into `<id>.pdb` and appends one row per record to
# `summary.csv`: id, length, mean pLDDT, pTM, seconds, peak memory, recipe. pLDDT (predicted local distance
# difference test) is the model's confidence in each residue, 0–100; the PDB files carry it in their B-factor column,
# the one structure viewers colour by. pTM is explained below. File names are made safe from the headers.
#
# Records are sorted by length and packed into padded batches of at most `token_budget` residues (batch size ×
# longest length). An invalid record gets a row with the reason. A batch that runs out of memory is retried one
# record at a time, and a record that fails alone gets a row saying so. The run goes on either way, and **a second
# run skips every record already in the summary** — a Colab disconnect costs only the batch in flight.
#
# Our file: notebook 05's experimental targets plus one broken record.

# %%
targets = accuracy.local_targets()  # notebook 05's targets (shortest first): shared data, else RCSB per entry
records = [(t["target"], t["sequence"]) for t in targets][:MAX_RECORDS]
records.append(("broken_record a sequence with a digit and a gap", "MKT-AYI4AKQR"))
fasta = WORK / "targets.fasta"
fasta.write_text("".join(f">{header}\n{seq}\n" for header, seq in records))
print(f"{len(records)} records: {len(records) - 1} targets of notebook 05 + 1 broken record")
out_dir = WORK / "batch"
for old in out_dir.glob("*"):  # start clean, so that the resume below is visible
    old.unlink()
LABEL = "fp16, chunk 64"  # section 2's model, as the summary files will name it

# %% [markdown]
# First run, **interrupted** after two folds (`stop_after=2` stands in for a disconnect):

# %%
first = batch.fold_fasta(model, tokenizer, fasta, out_dir, recipe=LABEL, stop_after=2)
print(notebook.label(f"folded now: {first.attrs['folded now']}"))
first[["id", "length", "status", "mean pLDDT (Cα)", "pTM", "seconds", "reason"]]

# %% [markdown]
# Second run: it resumes — only the records not yet in the summary are folded. A third run folds nothing.

# %%
second = batch.fold_fasta(model, tokenizer, fasta, out_dir, recipe=LABEL)
third = batch.fold_fasta(model, tokenizer, fasta, out_dir, recipe=LABEL)
print(notebook.label(f"second run folded {second.attrs['folded now']}, third run folded {third.attrs['folded now']}"))
assert third.attrs["folded now"] == 0 and len(third) == len(records)
assert (third["status"] == "invalid").sum() == 1
second.sort_values("length")[["id", "length", "status", "batch size", "mean pLDDT (Cα)", "pTM", "seconds",
                              "peak memory (GiB)", "pdb"]]

# %% [markdown]
# **One pTM per sequence.** pTM (predicted TM-score) is the model's estimate, from 0 to 1, of how well its whole
# predicted structure would superpose on the true one ([TM-score](https://doi.org/10.1002/prot.20264)). The model
# computes it from its `ptm_logits` output — for every residue pair, a distribution over bins of the expected
# position error — with `compute_tm` from transformers' openfold utilities
# ([modeling_esmfold.py](https://github.com/huggingface/transformers/blob/main/src/transformers/models/esm/modeling_esmfold.py),
# [loss.py](https://github.com/huggingface/transformers/blob/main/src/transformers/models/esm/openfold_utils/loss.py)).
#
# In a padded batch, that call sees every sequence's padded L × L block and returns **one number for the whole
# batch**: the largest over every sequence's alignments, padding included. The fix is to call `compute_tm` once per
# sequence, on its own n × n block of unpadded residues. The cell folds the three shortest targets as one padded
# batch:

# %%
from transformers.models.esm.openfold_utils.loss import compute_tm

three = [seq for _, seq in records[:3]]
inputs = tokenizer(three, return_tensors="pt", add_special_tokens=False, padding=True)
# padding gets residue id 0, as `model.infer` pads: the <pad> token id is outside the structure module's residue tables
inputs["input_ids"] = inputs["input_ids"].masked_fill(inputs["attention_mask"] == 0, 0)
with torch.no_grad():
    outputs = model(**inputs.to(DEVICE))  # default recycles
print("ptm_logits", tuple(outputs["ptm_logits"].shape), "= (batch, L, L, bins); the model's ptm:",
      tuple(outputs["ptm"].shape), "— one number")
per_sequence = []
for i, seq in enumerate(three):
    n = len(seq)  # this sequence's residues; its rows and columns past n are padding
    logits = outputs["ptm_logits"][i, :n, :n].float()
    per_sequence.append(float(compute_tm(logits, max_bin=31, no_bins=logits.shape[-1])))  # as the model calls it

# %% [markdown]
# Compare with each sequence folded alone (its pTM needs no masking) and with `folding.fold_many`, the helper that
# folds a padded batch and does this masking for you:

# %%
alone = [folding.fold(model, tokenizer, seq).ptm for seq in three]
helper = [result.ptm for result in folding.fold_many(model, tokenizer, three)]
print(notebook.label("pTM of three sequences"))
print(f"largest difference, per sequence vs alone: {max(abs(a - b) for a, b in zip(per_sequence, alone)):.1e}")
assert max(abs(a - b) for a, b in zip(per_sequence, helper)) < 1e-3, "the helper computes the same per-sequence pTM"
pd.DataFrame({"length": [len(seq) for seq in three], "pTM alone": alone, "pTM per sequence (our cell)": per_sequence,
              "folding.fold_many": helper, "model's batch ptm output": float(outputs["ptm"])})

# %% [markdown]
# With the real weights, the per-sequence column is what folding alone gives (`tests/test_batch.py` checks it to 1e-4
# on short sequences), and the helper's column is the same computation; the model's batch output is one number for
# all three. A stand-in's numbers here mean nothing. From here on `folding.fold_many` does the masking
# (`batch.fold_fasta` calls it for every batch).

# %% [markdown]
# ## 4 · A complex: two chains in one fold
#
# ESMFold folds one sequence. Its reference code folds a complex — several chains — by making one sequence of
# them ([fair-esm's `infer`](https://github.com/facebookresearch/esm/blob/2b369911bb5b4b0dda914521b9475cad1656b2ac/esm/esmfold/v1/esmfold.py#L281-L339)
# and [`encode_sequence`](https://github.com/facebookresearch/esm/blob/2b369911bb5b4b0dda914521b9475cad1656b2ac/esm/esmfold/v1/misc.py#L18-L58)):
# - a **linker** between the chains: a run of glycines, the "flexible (poly-G) linker" of
#   [the model card's discussion](https://huggingface.co/facebook/esmfold_v1/discussions/2) (fair-esm's
#   `chain_linker` default);
# - a jump in the **residue index**, the position number the trunk reads to know how far apart two residues are
#   along the chain: from the second chain on, fair-esm's `residue_index_offset` is added;
# - afterwards the linker is removed: fair-esm drops it from the atoms and the mean pLDDT; here we also drop it from
#   the pTM.
#
# Our example is [2RBG](https://www.rcsb.org/structure/2RBG), a dimer of two identical chains (the biological unit
# its authors give in the entry); notebook 05's target list holds its chain A. The next cell builds the inputs with
# fair-esm's defaults, as `complexes.fold_complex` does, and checks them against that helper's own input builder.

# %%
chain = next(t["sequence"] for t in targets if t["target"] == "2RBG_A")[:DIMER_CHAIN]
chain_a, chain_b = chain, chain  # a homodimer: two copies of one chain
LINKER = "G" * 25  # fair-esm's chain_linker default
OFFSET = 512  # fair-esm's residue_index_offset default
joined = chain_a + LINKER + chain_b
inputs = tokenizer([joined], return_tensors="pt", add_special_tokens=False)
first_b = len(chain_a) + len(LINKER)  # chain B's first residue; the linker keeps chain A's numbering
position_ids = torch.arange(len(joined))
position_ids[first_b:] += OFFSET
position_ids = position_ids.unsqueeze(0)  # (batch of 1, length)
keep = torch.tensor([True] * len(chain_a) + [False] * len(LINKER) + [True] * len(chain_b))  # False: the linker
print(f"joined length {len(joined)} = {len(chain_a)} + {len(LINKER)} linker + {len(chain_b)}; residue index "
      f"{position_ids[0, first_b - 1].item()} → {position_ids[0, first_b].item()} at chain B's first residue")

helper_joined, helper_index, helper_chains = complexes.complex_inputs([chain_a, chain_b])
assert (LINKER, OFFSET) == (complexes.LINKER, complexes.RESIDUE_INDEX_OFFSET)
assert helper_joined == joined and helper_index == position_ids[0].tolist()
assert [c >= 0 for c in helper_chains] == keep.tolist()
print("the same sequence, residue index and linker mask as complexes.complex_inputs")

# %% [markdown]
# The fold is one call with `position_ids` — the residue index — passed to the model. Then the linker comes out of
# the pLDDT (its Cα, atom 1 of the model's 37-atom layout) and out of the pTM logits, rows and columns:

# %%
with torch.no_grad():
    output = model(**inputs.to(DEVICE), position_ids=position_ids.to(DEVICE))  # default recycles
keep = keep.to(output["plddt"].device)
plddt = output["plddt"][0].float() * 100  # (length, 37 atoms); transformers returns 0–1
ca_plddt = plddt[keep, 1]  # Cα of the chains' residues only
chain_plddt = {"A": float(ca_plddt[:len(chain_a)].mean()), "B": float(ca_plddt[len(chain_a):].mean())}
logits = output["ptm_logits"][0][keep][:, keep].float()
dimer_ptm = float(compute_tm(logits, max_bin=31, no_bins=logits.shape[-1]))
rounded = {name: round(value, 1) for name, value in chain_plddt.items()}
print(notebook.label(f"mean pLDDT (Cα, linker excluded) {ca_plddt.mean():.1f} · per chain {rounded} · "
                     f"pTM {dimer_ptm:.3f}"))

# %% [markdown]
# The PDB file: transformers' own writer (`to_pdb`, as `model.output_to_pdb` uses it), fed only the chains'
# residues, with chain letters A and B and each chain numbered from 1:

# %%
from transformers.models.esm.openfold_utils.feats import atom14_to_atom37
from transformers.models.esm.openfold_utils.protein import Protein, to_pdb

kept = {key: output[key][0][keep].cpu().numpy() for key in ["aatype", "atom37_atom_exists", "residx_atom37_to_atom14"]}
atoms = atom14_to_atom37(output["positions"][-1, 0][keep].float().cpu().numpy(), kept)
dimer_pdb = to_pdb(Protein(
    aatype=kept["aatype"], atom_positions=atoms, atom_mask=kept["atom37_atom_exists"],
    residue_index=np.concatenate([np.arange(1, len(chain_a) + 1), np.arange(1, len(chain_b) + 1)]),
    b_factors=plddt[keep].cpu().numpy(), chain_index=np.array([0] * len(chain_a) + [1] * len(chain_b))))
(WORK / "2RBG_dimer.pdb").write_text(dimer_pdb)
pdb_lines = [line for line in dimer_pdb.splitlines() if line.startswith("ATOM")]
chains_in_pdb = sorted({line[21] for line in pdb_lines})
residues = {(line[21], line[22:26]) for line in pdb_lines if line[12:16].strip() == "CA"}
print(f"chains {chains_in_pdb}, {len(residues)} residues ({len(chain_a)} + {len(chain_b)}; the {len(LINKER)} linker "
      "glycines are gone)")
assert chains_in_pdb == ["A", "B"] and len(residues) == len(chain_a) + len(chain_b)
structure.show_structure(dimer_pdb)

# %% [markdown]
# `complexes.fold_complex(model, tokenizer, [chain_a, chain_b])` does these three cells in one call (Solution 3 uses
# it).
#
# With the real weights, look at the interface: are the two copies packed against each other as in the crystal, or
# floating apart? pLDDT says how sure the model is of each residue's local structure; it does not score how the
# chains sit against each other. Treat a predicted interface as a hypothesis, and compare it with an experimental
# structure where there is one.

# %% [markdown]
# ## 5 · Which recipe fits my hardware?
#
# Notebook 04's hardware table gave the longest protein per recipe. Turned around — *I have X GB of GPU memory and a
# protein of L residues: what do I use?* — with this notebook's recipes in the ladder (`fit.recommend`). Each recipe
# tries no chunking, then chunk sizes 128, 64 and 32, then the *lean trunk*: notebook 07's changes to the trunk's
# code, which keep far fewer L × L tensors alive:

# %% tags=["show-output"]
print(f"PREDICTED (not measured); each card's CUDA context assumed {gpu.ASSUMED_CONTEXT_GIB} GiB; borderline = "
      f"within {gpu.BORDERLINE_GIB} GiB of the card's limit")
with pd.option_context("display.max_colwidth", None, "display.max_columns", None, "display.width", None):
    display(fit.recipe_table())

# %% tags=["show-output"]
fit.recommend(6.0, 400)

# %% [markdown]
# Every cell is a **prediction**: a fake-tensor trace of the esmfold_v1 architecture (the model run on tensors that
# have shapes but no data, its memory recorded), default recycles, plus the allocator's cache as measured on an H100,
# plus, for Quanto's recipes, an allowance taken from the seed article's readings (`fit.QUANTO_ALLOWANCE_GIB`), plus
# each card's CUDA context (assumed, printed above). A fold that fits with a margin is preferred over a
# borderline one. The same table is committed as `figures/06_recipes.csv` and shown in the README. Sections 1 and 2
# put measurements next to predictions for the folds they run.

# %% [markdown]
# ## Recap
# The longest protein per recipe on a free T4 and on a 6 GB card, from notebook 04's hardware table
# (`figures/04_max_length.csv`, predicted):

# %% tags=["show-output"]
hardware = pd.read_csv(data.repo_file("figures/04_max_length.csv")).set_index("recipe")
t4_column = next(column for column in hardware.columns if column.startswith("free T4"))
with pd.option_context("display.max_colwidth", None):
    display(hardware.loc[LADDER, [t4_column, "6 GB"]])

# %% [markdown]
# - On a T4, smaller weights + trunk chunking reach the "free T4" column above; a chunk smaller than 64 saves
#   nothing, because the triangle multiplication, the pair MLP and the recycling loop's pair tensors are not chunked.
# - Offloading the language model to CPU RAM (`fp16-offload`) takes its fp16 weights off the GPU without changing a
#   number; the "6 GB" column is how far that gets a 6 GB card.
# - `batch.fold_fasta` turns a FASTA file into PDBs and a summary CSV; bad records and out-of-memory errors are rows,
#   not crashes, and a rerun resumes. pTM must be computed per sequence, with `compute_tm` on its own block of
#   `ptm_logits`.
# - Complexes: a poly-G linker + a residue-index gap (`position_ids`), then the linker removed everywhere.
#
# ## Exercises
# 1. `fit.recommend` for your own GPU: what does an 8 GB card get for a 700-residue protein?
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
print(batch.fold_fasta(model, tokenizer, fasta, small, recipe=LABEL, token_budget=100, stop_after=6)[
    ["id", "length", "batch size"]])

# %% cellView="form" jupyter={"source_hidden": true} tags=["solution"]
# @title Solution 3 — a longer linker
longer = complexes.fold_complex(model, tokenizer, [chain, chain], linker="G" * 50)  # section 4 in one call
print("25 G:", chain_plddt, "\n50 G:", longer.chain_plddt())
del model
memory.free_memory()

# %% [markdown]
# ## Next
# [07 · A leaner folding trunk — a predicted 3,000 residues on a free T4 (advanced)](07_lean_trunk.ipynb) ([Colab](https://colab.research.google.com/github/OWNER/gpu-poor-esmfold/blob/v0.1.0/notebooks/07_lean_trunk.ipynb))
#
# ← Previous: [05 · How much accuracy does each recipe cost?](05_accuracy.ipynb) ([Colab](https://colab.research.google.com/github/OWNER/gpu-poor-esmfold/blob/v0.1.0/notebooks/05_accuracy.ipynb))
