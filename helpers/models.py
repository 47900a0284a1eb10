"""Load ESMFold — real weights or a stand-in — as (model, tokenizer) through `EsmForProteinFolding.from_pretrained`."""

from __future__ import annotations

import copy
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from helpers import data, gpu, lean

#: The real model on the Hugging Face hub.
REAL_MODEL_ID = "facebook/esmfold_v1"
#: Environment variable that picks the weights: a hub id or local path (default: the real model), `random-full`, or `tiny`.
WEIGHTS_ENV = "ESMFOLD_WEIGHTS"
#: Stand-ins built locally from the real architecture, with random weights.
STAND_INS = ("tiny", "random-full")
#: esmfold_v1 tokenizer vocabulary: AlphaFold residue order, then special tokens (token id = AlphaFold residue index).
AF2_VOCAB = list("ARNDCQEGHILKMFPSTWYV") + ["X", "<pad>", "<mask>", "<cls>", "<sep>", "<eos>"]

#: Every module outside the ESM-2 language model (kept out of quantization by the `*-lm` recipes).
NON_LM_MODULES = ["trunk", "esm_s_mlp", "embedding", "distogram_head", "ptm_head", "lm_head", "lddt_head"]


@dataclass(frozen=True)
class Recipe:
    """How a recipe reaches its precision: a dtype, optional fp16 LM, optional quantization, optional post-step."""

    description: str
    dtype: torch.dtype = torch.float32
    fp16_esm: bool = False  # the config flag: the LM is built (and loaded) in fp16, the rest in `dtype`
    quanto: str | None = None  # optimum-quanto weights: "int8", "int4" or "float8"
    torchao: str | None = None  # torchao config: "int8-weight-only" or "int8-dynamic"
    lm_only: bool = False  # quantize only the language model
    half_lm_after_load: bool = False  # the seed's route: load fp32, then model.esm = model.esm.half()
    needs_bf16: bool = False
    offload_lm: bool = False  # LM weights stay in CPU RAM; accelerate moves each layer to the GPU while it runs
    colour: str | None = None  # its colour in every plot

    @property
    def quantized(self) -> bool:
        return bool(self.quanto or self.torchao)

    @property
    def profile(self) -> str:
        """Which activations a fold computes (what the "will it fit?" predictor traces): 'fp32', 'fp16-lm' or 'bf16'.
        Quantized weights are dequantized to fp32 for every product, so their activations are fp32's."""
        if self.dtype == torch.bfloat16:
            return "bf16"
        return "fp16-lm" if (self.fp16_esm or self.half_lm_after_load) else "fp32"


#: The recipes, one entry each: how it loads (every one through `EsmForProteinFolding.from_pretrained`), and from that
#: its activation profile for the predictor (`Recipe.profile`) and its colour in plots. Adding a recipe is one entry.
RECIPES = {
    "fp32": Recipe("everything fp32 (the checkpoint's fp16 LM tensors are upcast on load)", colour="#4C72B0"),
    "fp16-seed": Recipe("the seed's route: load fp32, then model.esm = model.esm.half()", half_lm_after_load=True,
                        colour="#C44E52"),
    "fp16": Recipe("LM loaded straight in fp16 (config fp16_esm=True), trunk fp32", fp16_esm=True, colour="#DD8452"),
    "fp16-offload": Recipe("fp16 LM kept in CPU RAM and streamed to the GPU layer by layer (accelerate), trunk fp32 "
                           "on the GPU", fp16_esm=True, offload_lm=True, colour="#F2A65A"),
    "bf16": Recipe("everything bf16 (needs Ampere or newer: L4, A100, RTX 30/40)", dtype=torch.bfloat16, needs_bf16=True,
                   colour="#937860"),
    "int8": Recipe("the seed's route: Quanto int8 weights everywhere, fp32 activations", quanto="int8", colour="#55A868"),
    "int8-lm": Recipe("Quanto int8 weights in the LM only, trunk fp32", quanto="int8", lm_only=True, colour="#8172B3"),
    "int4": Recipe("Quanto int4 weights everywhere", quanto="int4", colour="#DA8BC3"),
    "float8": Recipe("Quanto float8 (e4m3) weights everywhere", quanto="float8", colour="#8C8C8C"),
    "torchao-int8wo": Recipe("torchao int8 weight-only", torchao="int8-weight-only", colour="#CCB974"),
    "torchao-int8dq": Recipe("torchao int8 dynamic activations + int8 weights", torchao="int8-dynamic",
                             colour="#64B5CD"),
}


def _quantization_config(recipe: Recipe):
    """The transformers quantization config of a recipe, or None."""
    skip = NON_LM_MODULES if recipe.lm_only else None
    if recipe.quanto:
        from transformers import QuantoConfig

        return QuantoConfig(weights=recipe.quanto, modules_to_not_convert=skip)
    if recipe.torchao:
        from torchao.quantization import Int8DynamicActivationInt8WeightConfig, Int8WeightOnlyConfig
        from transformers import TorchAoConfig

        config = {"int8-weight-only": Int8WeightOnlyConfig, "int8-dynamic": Int8DynamicActivationInt8WeightConfig}
        return TorchAoConfig(config[recipe.torchao](), modules_to_not_convert=skip)
    return None


# Bump when build_stand_in changes what it writes (cached stand-ins are then rebuilt).
_BUILDER_VERSION = 1

# Overrides that shrink the real configuration to a few hundred thousand parameters (same classes, same code path).
_TINY = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "esmfold_config": {
        "lddt_head_hid_dim": 32,
        "trunk": {
            "num_blocks": 2,
            "sequence_state_dim": 64,
            "pairwise_state_dim": 32,
            "sequence_head_width": 16,
            "pairwise_head_width": 16,
            "structure_module": {
                "sequence_dim": 64,
                "pairwise_dim": 32,
                "ipa_dim": 8,
                "resnet_dim": 32,
                "num_heads_ipa": 4,
                "num_qk_points": 4,
                "num_v_points": 4,
                "num_blocks": 2,
            },
        },
    },
}


def weights_source(source: str | None = None) -> str:
    """The weights to use: `source` if given, else `$ESMFOLD_WEIGHTS`, else the real `facebook/esmfold_v1`."""
    return source or os.environ.get(WEIGHTS_ENV) or REAL_MODEL_ID


def is_stand_in(source: str | None = None) -> bool:
    """True when the weights are a random-weight stand-in (structures and accuracy numbers are meaningless)."""
    return weights_source(source) in STAND_INS


def _merge(base: dict, overrides: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        merged[key] = _merge(merged.get(key, {}), value) if isinstance(value, dict) else value
    return merged


def config_dict(kind: str = "random-full") -> dict:
    """The esmfold_v1 configuration (from shared data or the hub), shrunk for `tiny`."""
    full = json.loads(data.fetch("esmfold_v1/config.json").read_text())
    if kind == "random-full":
        return full
    if kind == "tiny":
        return _merge(full, _TINY)
    raise ValueError(f"Unknown stand-in {kind!r}; choose one of {STAND_INS}")


def _write_tokenizer(folder: Path) -> None:
    from transformers import EsmTokenizer

    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(AF2_VOCAB) + "\n")
    EsmTokenizer(vocab_file=str(vocab)).save_pretrained(folder)


def _own_tensors(module: torch.nn.Module) -> list:
    return list(module.named_parameters(recurse=False)) + list(module.named_buffers(recurse=False))


def _random_shards(model: torch.nn.Module, max_shard_bytes: int):
    """Yield {name: tensor} shards of random weights, materialising one module at a time (LM fp16, rest fp32)."""
    shard, size = {}, 0
    persistent = set(model.state_dict().keys())
    for module_name, module in model.named_modules():
        if not _own_tensors(module):
            continue
        module.to_empty(device="cpu", recurse=False)
        with torch.no_grad():
            for _, tensor in _own_tensors(module):
                if tensor.is_floating_point():
                    tensor.normal_(0.0, 0.02)
                else:
                    tensor.zero_()
            model._init_weights(module)
        for name, tensor in _own_tensors(module):
            full_name = f"{module_name}.{name}" if module_name else name
            if full_name not in persistent:
                continue
            if tensor.is_floating_point():
                dtype = torch.float16 if full_name.startswith("esm.") else torch.float32
                tensor = tensor.detach().to(dtype)
            shard[full_name] = tensor.detach().clone().contiguous()
            size += tensor.numel() * tensor.element_size()
        module.to("meta")
        if size >= max_shard_bytes:
            yield shard
            shard, size = {}, 0
    if shard:
        yield shard


def build_stand_in(kind: str, folder: str | os.PathLike, seed: int = 0, max_shard_bytes: int = 2_000_000_000) -> Path:
    """Write a random-weight esmfold checkpoint (+ tokenizer) shard by shard, never holding the whole model in RAM."""
    from safetensors.torch import save_file
    from transformers import EsmConfig, EsmForProteinFolding

    folder = Path(folder)
    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    config = EsmConfig(**config_dict(kind))
    torch.manual_seed(seed)
    with torch.device("meta"):
        model = EsmForProteinFolding(config)
    index, total = {}, 0
    for i, shard in enumerate(_random_shards(model, max_shard_bytes)):
        name = f"model-{i + 1:05d}.safetensors"
        save_file(shard, tmp / name, metadata={"format": "pt"})
        for key, tensor in shard.items():
            index[key] = name
            total += tensor.numel() * tensor.element_size()
        del shard
    (tmp / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": index}, indent=1)
    )
    config.save_pretrained(tmp)
    _write_tokenizer(tmp)
    (tmp / "STAND_IN.txt").write_text(
        f"Random-weight stand-in '{kind}' of facebook/esmfold_v1 (seed {seed}). Structures are meaningless.\n"
    )
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return folder


def load_config(source: str | None = None):
    """The model configuration alone (a few kB): from the hub/path, or the stand-in's recipe."""
    from transformers import EsmConfig

    source = weights_source(source)
    if source in STAND_INS:
        return EsmConfig(**config_dict(source))
    return EsmConfig.from_pretrained(source)


def meta_model(source: str | None = None):
    """The model built on PyTorch's meta device: every shape and parameter count, no weights, no memory."""
    from transformers import EsmForProteinFolding

    with torch.device("meta"):
        return EsmForProteinFolding(load_config(source))


def _fingerprint(kind: str) -> str:
    """Short hash of a stand-in's configuration and builder, so a changed recipe never reuses a stale checkpoint."""
    import hashlib

    recipe = json.dumps([config_dict(kind), _BUILDER_VERSION], sort_keys=True)
    return hashlib.sha256(recipe.encode()).hexdigest()[:10]


def checkpoint_path(source: str | None = None) -> str:
    """What `from_pretrained` should open: a hub id / local path, or a stand-in's folder (built on first use)."""
    source = weights_source(source)
    if source not in STAND_INS:
        return source
    folder = data.cache_dir() / f"esmfold-{source}-{_fingerprint(source)}"
    if not (folder / "model.safetensors.index.json").is_file():
        print(f"Building the '{source}' stand-in checkpoint in {folder} (once) …", flush=True)
        build_stand_in(source, folder)
    return str(folder)


class NoGPUError(RuntimeError):
    """Raised before loading real weights on a machine without a CUDA GPU."""


def default_device() -> str:
    """'cuda' when a CUDA GPU is visible, else 'cpu'."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def require_gpu(source: str | None = None, device: str | None = None) -> str:
    """Return the device to use; stop with a clear message if the real weights would be loaded without a GPU."""
    device = device or default_device()
    if device == "cpu" and not is_stand_in(source):
        raise NoGPUError(
            "No CUDA GPU is visible, and these notebooks would load the real 8.4 GB ESMFold weights on the CPU — "
            "on a Colab CPU runtime that exhausts the 12.7 GB of RAM and kills the kernel.\n"
            "Fix: in Colab choose Runtime → Change runtime type → T4 GPU, then run all cells again.\n"
            "No GPU at all? Notebook 08 folds on a CPU within 12.7 GB of RAM (helpers.cpu.load_cpu).\n"
            f"To try the notebook without a GPU, use the tiny stand-in: set {WEIGHTS_ENV}=tiny "
            "(structures will be meaningless)."
        )
    return device


def offload_device_map(device: str) -> dict:
    """accelerate device map that offloads the language model: 'cpu' (weights in RAM, run on the GPU) when `device`
    is a GPU, 'disk' when there is none; everything else on `device`."""
    return {"esm": "disk" if device == "cpu" else "cpu", **{name: device for name in NON_LM_MODULES},
            "esm_s_combine": device, "af2_to_esm": device}


def load_model(
    recipe: str = "fp32",
    device: str | None = None,
    source: str | None = None,
    chunk_size: int | str | None = None,
    allow_cpu: bool = False,
):
    """Return (model, tokenizer) for a named recipe on `device`, always via `from_pretrained` with an explicit dtype.

    `chunk_size` is set explicitly on the folding trunk (None = unchunked), whatever the checkpoint's config says;
    `chunk_size="lean"` makes the model memory-lean instead (`helpers.lean`, notebook 07). `allow_cpu=True` lets the
    real weights load on a CPU (notebook 08's low-RAM recipes); otherwise a CPU-only machine gets a clear error.
    Offloading recipes keep the language model's weights in CPU RAM; accelerate moves each layer to the GPU only while
    it runs (on a machine without a GPU the same hooks stream it from disk instead — a smoke test of the path).
    """
    from transformers import AutoTokenizer, EsmForProteinFolding

    if recipe not in RECIPES:
        raise ValueError(f"Unknown recipe {recipe!r}; choose one of {list(RECIPES)}")
    spec = RECIPES[recipe]
    device = (device or default_device()) if allow_cpu else require_gpu(source, device)
    on_gpu = device.startswith("cuda") or gpu.emulated() is not None
    if spec.needs_bf16 and on_gpu and not gpu.bf16_arithmetic():
        raise RuntimeError(
            f"The '{recipe}' recipe needs bf16 arithmetic, which this GPU ({gpu.current().name}) lacks: compute "
            "capability 8.0 or newer has it, a T4 (7.5) does not. Use 'fp16' (fp16 language model, fp32 trunk) instead."
        )
    path = checkpoint_path(source)
    config = load_config(path)
    config.esmfold_config.fp16_esm = spec.fp16_esm  # explicit: the hub config says False, the class default True
    device_map, extra = device, {}
    if spec.offload_lm:
        device_map, extra = offload_device_map(device), {"offload_folder": str(data.cache_dir() / "offload")}
    model = EsmForProteinFolding.from_pretrained(
        path, config=config, dtype=spec.dtype, device_map=device_map,
        quantization_config=_quantization_config(spec), **extra
    )
    if spec.half_lm_after_load:
        model.esm = model.esm.half()
    model.eval()
    if chunk_size == lean.LEAN:
        lean.make_lean(model)
        chunk_size = None
    model.trunk.set_chunk_size(chunk_size)
    tokenizer = AutoTokenizer.from_pretrained(path)
    return model, tokenizer


def component_parameters(model: torch.nn.Module) -> dict[str, int]:
    """Parameter counts of the three stages: language model, folding trunk, structure module (+ small heads)."""
    def count(module):
        return sum(p.numel() for p in module.parameters())

    total = count(model)
    sm = count(model.trunk.structure_module)
    counts = {
        "language model (ESM-2)": count(model.esm),
        "folding trunk": count(model.trunk) - sm,
        "structure module": sm,
    }
    counts["heads and adapters"] = total - sum(counts.values())
    counts["total"] = total
    return counts


def tensor_bytes(tensor: torch.Tensor) -> int:
    """Bytes a tensor really stores: for quantized subclasses (Quanto, torchao), the sum of their inner tensors."""
    flatten = getattr(tensor, "__tensor_flatten__", None)
    if flatten is not None and type(tensor) not in (torch.Tensor, torch.nn.Parameter):
        names, _ = flatten()
        return sum(tensor_bytes(getattr(tensor, name)) for name in names)
    return tensor.numel() * tensor.element_size()


def weights_bytes(model: torch.nn.Module) -> dict[str, int]:
    """Bytes held by parameters and buffers, per stage and in total, computed from the loaded tensors."""
    def nbytes(module, exclude=()):
        skip = {id(t) for m in exclude for t in list(m.parameters()) + list(m.buffers())}
        tensors = list(module.parameters()) + list(module.buffers())
        return sum(tensor_bytes(t) for t in tensors if id(t) not in skip)

    sm = model.trunk.structure_module
    out = {
        "language model (ESM-2)": nbytes(model.esm),
        "folding trunk": nbytes(model.trunk, exclude=[sm]),
        "structure module": nbytes(sm),
    }
    out["heads and adapters"] = nbytes(model, exclude=[model.esm, model.trunk])
    out["total"] = nbytes(model)
    return out


def precision_of(module: torch.nn.Module) -> str:
    """How a module's first `Linear` weight is stored: 'fp32', 'fp16', 'bf16', or its quantized type ('int8', 'int4',
    'float8' for Quanto; 'torchao-int8wo', 'torchao-int8dq' for torchao); 'offloaded' when the weight is not there
    (accelerate keeps it on the meta device and brings it in layer by layer)."""
    weight = next(m.weight for m in module.modules() if isinstance(m, torch.nn.Linear))
    kind = type(weight).__name__
    if kind in ("WeightQBytesTensor", "WeightQBitsTensor"):  # Quanto
        return {"qint8": "int8", "qint4": "int4", "qfloat8_e4m3fn": "float8"}.get(weight.qtype.name, weight.qtype.name)
    if kind not in ("Tensor", "Parameter"):  # torchao: weight-only or with dynamically quantized activations
        return "torchao-int8dq" if getattr(weight, "act_quant_kwargs", None) is not None else "torchao-int8wo"
    if weight.device.type == "meta":
        return "offloaded"
    return {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}.get(weight.dtype, str(weight.dtype))


def _expected_precisions(recipe: Recipe) -> tuple[str, str, bool]:
    """(language model, trunk, LM offloaded) of a loaded recipe, as `precision_of` reads them."""
    quantized = recipe.quanto or {"int8-weight-only": "torchao-int8wo", "int8-dynamic": "torchao-int8dq"}.get(
        recipe.torchao)
    base = {torch.float32: "fp32", torch.bfloat16: "bf16"}[recipe.dtype]
    lm = quantized or ("fp16" if recipe.fp16_esm or recipe.half_lm_after_load else base)
    trunk = base if recipe.lm_only or not quantized else quantized
    return lm, trunk, recipe.offload_lm


def recipe_of(model: torch.nn.Module) -> str | None:
    """The `RECIPES` name a loaded model folds as (the seed's fp16 route folds as 'fp16'), read from its weights; None
    for a state no recipe describes (e.g. the whole model cast to fp16)."""
    lm, trunk = precision_of(model.esm), precision_of(model.trunk)
    offloaded = lm == "offloaded"
    if offloaded:  # the offloaded LM's weights are in CPU RAM (or on disk): the recipes that offload keep them fp16
        lm = "fp16"
    for name, recipe in RECIPES.items():
        if not recipe.half_lm_after_load and _expected_precisions(recipe) == (lm, trunk, offloaded):
            return name
    return None


def resident_bytes(model: torch.nn.Module) -> int:
    """Bytes of weights really held on the model's devices (offloaded weights, left on the meta device, excluded)."""
    tensors = list(model.parameters()) + list(model.buffers())
    return sum(tensor_bytes(t) for t in tensors if t.device.type != "meta")
