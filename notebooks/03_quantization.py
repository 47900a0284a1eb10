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
# # 03 · Quanto int8 and beyond: 8-bit, 4-bit and float8 weights
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/OWNER/gpu-poor-esmfold/blob/v0.1.0/notebooks/03_quantization.ipynb)
#
# **What you will learn**
# - the seed article's int8 recipe — `QuantoConfig(weights="int8")` in `from_pretrained` — and what it really saves;
# - four more recipes measured the same way: int8 in the language model only, int4, float8, and torchao's int8;
# - why int8 is *slower* than fp16 on most GPUs, and where the time goes;
# - how to save a quantized model once and reload it without re-quantizing (and without filling Colab's RAM);
# - how to check that a layer is really quantized.
#
# **Estimated run time on a free Colab T4:** about 25 minutes after the weights are cached (six quantize-on-load
# passes over 8.4 GB, seven folds; *an estimate: no T4 was available to measure it*).

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
    packages = ["optimum-quanto==0.2.7", "biotite==1.6.0"]
    if importlib.util.find_spec("torchao") is None:
        packages.append("torchao==0.18.0")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", *packages], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", f"git+{REPO}@{REF}"], check=True)
elif importlib.util.find_spec("helpers") is None:
    sys.path.insert(0, "..")  # running from a clone without `pip install -e .`

from helpers import benchmark, data, folding, memory, models, notebook, plots, quantization

DEVICE = notebook.start()

# %% [markdown]
# ## 1 · How weight quantization works, in one paragraph
#
# An int8 weight stores each number as an 8-bit integer plus one floating-point *scale* per output row:
# `w ≈ scale × q`, with q in −127…127. That is 1 byte per weight instead of 4 (fp32) or 2 (fp16), at the cost of
# rounding every weight to one of 255 levels of its row. int4 keeps 16 levels (in groups of 128 weights, each with
# its own scale and shift); float8 (e4m3) keeps 8-bit *floating-point* numbers, which follow the weights'
# bell-shaped distribution more closely. Quanto quantizes only the `Linear` layers' weights — they hold almost all
# of ESMFold's parameters — and leaves embeddings, layer norms and activations in their original precision.
#
# The reference, as in notebook 02, is the fp32 prediction of 1CA2 (259 residues, trunk chunk size 64).

# %%
import pandas as pd

seed = data.seed_sequence()
rows, results = {}, {}
rows["fp32"], results["fp32"] = benchmark.load_and_fold("fp32", seed, DEVICE)

# %% [markdown]
# ## 2 · The seed's recipe: int8 weights everywhere
#
# ```python
# from transformers import EsmForProteinFolding, QuantoConfig
# model = EsmForProteinFolding.from_pretrained("facebook/esmfold_v1", dtype=torch.float32, device_map="cuda",
#                                              quantization_config=QuantoConfig(weights="int8"))
# ```
#
# Each weight is read from the checkpoint, quantized, and placed on the GPU; the full-precision copy is dropped.

# %%
rows["int8"], results["int8"] = benchmark.load_and_fold("int8", seed, DEVICE)
pd.Series(rows["int8"])

# %% [markdown]
# Is it really quantized? Count the `Linear` layers by how their weights are stored, and look inside one:

# %%
model, tokenizer = models.load_model("int8", device=DEVICE, chunk_size=64)
print(dict(quantization.quantized_linears(model)))
print(quantization.weight_storage(model.esm.encoder.layer[0].attention.self.query))

# %% [markdown]
# Every `Linear` weight is a `WeightQBytesTensor` whose data is `torch.int8` — about a quarter of its fp32 bytes
# (plus one fp32 scale per row). While the model is loaded, let us see **where the time goes** in one fold:

# %%
int8_stages = benchmark.stage_times(model, tokenizer, seed)
del model
memory.free_memory()
fp32_model, fp32_tokenizer = models.load_model("fp32", device=DEVICE, chunk_size=64)
fp32_stages = benchmark.stage_times(fp32_model, fp32_tokenizer, seed)
del fp32_model
memory.free_memory()
stages = pd.DataFrame({"fp32": fp32_stages, "int8": int8_stages})
stages

# %% [markdown]
# ## 3 · Why int8 is slower, not faster
#
# Quantization here saves *memory*, not time. With fp32 activations, Quanto multiplies by an int8 weight by first
# turning it back into floating point (`scale × q`, a full-size temporary matrix) and then running an ordinary
# floating-point matrix multiply — on every call, for every layer, in every one of the 4 trunk passes. The seed saw
# this too (≈ 1.7 s vs ≈ 1.0 s at short lengths). Fast paths exist only on newer GPUs: Quanto's int4 (AWQ) and float8
# (Marlin) kernels need compute capability ≥ 8.0 and fp16/bf16 activations; int8 × int8 `torch._int_mm` needs
# quantized activations too. A T4 is compute capability 7.5, and the trunk's activations are fp32, so every recipe
# below runs through the dequantize-then-multiply path on a T4. At long lengths the difference shrinks: the trunk's
# work on the L × L pair representation (triangle updates and attention, which are not `Linear` weight multiplies
# of a large matrix) dominates, and that work is the same in every recipe.

# %% [markdown]
# ## 4 · More recipes, measured the same way
#
# | variant | what is quantized |
# |---|---|
# | `int8-lm` | only the 2.83 B-parameter language model (it runs once per fold); the trunk, which runs 4 times, stays fp32 |
# | `int4` | every `Linear` weight, 4 bits in groups of 128 |
# | `float8` | every `Linear` weight as float8 e4m3. Only Ada/Hopper GPUs (L4, RTX 40, H100) have float8 arithmetic; elsewhere — a T4, an A100 — it is storage only |

# %%
for variant in ["int8-lm", "int4", "float8"]:
    rows[variant], results[variant] = benchmark.load_and_fold(variant, seed, DEVICE)

# %% [markdown]
# ## 5 · torchao: the actively maintained alternative
#
# Quanto's README has said it is in maintenance mode since late 2025; its authors point to
# [torchao](https://github.com/pytorch/ao), PyTorch's own quantization library. The same `from_pretrained` call
# takes a `TorchAoConfig`:
#
# ```python
# from torchao.quantization import Int8WeightOnlyConfig, Int8DynamicActivationInt8WeightConfig
# from transformers import TorchAoConfig
# model = EsmForProteinFolding.from_pretrained(..., quantization_config=TorchAoConfig(Int8WeightOnlyConfig()))
# ```
#
# `Int8WeightOnlyConfig` is the counterpart of Quanto's int8. `Int8DynamicActivationInt8WeightConfig` also
# quantizes each layer's *input* on the fly, so that the multiply itself runs in int8 — where the GPU and torch
# have an int8 kernel for it. The series keeps Quanto as its main path (it is the seed's), but this is where to go
# next.

# %%
for variant in ["torchao-int8wo", "torchao-int8dq"]:
    rows[variant], results[variant] = benchmark.load_and_fold(variant, seed, DEVICE)

# %% [markdown]
# ## 6 · All recipes side by side

# %%
table = pd.DataFrame(rows).T.set_index("variant")
agreement = benchmark.agreement_table(results, reference="fp32")
columns = [c for c in ["weights (GiB)", "load peak allocated (GiB)", "load peak RSS, CPU (GiB)", "load seconds",
                       "fold peak allocated (GiB)", "fold device used, nvidia-smi (GiB)", "fold seconds"]
           if c in table.columns]
summary = table[columns].join(agreement[["TM-score vs reference", "Cα-RMSD vs reference (Å)", "ΔpLDDT mean (Cα)", "ΔpTM"]])
summary

# %%
bar_columns = [c for c in ["weights (GiB)", "fold peak allocated (GiB)", "fold seconds", "load seconds"] if c in table.columns]
plots.plot_variant_bars(table, bar_columns, title="Quantization recipes (1CA2, 259 aa, chunk 64)",
                        provenance=notebook.provenance_line(DEVICE),
                        budget_gib=memory.T4_BUDGET_GIB if DEVICE.startswith("cuda") else None);

# %% [markdown]
# The weights column is exact and device-independent: for the real architecture it is listed in the README
# (computed from each variant loaded on a CPU). Peak memory and time need a GPU run — and agreement needs the real
# weights.

# %% [markdown]
# ## 7 · Save once, reload fast
#
# Quantize-on-load reads all 8.4 GB and quantizes every weight *each time* you load. Quanto models cannot go through
# `save_pretrained` (it raises “not serializable”), but their state dict can be saved with a *quantization map*
# that says which layer holds which type. Reloading builds the model on the `meta` device (no memory), turns the
# mapped layers into quantized ones, and fills them straight from the saved int8 tensors — no full-precision weight
# is ever materialised. On Colab, save to Google Drive to keep the file across sessions.

# %%
from pathlib import Path

saved = Path("outputs") / "esmfold-int8"
with memory.measure("quantize on load", device=DEVICE) as on_load:
    model, tokenizer = models.load_model("int8", device=DEVICE, chunk_size=64)
quantization.save_quantized(model, saved)
before = folding.fold(model, tokenizer, seed)
del model
memory.free_memory()
with memory.measure("reload pre-quantized", device=DEVICE) as reload:
    model = quantization.load_quantized(saved, device=DEVICE, chunk_size=64)
after = folding.fold(model, tokenizer, seed)
del model
memory.free_memory()
print("identical prediction after reload:", (before.positions == after.positions).all())
size_gib = sum(f.stat().st_size for f in saved.iterdir()) / memory.GIB
pd.DataFrame([on_load, reload]).assign(**{"file size (GiB)": size_gib})

# %% [markdown]
# ## 8 · Every recipe is a loader option
#
# All recipes of notebooks 01–03 are names for `models.load_model(variant, ...)`, so notebooks 04–06 can sweep them:

# %%
pd.DataFrame({name: {"recipe": r.description} for name, r in models.VARIANTS.items()}).T

# %% [markdown]
# ## Recap
# - `QuantoConfig(weights="int8")` stores `Linear` weights in 1 byte + a per-row scale: the model's weights drop to
#   about a quarter of fp32. int4 halves that again; float8 is the same size as int8.
# - Quantization saves memory, not time: without fast kernels (T4: none) each layer dequantizes its weight before
#   every multiply, so int8 is slower than fp16.
# - `int8-lm` quantizes only the language model, which runs once per fold; the trunk stays fp32.
# - Quanto is in maintenance mode; torchao's `TorchAoConfig` goes through the same `from_pretrained` call.
# - Save a Quanto model as state dict + quantization map and reload it with `requantize` on a meta-device model:
#   bit-identical predictions, no re-quantization.
#
# ## Exercises
# 1. How many bytes does the int8 model spend on *scales*? (Hint: `quantization.weight_storage` of every `Linear`.)
# 2. Quantize the language model in int4 but keep the trunk in fp32. Which `Recipe` fields do you need?
# 3. Fold 1CA2 with `int8` and with `fp16` (notebook 02) and compare both to fp32. Which recipe would you use on a
#    T4 for a 259-residue protein, and why?
#
# Solutions follow (hidden in Colab and Jupyter; click to expand).

# %% tags=["solution"] jupyter={"source_hidden": true} cellView="form"
# @title Solution 1 — bytes spent on scales
import torch

model, tokenizer = models.load_model("int8", device=DEVICE, chunk_size=64)
linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
storage = [quantization.weight_storage(m) for m in linears]
data_bytes = sum(m.weight.numel() for m in linears)  # one byte per int8 weight
total = sum(s["bytes"] for s in storage)
print(f"{len(linears)} Linear layers: {data_bytes / memory.GIB:.3f} GiB of int8 data, "
      f"{(total - data_bytes) / memory.GIB:.4f} GiB of scales")
del model
memory.free_memory()

# %% tags=["solution"] jupyter={"source_hidden": true} cellView="form"
# @title Solution 2 — int4 language model, fp32 trunk
models.VARIANTS["int4-lm"] = models.Recipe("Quanto int4 weights in the LM only, trunk fp32", quanto="int4", lm_only=True)
rows["int4-lm"], results["int4-lm"] = benchmark.load_and_fold("int4-lm", seed, DEVICE)
print({k: rows["int4-lm"][k] for k in ["weights (GiB)", "fold seconds"]})

# %% tags=["solution"] jupyter={"source_hidden": true} cellView="form"
# @title Solution 3 — int8 or fp16 on a T4?
rows["fp16"], results["fp16"] = benchmark.load_and_fold("fp16", seed, DEVICE)
print(benchmark.agreement_table({k: results[k] for k in ["fp32", "fp16", "int8"]}))
fp16_gib, int8_gib = rows["fp16"]["weights (GiB)"], rows["int8"]["weights (GiB)"]
print(f"fp16 ({fp16_gib:.2f} GiB of weights) leaves room for a 259-residue fold on a T4 and runs at about fp32 speed; "
      f"int8 saves another {fp16_gib - int8_gib:.2f} GiB but is slower. Use int8 when the *length* needs the room — "
      "notebook 04 shows where that is.")

# %% [markdown]
# ## Next
# [04 · Memory and time against length — will it fit?](04_memory_vs_length.ipynb) — how memory and time grow with the
# protein's length, where a T4 runs out for each recipe, and how to predict it before downloading anything.
#
# ← Previous: [02 · Half the language model: fp16](02_fp16.ipynb)
