"""Load ESMFold — real weights or a stand-in — as (model, tokenizer) through `EsmForProteinFolding.from_pretrained`."""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import (AutoTokenizer, EsmConfig, EsmForProteinFolding, EsmTokenizer, QuantoConfig,
                          TorchAoConfig)

from helpers import colab, data, gpu, lean, memory, recipes
from helpers.memory import tensor_bytes  # noqa: F401 — also the learners' name for it (notebook 03)

#: The real model on the Hugging Face hub.
REAL_MODEL_ID = "facebook/esmfold_v1"
#: Environment variable that picks the weights: a hub id or local path (default: the real model), `random-full`, or `tiny`.
WEIGHTS_ENV = "ESMFOLD_WEIGHTS"
#: Stand-ins built locally from the real architecture, with random weights: a shrunk copy for tests and rehearsals,
#: and the exact architecture (real memory and time; also what the predictor reads the architecture from).
TINY_STAND_IN = "tiny"
FULL_SIZE_STAND_IN = "random-full"
STAND_INS = (TINY_STAND_IN, FULL_SIZE_STAND_IN)
#: esmfold_v1 tokenizer vocabulary: AlphaFold residue order, then special tokens (token id = AlphaFold residue index).
AF2_VOCAB = list("ARNDCQEGHILKMFPSTWYV") + ["X", "<pad>", "<mask>", "<cls>", "<sep>", "<eos>"]

#: Every module outside the ESM-2 language model (kept out of quantization by the `*-lm` recipes).
NON_LM_MODULES = ["trunk", "esm_s_mlp", "embedding", "distogram_head", "ptm_head", "lm_head", "lddt_head"]


#: torchao's configuration class for each `Recipe.torchao` / `Recipe.lm_cast` name.
_TORCHAO_CONFIGS = {"int8-weight-only": "Int8WeightOnlyConfig", "int8-dynamic": "Int8DynamicActivationInt8WeightConfig"}


def _torchao_config(name: str):
    """A torchao configuration by its `Recipe.torchao` / `Recipe.lm_cast` name (torchao is imported here only: it is
    optional, slow to import, and noisy where its kernels are missing)."""
    return getattr(colab.optional("torchao", "torchao.quantization"), _TORCHAO_CONFIGS[name])()


def _quantization_config(recipe: recipes.Recipe):
    """The transformers quantization config of a recipe, or None."""
    skip = NON_LM_MODULES if recipe.lm_only else None
    if recipe.quanto:
        colab.optional("optimum-quanto")  # transformers would say so too, from deep inside its loader
        return QuantoConfig(weights=recipe.quanto, modules_to_not_convert=skip)
    if recipe.torchao:
        return TorchAoConfig(_torchao_config(recipe.torchao), modules_to_not_convert=skip)
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


def config_dict(kind: str = FULL_SIZE_STAND_IN) -> dict:
    """The esmfold_v1 configuration (from shared data or the hub), shrunk for `tiny`."""
    full = json.loads(data.fetch("esmfold_v1/config.json").read_text())
    if kind == FULL_SIZE_STAND_IN:
        return full
    if kind == TINY_STAND_IN:
        return _merge(full, _TINY)
    raise ValueError(f"Unknown stand-in {kind!r}; choose one of {STAND_INS}")


def _write_tokenizer(folder: Path) -> None:
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
    """The model configuration alone (a few kB): from the hub/path, or a stand-in's (`config_dict`)."""
    source = weights_source(source)
    if source in STAND_INS:
        return EsmConfig(**config_dict(source))
    return EsmConfig.from_pretrained(source)


def meta_model(source: str | None = None):
    """The model built on PyTorch's meta device: every shape and parameter count, no weights, no memory."""
    with torch.device("meta"):
        return EsmForProteinFolding(load_config(source))


def _fingerprint(kind: str) -> str:
    """Short hash of a stand-in's configuration and builder, so a changed stand-in never reuses a stale checkpoint."""
    description = json.dumps([config_dict(kind), _BUILDER_VERSION], sort_keys=True)
    return hashlib.sha256(description.encode()).hexdigest()[:10]


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
            "No CUDA GPU is visible: in Colab choose Runtime → Change runtime type → T4 GPU, then run all cells again "
            "(with no GPU at all, notebook 08 folds on a CPU).\n"
            "Loading the real 8.4 GB weights on a CPU here would exhaust a Colab CPU runtime's RAM and kill the "
            f"kernel. To try the notebook without a GPU, use the tiny stand-in: set {WEIGHTS_ENV}=tiny (structures "
            "will be meaningless)."
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
    """Return (model, tokenizer) for a named recipe (`recipes.RECIPES`) on `device`, always via `from_pretrained` with
    an explicit dtype, then the recipe's after-load steps (a bf16 or torchao language model, a bf16 trunk, the lean
    trunk).

    `chunk_size` is set explicitly on the folding trunk (None = unchunked), whatever the checkpoint's config says;
    `chunk_size=lean.LEAN` makes the model memory-lean instead (`helpers.lean`, notebook 07). `allow_cpu=True` lets the
    real weights load on a CPU (notebook 08's low-RAM recipes); otherwise a CPU-only machine gets a clear error.
    Offloading recipes keep the language model's weights in CPU RAM; accelerate moves each layer to the GPU only while
    it runs (on a machine without a GPU the same hooks stream it from disk instead — a smoke test of the path).
    """
    spec = recipes.get(recipe)
    if spec.prequantized:
        raise ValueError(f"'{recipe}' reloads a saved checkpoint: load it with `cpu.load_cpu('{recipe}')`")
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
    _after_load(model, spec)
    model.eval()
    if spec.lean or chunk_size == lean.LEAN:
        cache_sized = spec.lean and device == "cpu"  # a CPU recipe built lean: chunks sized for the caches, not memory
        lean.make_lean(model, lean.LeanOptions(positions=lean.CPU_POSITIONS) if cache_sized else None)
        chunk_size = None
    model.trunk.set_chunk_size(chunk_size)
    tokenizer = AutoTokenizer.from_pretrained(path)
    return model, tokenizer


def _after_load(model, spec: recipes.Recipe) -> None:
    """A recipe's conversions after loading, parameter by parameter, so the language model never exists in fp32."""
    if spec.trunk_bf16:
        model.to(torch.bfloat16)  # LM fp16 → bf16, the rest fp32 → bf16
    if spec.lm_cast is not None:
        model.esm.to(torch.bfloat16)  # fp16 → bf16, never fp32 (torchao's int8 recipes compute with bf16 activations)
    if spec.lm_cast in _TORCHAO_CONFIGS:  # then int8 weights, layer by layer
        colab.optional("torchao", "torchao.quantization").quantize_(model.esm, _torchao_config(spec.lm_cast))


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


def _stage_bytes(model: torch.nn.Module, bytes_of) -> dict[str, int]:
    """Bytes per stage and in total, each parameter and buffer counted once as `bytes_of(tensor)` says."""
    def nbytes(module, exclude=()):
        return memory.stored_bytes(module, bytes_of=bytes_of, exclude=exclude)

    sm = model.trunk.structure_module
    out = {
        "language model (ESM-2)": nbytes(model.esm),
        "folding trunk": nbytes(model.trunk, exclude=[sm]),
        "structure module": nbytes(sm),
    }
    out["heads and adapters"] = nbytes(model, exclude=[model.esm, model.trunk])
    out["total"] = nbytes(model)
    return out


def weights_bytes(model: torch.nn.Module) -> dict[str, int]:
    """Bytes held by parameters and buffers, per stage and in total, computed from the loaded tensors."""
    return _stage_bytes(model, tensor_bytes)


@functools.lru_cache(maxsize=None)
def _quantized_linear_bytes(out_features: int, in_features: int, bias: bool, dtype: torch.dtype,
                            quanto_weights: str | None, torchao_config: str | None) -> int:
    """Bytes of one Linear layer of this shape once Quanto (`quanto_weights`: "int8", "int4", "float8") or torchao
    (`torchao_config`) has quantized it — weight, scales, bias and the library's own buffers: the library quantizes a
    layer of that shape on the meta device (shapes and dtypes, no data: milliseconds), so the count is exact."""
    layer = torch.nn.Sequential(torch.nn.Linear(in_features, out_features, bias=bias, device="meta", dtype=dtype))
    if quanto_weights:
        quanto = colab.optional("optimum-quanto")
        qtypes = {"int8": quanto.qint8, "int4": quanto.qint4, "float8": quanto.qfloat8}
        quanto.quantize(layer, weights=qtypes[quanto_weights])
        quanto.freeze(layer)
    else:
        colab.optional("torchao", "torchao.quantization").quantize_(layer, _torchao_config(torchao_config))
    return sum(tensor_bytes(t) for t in list(layer.parameters()) + list(layer.buffers()))


@functools.lru_cache(maxsize=None)
def _built(source: str, fp16_esm: bool, dtype: torch.dtype, half_lm_after_load: bool):
    """The model on the meta device as `from_pretrained(dtype=...)` builds it with these settings (shared by the
    recipes that load alike; never changed)."""
    config = load_config(source)
    config.esmfold_config.fp16_esm = fp16_esm
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device("meta"):
            model = EsmForProteinFolding(config)
    finally:
        torch.set_default_dtype(default)
    if half_lm_after_load:
        model.esm = model.esm.half()
    return model


@functools.lru_cache(maxsize=None)
def expected_weights_bytes(recipe: str, source: str | None = None) -> dict[str, int]:
    """What `weights_bytes` will report once `recipe` is loaded, per stage and in total, computed from the
    architecture alone (default: the full-size esmfold_v1; no weights, about a second): the model built on the meta
    device as the recipe loads it, its after-load casts applied to each tensor's dtype, and every Linear layer the
    recipe quantizes counted at what its library stores for a layer of that shape. A recipe that offloads its
    language model counts it too (`resident_bytes` does not)."""
    spec = recipes.get(recipe)
    model = _built(source or FULL_SIZE_STAND_IN, spec.fp16_esm, spec.dtype, spec.half_lm_after_load)
    lm = {id(t) for t in [*model.esm.parameters(), *model.esm.buffers()]}

    def dtype_of(tensor):  # `model.to(bf16)` and `model.esm.to(bf16)` cast floating tensors only (`_after_load`)
        cast = spec.trunk_bf16 or (spec.lm_cast is not None and id(tensor) in lm)
        return torch.bfloat16 if cast and tensor.is_floating_point() else tensor.dtype

    quantizes = spec.quanto or spec.torchao_config
    quantized = {}  # id of a tensor → its bytes once quantized
    for name, module in model.named_modules():
        in_lm = name == "esm" or name.startswith("esm.")
        if quantizes and isinstance(module, torch.nn.Linear) and (in_lm or not (spec.lm_only or spec.lm_cast)):
            quantized[id(module.weight)] = _quantized_linear_bytes(module.out_features, module.in_features,
                                                                   module.bias is not None, dtype_of(module.weight),
                                                                   spec.quanto, spec.torchao_config)
            if module.bias is not None:
                quantized[id(module.bias)] = 0  # counted with the layer
    return _stage_bytes(model, lambda t: quantized.get(id(t), t.numel() * dtype_of(t).itemsize))


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


def recipe_of(model: torch.nn.Module) -> str | None:
    """The recipe a loaded model folds as, read from its weights (`Recipe.precisions`): the first in the registry's
    order (the seed's fp16 route folds as 'fp16', a reloaded int8 checkpoint as 'int8'); None for a state no recipe
    describes (e.g. the whole model cast to fp16)."""
    lm, trunk = precision_of(model.esm), precision_of(model.trunk)
    offloaded = lm == "offloaded"
    if offloaded:  # the offloaded LM's weights are in CPU RAM (or on disk): the recipes that offload keep them fp16
        lm = "fp16"
    return next(iter(recipes.matching(lm, trunk, offloaded)), None)


def resident_bytes(model: torch.nn.Module) -> int:
    """Bytes of weights really held on the model's devices (offloaded weights, left on the meta device, excluded)."""
    tensors = list(model.parameters()) + list(model.buffers())
    return sum(tensor_bytes(t) for t in tensors if t.device.type != "meta")
