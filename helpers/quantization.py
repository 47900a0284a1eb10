"""Inspect quantized models, and save a Quanto model once so that later loads skip re-quantization."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import safetensors.torch  # by module: the tiny stand-in's rehearsal watches `safetensors.torch.load_file`
import torch
from transformers import EsmConfig, EsmForProteinFolding

from helpers import colab
from helpers.models import tensor_bytes


def quantized_linears(model: torch.nn.Module) -> Counter:
    """Count Linear layers by how their weight is stored, e.g. {'WeightQBytesTensor': 109, 'Tensor': 2}."""
    counts = Counter()
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            counts[type(module.weight).__name__ if type(module.weight) is not torch.nn.Parameter else "Tensor"] += 1
    return counts


def weight_storage(linear: torch.nn.Module) -> dict:
    """How one Linear layer's weight is stored: container type, inner data dtype and bytes."""
    weight = linear.weight
    inner = getattr(weight, "_data", None)
    if inner is None:
        inner = getattr(weight, "qdata", weight)
    return {"type": type(weight).__name__, "data dtype": str(getattr(inner, "dtype", weight.dtype)),
            "bytes": tensor_bytes(weight), "fp32 bytes": weight.numel() * 4}


def save_quantized(model: torch.nn.Module, folder: str | Path) -> Path:
    """Save a Quanto-quantized model as a state dict + quantization map + config (save_pretrained refuses it)."""
    quantization_map = colab.optional("optimum-quanto").quantization_map

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().contiguous().cpu() for name, tensor in model.state_dict().items()}
    safetensors.torch.save_file(state, folder / "model.safetensors", metadata={"format": "pt"})
    (folder / "quantization_map.json").write_text(json.dumps(quantization_map(model), indent=1))
    model.config.save_pretrained(folder)
    return folder


def load_quantized(folder: str | Path, device: str = "cpu", chunk_size: int | None = None):
    """Rebuild a saved Quanto model without re-quantizing: meta-device model + `requantize`, then move to `device`."""
    requantize = colab.optional("optimum-quanto").requantize

    folder = Path(folder)
    config = EsmConfig.from_pretrained(folder)
    with torch.device("meta"):
        model = EsmForProteinFolding(config)
    state = safetensors.torch.load_file(folder / "model.safetensors", device="cpu")
    qmap = json.loads((folder / "quantization_map.json").read_text())
    requantize(model, state, qmap, device=torch.device("cpu"))
    del state
    model.to(device)
    model.eval()
    model.trunk.set_chunk_size(chunk_size)
    return model
