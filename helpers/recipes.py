"""Every recipe of the series — a way of loading ESMFold — in one registry.

An entry says how the recipe loads (precision, quantization, what happens after loading), what the "will it fit?"
predictor traces for it (its activation profile), what it takes to load on a CPU, whether notebook 05 judges its
accuracy, its rank on the recommendation ladder, which tables show it and its colour in plots. Tables, ladders, the
predictor, plots and the notebooks' lists all read it: adding a recipe is one entry in `RECIPES`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

#: Activation profiles: what the predictor traces for a recipe. Quantized weights are dequantized to the
#: activations' precision for every product, so a quantized recipe has the profile of its unquantized twin.
FP32_ACTIVATIONS = "fp32 activations"
LM16_ACTIVATIONS = "16-bit LM activations"  # the language model computes in fp16 (or bf16), the rest in fp32
BF16_ACTIVATIONS = "bf16 activations"
PROFILES = (FP32_ACTIVATIONS, LM16_ACTIVATIONS, BF16_ACTIVATIONS)

#: The names `precision_of` gives torchao's quantized weights, by torchao configuration (`Recipe.torchao`, `lm_cast`).
TORCHAO_NAMES = {"int8-weight-only": "torchao-int8wo", "int8-dynamic": "torchao-int8dq"}

#: The tables a recipe can appear in (`Recipe.tables`).
WEIGHTS_TABLE = "weights"  # its exact weight bytes per stage (figures/03_recipe_weights.csv, results page)
HARDWARE_TABLE = "hardware"  # the predicted hardware table and grid (notebook 04, results page)
GPU_SWEEP = "gpu sweep"  # the measured length sweep on a GPU (notebook 04's full grid, `tools.figures measured`)
CPU_TABLE = "cpu"  # notebook 08's recipes, benchmark and agreement table


@dataclass(frozen=True)
class Recipe:
    """One way of loading ESMFold, and where the series uses it."""

    description: str
    # --- how it loads: always `EsmForProteinFolding.from_pretrained` with these settings ----------------------------
    dtype: torch.dtype = torch.float32
    fp16_esm: bool = False  # the config flag: the LM is built (and loaded) in fp16, the rest in `dtype`
    quanto: str | None = None  # optimum-quanto weights: "int8", "int4" or "float8"
    torchao: str | None = None  # torchao config: "int8-weight-only" or "int8-dynamic"
    lm_only: bool = False  # quantize only the language model
    half_lm_after_load: bool = False  # the seed's route: load fp32, then model.esm = model.esm.half()
    offload_lm: bool = False  # LM weights stay in CPU RAM; accelerate moves each layer to the GPU while it runs
    # --- after loading: the CPU routes that never hold the language model in fp32 -------------------------------
    lm_cast: str | None = None  # "bf16" (fp16 → bf16), or torchao "int8-dynamic" / "int8-weight-only" on a bf16 LM
    trunk_bf16: bool = False  # cast the fp32 trunk, structure module and heads to bf16
    lean: bool = False  # built with the lean trunk of notebook 07 (chunks sized for a CPU's caches)
    prequantized: bool = False  # reloaded from a saved Quanto checkpoint (notebook 03 § 4) instead of quantized
    # --- where the series uses it --------------------------------------------------------------------------------
    load_ram_gb: float = 0.0  # RAM a CPU load needs with the real weights (0: fits 12.7 GB); more → refused
    judged: bool = False  # notebook 05 measures its accuracy (against fp32 and against experiment)
    ladder: int | None = None  # its rank on the recommendation ladder (`fit.recommend`, `fit.check_fits`)
    tables: frozenset = frozenset()  # the tables that show it (WEIGHTS_TABLE, HARDWARE_TABLE, GPU_SWEEP, CPU_TABLE)
    colour: str | None = None  # its colour in every plot

    @property
    def quantized(self) -> bool:
        """Quantized while loading (Quanto or torchao through `from_pretrained`); `lm_cast` quantizes after."""
        return bool(self.quanto or self.torchao)

    @property
    def torchao_config(self) -> str | None:
        """The torchao configuration its weights get, at load (`torchao`) or after it (`lm_cast`), or None."""
        return self.torchao or (self.lm_cast if self.lm_cast in TORCHAO_NAMES else None)

    @property
    def needs_bf16(self) -> bool:
        """Loads in bf16: on a GPU, only where it computes in bf16 (compute capability 8.0 or newer)."""
        return self.dtype == torch.bfloat16

    @property
    def computes_bf16(self) -> bool:
        """Any of its products run in bf16 (a bf16 load, a bf16 cast, or torchao's bf16 activations)."""
        return self.needs_bf16 or self.trunk_bf16 or self.lm_cast is not None

    @property
    def precisions(self) -> tuple[str, str, bool]:
        """(language model, trunk, LM offloaded) of the loaded recipe, as `models.precision_of` reads its weights."""
        quantized = self.quanto or TORCHAO_NAMES.get(self.torchao)
        base = "bf16" if self.needs_bf16 or self.trunk_bf16 else "fp32"
        lm = quantized or ("fp16" if self.fp16_esm or self.half_lm_after_load else base)
        if self.lm_cast is not None:
            lm = "bf16" if self.lm_cast == "bf16" else TORCHAO_NAMES[self.lm_cast]
        trunk = base if self.lm_only or not quantized else quantized
        return lm, trunk, self.offload_lm

    @property
    def profile(self) -> str:
        """Which activations a fold computes: what the "will it fit?" predictor traces (`PROFILES`)."""
        if self.needs_bf16 or self.trunk_bf16:
            return BF16_ACTIVATIONS
        lm16 = self.fp16_esm or self.half_lm_after_load or self.lm_cast is not None
        return LM16_ACTIVATIONS if lm16 else FP32_ACTIVATIONS


_GPU_TABLES = frozenset({WEIGHTS_TABLE, HARDWARE_TABLE, GPU_SWEEP})

#: The recipes, one entry each, in the order tables list them. `models.recipe_of` names a loaded model by the first
#: entry whose precisions it has, so a recipe that only differs in how it loads (the seed's fp16 route, a reload)
#: comes after the one it folds like.
RECIPES = {
    "fp32": Recipe("everything fp32 (the checkpoint's fp16 LM tensors are upcast on load)", load_ram_gb=17,
                   judged=True, tables=_GPU_TABLES | {CPU_TABLE}, colour="#4C72B0"),
    "fp16": Recipe("LM loaded straight in fp16 (config fp16_esm=True), trunk fp32", fp16_esm=True, judged=True,
                   ladder=1, tables=_GPU_TABLES | {CPU_TABLE}, colour="#DD8452"),
    "fp16-seed": Recipe("the seed article's fp16 route: load fp32, then model.esm = model.esm.half()",
                        half_lm_after_load=True, tables=frozenset({WEIGHTS_TABLE}), colour="#C44E52"),
    "fp16-offload": Recipe("fp16 LM kept in CPU RAM and streamed to the GPU layer by layer (accelerate), trunk fp32 "
                           "on the GPU", fp16_esm=True, offload_lm=True, ladder=2,
                           tables=frozenset({HARDWARE_TABLE, GPU_SWEEP}), colour="#F2A65A"),
    "bf16": Recipe("everything bf16 (needs Ampere or newer: L4, A100, RTX 30/40)", dtype=torch.bfloat16,
                   tables=frozenset({WEIGHTS_TABLE}), colour="#937860"),
    "int8-lm": Recipe("Quanto int8 weights in the LM only, trunk fp32", quanto="int8", lm_only=True, ladder=3,
                      tables=_GPU_TABLES, colour="#8172B3"),
    "int8": Recipe("the seed article's int8 route: Quanto int8 weights everywhere, fp32 activations (quantized "
                   "while loading: holds fp32 weights first)", quanto="int8", load_ram_gb=24, judged=True, ladder=4,
                   tables=_GPU_TABLES | {CPU_TABLE}, colour="#55A868"),
    "float8": Recipe("Quanto float8 weights everywhere (e4m3: 4 exponent bits, 3 mantissa bits)", quanto="float8",
                     tables=_GPU_TABLES, colour="#8C8C8C"),
    "int4": Recipe("Quanto int4 weights everywhere", quanto="int4", judged=True, ladder=5, tables=_GPU_TABLES,
                   colour="#DA8BC3"),
    "torchao-int8wo": Recipe("torchao int8 weight-only", torchao="int8-weight-only", tables=_GPU_TABLES,
                             colour="#CCB974"),
    "torchao-int8dq": Recipe("torchao int8 dynamic activations + int8 weights", torchao="int8-dynamic",
                             tables=frozenset({WEIGHTS_TABLE, GPU_SWEEP}), colour="#64B5CD"),
    # --- CPU routes (notebook 08): the checkpoint's fp16 LM is never materialised in fp32 --------------------------
    "fp16-lean": Recipe("LM kept fp16 as stored (memory-mapped) + the lean fp32 trunk with cache-sized chunks: fp32 "
                        "arithmetic where the work is, for CPUs without fast bf16", fp16_esm=True, lean=True,
                        tables=frozenset({CPU_TABLE}), colour="#B07AA1"),
    "bf16-lm": Recipe("LM cast fp16 → bf16 after loading (no fp32 copy), trunk fp32", fp16_esm=True, lm_cast="bf16",
                      tables=frozenset({CPU_TABLE}), colour="#9C755F"),
    "bf16-lm-lean": Recipe("bf16 LM + the lean fp32 trunk of notebook 07", fp16_esm=True, lm_cast="bf16", lean=True,
                           tables=frozenset({CPU_TABLE}), colour="#D4A6C8"),
    "bf16-lean": Recipe("everything bf16 (LM cast from fp16, trunk from fp32, after a memory-mapped load) + lean "
                        "trunk", fp16_esm=True, lm_cast="bf16", trunk_bf16=True, lean=True,
                        tables=frozenset({CPU_TABLE}), colour="#79706E"),
    "int8dq-lm-lean": Recipe("torchao int8 dynamic LM (from the fp16 checkpoint via bf16) + lean fp32 trunk",
                             fp16_esm=True, lm_cast="int8-dynamic", lean=True, tables=frozenset({CPU_TABLE}),
                             colour="#59A14F"),
    "int8wo-lm-lean": Recipe("torchao int8 weight-only LM (from the fp16 checkpoint via bf16) + lean fp32 trunk",
                             fp16_esm=True, lm_cast="int8-weight-only", lean=True, tables=frozenset({CPU_TABLE}),
                             colour="#EDC948"),
    "int8-reload": Recipe("the int8 model reloaded from a saved pre-quantized checkpoint (made once where RAM "
                          "allows: `cpu.prequantize`)", quanto="int8", prequantized=True,
                          tables=frozenset({CPU_TABLE}), colour="#2E7D32"),
}


def get(name: str) -> Recipe:
    """The recipe called `name`; a clear error naming the recipes there are otherwise."""
    if name not in RECIPES:
        raise ValueError(f"Unknown recipe {name!r}; choose one of {', '.join(RECIPES)}")
    return RECIPES[name]


def shown_in(table: str) -> list[str]:
    """The recipes a table shows, in registry order."""
    return [name for name, recipe in RECIPES.items() if table in recipe.tables]


def ladder() -> list[str]:
    """The recommendation ladder: most accurate and fastest first (`Recipe.ladder`)."""
    ranked = [(recipe.ladder, name) for name, recipe in RECIPES.items() if recipe.ladder is not None]
    return [name for _, name in sorted(ranked)]


def judged() -> list[str]:
    """The recipes whose accuracy notebook 05 measures."""
    return [name for name, recipe in RECIPES.items() if recipe.judged]


def matching(lm: str, trunk: str, offloaded: bool = False, lean: bool | None = None,
             table: str | None = None) -> list[str]:
    """The recipes that load with these precisions (`Recipe.precisions`), in registry order; `lean` keeps those built
    with (True) or without (False) the lean trunk, `table` those a table shows."""
    return [name for name, recipe in RECIPES.items() if recipe.precisions == (lm, trunk, offloaded)
            and (lean is None or recipe.lean == lean) and (table is None or table in recipe.tables)]


def folds_as(name: str) -> str:
    """The recipe a recipe's folds are the same as: the first with its precisions (the seed's fp16 route folds as
    'fp16', `int8-reload` as 'int8'); itself when none comes before it."""
    return matching(*get(name).precisions)[0]


def accuracy_judged(name: str) -> bool:
    """Whether notebook 05 measures the accuracy of what this recipe computes: its own, or that of the recipe it
    folds as (`folds_as`: `fp16-lean` computes as `fp16`)."""
    return RECIPES[folds_as(name)].judged


def colour(name: str) -> str | None:
    """A recipe's colour; a table label such as "fp16 + lean trunk" takes its recipe's; None for anything else."""
    recipe = RECIPES.get(str(name).split(" + ")[0])
    return recipe.colour if recipe else None
