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
# # 02 · Half the language model: fp16
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/OWNER/gpu-poor-esmfold/blob/v0.1.0/notebooks/02_fp16.ipynb)
#
# **What you will learn**
# - the seed article's step — load fp32, then `model.esm = model.esm.half()` — and the hidden cost it pays at load
#   time;
# - a better route that never holds the language model in fp32 (the `fp16_esm` configuration flag), and what each
#   route does to peak GPU memory *and* CPU RAM while loading;
# - why the folding trunk stays in fp32 on a T4, and a bf16 recipe for newer GPUs;
# - how to measure agreement between two predictions of the same protein: TM-score, Cα-RMSD, lDDT-Cα, ΔpLDDT, ΔpTM.
#
# **Estimated run time on a free Colab T4:** about 15 minutes after the weights are cached (three model loads and
# four folds; *an estimate: no T4 was available to measure it*).

# %% [markdown]
# ## Setup

# %%
import importlib.util
import subprocess
import sys

IS_COLAB = "google.colab" in sys.modules
REPO = "https://github.com/OWNER/gpu-poor-esmfold"  # stamped by `python -m helpers.notebook stamp`
REF = "v0.1.0"
if IS_COLAB and importlib.util.find_spec("helpers") is None:  # idempotent: a second run installs nothing
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "biotite==1.6.0"], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", f"git+{REPO}@{REF}"], check=True)
elif importlib.util.find_spec("helpers") is None:
    sys.path.insert(0, "..")  # running from a clone without `pip install -e .`

from helpers import benchmark, data, memory, models, notebook, plots

DEVICE = notebook.start()

# %% [markdown]
# ## 1 · The reference: fp32
#
# Every saving is judged against the fp32 prediction of the same protein, the seed's 1CA2 (259 residues), folded
# with the same settings as in notebook 01 (trunk chunk size 64, default recycles). `benchmark.load_and_fold` does
# what notebook 01 did step by step: load with `memory.measure`, fold with `memory.measure`, then delete the model
# and free the memory, so that the next variant starts from an empty GPU. It returns one row of measurements and
# the prediction.

# %%
import pandas as pd

seed = data.seed_sequence()
rows, results = {}, {}
rows["fp32"], results["fp32"] = benchmark.load_and_fold("fp32", seed, DEVICE)
pd.Series(rows["fp32"])

# %% [markdown]
# ## 2 · The seed's route: load fp32, then halve the language model
#
# ```python
# model = EsmForProteinFolding.from_pretrained("facebook/esmfold_v1", dtype=torch.float32, device_map="cuda")
# model.esm = model.esm.half()
# ```
#
# After the `.half()`, the 2.83 B language-model parameters take 2 bytes each instead of 4: 5.3 GiB saved. But
# during loading the whole fp32 model was on the GPU — the load-time peak is the fp32 one. On a T4 that works (just),
# but on a 12 GB card it fails before `.half()` is ever reached.

# %%
rows["fp16-seed"], results["fp16-seed"] = benchmark.load_and_fold("fp16-seed", seed, DEVICE)

# %% [markdown]
# ## 3 · The better route: load the language model in fp16 directly
#
# The checkpoint on the hub *already* stores the language model in fp16 (that is why it is 8.44 GB, not 14 GB).
# We only need `from_pretrained` to keep it that way. Three candidate routes, checked on transformers 5.23:
#
# | route | result |
# |---|---|
# | `dtype="auto"` | everything fp32: the config's `torch_dtype` is float32, so the fp16 tensors are upcast |
# | `dtype={"esm": torch.float16, "": torch.float32}` (a per-module dict) | everything fp32: transformers warns that per-module dtypes are deprecated and forces float32 |
# | config flag `esmfold_config.fp16_esm=True` with `dtype=torch.float32` | **language model fp16, trunk fp32** ✔ |
#
# `fp16_esm` is ESMFold's own switch: when it is set, `EsmForProteinFolding.__init__` calls `self.esm.half()` on
# the freshly built (still empty) model, so the loader then fills fp16 parameters with the checkpoint's fp16 tensors
# — nothing is ever materialised in fp32. The original fair-esm ESMFold runs its language model in fp16 by
# default, and the hub's `config.json` had `fp16_esm: true` when it was uploaded; it was switched to `false` on
# 2022-11-02. **No source we found explains why** (the commit has no explanation we could find); the flag still
# works. The helpers set it explicitly for every variant, because the config class's own default is `True` while
# the hub's config says `False`.

# %%
rows["fp16"], results["fp16"] = benchmark.load_and_fold("fp16", seed, DEVICE)

# %% [markdown]
# ## 4 · Why the folding trunk stays fp32 on a T4
#
# - **fp16's range is small** (largest value 65,504). The trunk's pair representation and its layer norms see
#   larger intermediate values; a whole-model fp16 cast produces NaNs
#   ([transformers issue #47470](https://github.com/huggingface/transformers/issues/47470)). The Hugging Face code
#   only protects its sensitive operations when it runs under fp16 *autocast*.
# - **bf16** has fp32's range and would be the natural choice, but the T4 (Turing, 2018) has no bf16 arithmetic.
# - **TF32**, the other cheap trick of newer GPUs, does not exist on a T4 either.
#
# So on a T4 the trunk keeps its 0.69 B parameters in fp32 (2.6 GiB). Exercise 2 tries the trunk in fp16 anyway:
# whether its accuracy survives can only be judged with the real weights.
#
# ### bf16 for readers with newer GPUs
# On Ampere and newer (L4, A100, RTX 30/40 series) the whole model can run in bf16: 6.6 GiB of weights. The cell
# below runs it only where bf16 is supported (on a T4 it says so and skips). Its accuracy, too, can only be judged
# with the real weights — the agreement table below shows it.

# %%
import torch

bf16_ok = (DEVICE == "cpu") or torch.cuda.is_bf16_supported()
if bf16_ok:
    rows["bf16"], results["bf16"] = benchmark.load_and_fold("bf16", seed, DEVICE)
else:
    print(f"{notebook.device_name(DEVICE)} has no bf16 arithmetic: skipping the bf16 recipe (it would need an L4/A100/RTX 30+)")

# %% [markdown]
# ## 5 · Did the prediction change? Measuring agreement
#
# Two predictions of the same sequence can be compared residue by residue:
# - **TM-score** (0–1; 1 = identical fold): the fraction of residues that superpose closely, weighted so that
#   small distances count most; scale-independent of length. Here the *sequence-dependent* version: residue i is
#   paired with residue i, and the superposition is searched to maximise the score, as the TM-score program does.
# - **Cα-RMSD** (Å) after the best least-squares superposition: sensitive to a few far-off residues (e.g. a floppy
#   tail).
# - **lDDT-Cα** (0–1): compares all local inter-atomic distances, needs no superposition.
# - **ΔpLDDT** and **ΔpTM**: how the model's *confidence* moved.
#
# The helpers build these on [biotite](https://www.biotite-python.org/) (superposition, TM-score formula, lDDT).

# %%
agreement = benchmark.agreement_table(results, reference="fp32")
agreement

# %%
plots.plot_plddt_differences(results, reference="fp32", provenance=notebook.provenance_line(DEVICE));

# %% [markdown]
# ## 6 · The whole picture: memory, time, agreement
#
# Weights are computed from the loaded tensors (exact). *Load peak* is the highest GPU memory during
# `from_pretrained` — where the seed's route pays for its fp32 detour; *fold peak* is the highest during one fold;
# *device used* is what `nvidia-smi` would show after the fold (CUDA context included); CPU RAM is the process's
# peak resident memory during loading (Colab gives you 12.7 GB).

# %%
table = pd.DataFrame(rows).T.set_index("variant")
columns = [c for c in ["weights (GiB)", "load peak allocated (GiB)", "load peak RSS, CPU (GiB)",
                       "fold peak allocated (GiB)", "fold peak reserved (GiB)", "fold device used, nvidia-smi (GiB)",
                       "fold seconds", "mean pLDDT (Cα)", "pTM"] if c in table.columns]
summary = table[columns].join(agreement[["TM-score vs reference", "Cα-RMSD vs reference (Å)"]])
summary

# %%
bar_columns = [c for c in ["weights (GiB)", "load peak allocated (GiB)", "fold peak allocated (GiB)",
                           "load peak RSS, CPU (GiB)", "fold seconds"] if c in table.columns]
plots.plot_variant_bars(table, bar_columns, title="fp32 vs fp16 language model (1CA2, 259 aa, chunk 64)",
                        provenance=notebook.provenance_line(DEVICE),
                        budget_gib=memory.T4_BUDGET_GIB if DEVICE.startswith("cuda") else None);

# %% [markdown]
# **What to look for** (with the real weights on a GPU): the fp16 routes' weights shrink by ≈ 5.3 GiB; the seed's
# route still peaks at the fp32 size while loading, the `fp16_esm` route does not; the fold peak drops by about the
# weights saving; the time barely changes (the trunk, which does most of the work, is still fp32); and the two fp16
# routes give *identical* predictions — they compute the same thing. Agreement with fp32 should be very close to
# perfect (TM-score ≈ 1): fair-esm's ESMFold runs its language model in fp16 by default.
#
# *Measured on CPU from stand-ins only: no GPU was available to the authors. Run this notebook on a GPU to see real
# numbers; the README lists measured ones when they exist.*

# %% [markdown]
# ## Recap
# - Halving the 2.83 B-parameter language model saves ≈ 5.3 GiB — the cheapest step of the series.
# - Load it in fp16 *directly* (`fp16_esm=True`, `dtype=torch.float32`); `model.esm.half()` after an fp32 load pays
#   the fp32 peak first. `dtype="auto"` and per-module dtype dicts both end up fp32 in transformers 5.x.
# - The trunk stays fp32 on a T4 (fp16 overflows; no bf16, no TF32). On bf16 GPUs, a full bf16 model is 6.6 GiB.
# - Compare predictions with TM-score, Cα-RMSD, lDDT-Cα, ΔpLDDT and ΔpTM — `benchmark.agreement_table` does all five.
#
# ## Exercises
# 1. Check that the two fp16 routes compute exactly the same prediction. Why must they?
# 2. Put the trunk in fp16 too (`model.half()` after loading the `fp16` variant) and fold 1CA2. What happens to the
#    coordinates and pLDDT? (With the real weights, expect NaNs or nonsense; with a stand-in you learn nothing about
#    accuracy.)
# 3. How many bytes per parameter does the `fp16` model use on average, and why is it not 2?
#
# Solutions follow (hidden in Colab and Jupyter; click to expand).

# %% tags=["solution"] jupyter={"source_hidden": true} cellView="form"
# @title Solution 1 — the two fp16 routes agree exactly
import numpy as np

same = np.array_equal(results["fp16"].positions, results["fp16-seed"].positions)
print("identical coordinates:", same, "| identical pLDDT:", np.array_equal(results["fp16"].plddt, results["fp16-seed"].plddt))
print("Both hold the same fp16 language-model weights (the checkpoint's) and the same fp32 trunk, so every operation matches.")

# %% tags=["solution"] jupyter={"source_hidden": true} cellView="form"
# @title Solution 2 — the trunk in fp16 (accuracy needs the real weights)
from helpers import folding

model, tokenizer = models.load_model("fp16", device=DEVICE, chunk_size=64)
model.half()
with memory.measure("fold, whole model fp16", device=DEVICE) as half_record:
    half = folding.fold(model, tokenizer, seed)
print(half_record["status"], "| finite coordinates:", bool(np.isfinite(half.positions).all()),
      "| mean pLDDT:", round(half.mean_plddt_ca, 1))
del model
memory.free_memory()

# %% tags=["solution"] jupyter={"source_hidden": true} cellView="form"
# @title Solution 3 — average bytes per parameter
counts = models.component_parameters(models.meta_model())
print(f"{table.loc['fp16', 'weights (GiB)'] * memory.GIB / counts['total']:.2f} bytes per parameter: the LM (80 % of "
      "the parameters) uses 2, the trunk and heads (20 %) still use 4.")

# %% [markdown]
# ## Next
# [03 · Quanto int8 and beyond](03_quantization.ipynb) — store weights in 8 (or 4) bits, and learn what that costs in
# time.
#
# ← Previous: [01 · The fp32 baseline](01_fp32_baseline.ipynb)
