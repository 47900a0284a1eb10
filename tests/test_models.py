"""Model loading: stand-ins go through from_pretrained with an explicit dtype; the full architecture's counts."""

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from helpers import models


def test_full_architecture_parameter_counts_match_esmfold_v1():
    counts = models.component_parameters(models.meta_model("random-full"))
    assert counts["total"] == 3_525_038_915
    assert counts["language model (ESM-2)"] == 2_832_444_321
    assert counts["folding trunk"] + counts["structure module"] == 688_548_524
    assert 3_000_000 < counts["heads and adapters"] < 5_000_000  # "heads 0.004 B"


def test_the_checkpoint_s_precisions_make_the_published_8_44_gb():
    """The checkpoint stores the language model in fp16 and the rest in fp32: the `fp16` recipe's bytes computed from
    the architecture are the published 8.44 GB file (its header and tokenizer aside)."""
    assert models.expected_weights_bytes("fp16")["total"] / 1e9 == pytest.approx(8.44, abs=0.01)


def test_tiny_is_a_few_hundred_thousand_parameters(tiny):
    model, _ = tiny
    assert 100_000 < models.component_parameters(model)["total"] < 1_000_000
    assert type(model).__name__ == "EsmForProteinFolding"


def test_load_model_always_passes_an_explicit_dtype_and_device_map(monkeypatch):
    from transformers import EsmForProteinFolding

    seen = {}
    original = EsmForProteinFolding.from_pretrained.__func__

    def spy(cls, path, *args, **kwargs):
        seen.update(kwargs, path=path)
        return original(cls, path, *args, **kwargs)

    monkeypatch.setattr(EsmForProteinFolding, "from_pretrained", classmethod(spy))
    model, tokenizer = models.load_model("fp32", device="cpu", source="tiny", chunk_size=32)
    assert seen["dtype"] is torch.float32 and seen["device_map"] == "cpu"
    assert seen["path"] == models.checkpoint_path("tiny")
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    assert model.trunk.chunk_size == 32 and not model.training


def test_chunk_size_is_set_explicitly_even_when_the_config_differs(tmp_path):
    """A checkpoint whose config asks for chunk 128 still loads unchunked unless a chunk size is asked."""
    source = Path(models.checkpoint_path("tiny"))
    for file in source.iterdir():
        if file.name != "config.json":
            (tmp_path / file.name).symlink_to(file)
    config = json.loads((source / "config.json").read_text())
    config["esmfold_config"]["trunk"]["chunk_size"] = 128
    (tmp_path / "config.json").write_text(json.dumps(config))
    model, _ = models.load_model("fp32", device="cpu", source=str(tmp_path), allow_cpu=True)
    assert model.config.esmfold_config.trunk.chunk_size == 128  # the config did differ
    assert model.trunk.chunk_size is None
    model, _ = models.load_model("fp32", device="cpu", source=str(tmp_path), allow_cpu=True, chunk_size=32)
    assert model.trunk.chunk_size == 32


def test_stand_in_checkpoint_stores_lm_in_fp16_and_the_rest_in_fp32():
    folder = models.checkpoint_path("tiny")
    index = json.load(open(f"{folder}/model.safetensors.index.json"))
    dtypes = {}
    for name, shard in index["weight_map"].items():
        with safe_open(f"{folder}/{shard}", "pt") as handle:
            dtypes[name] = handle.get_slice(name).get_dtype()
    lm = {d for n, d in dtypes.items() if n.startswith("esm.")}
    rest = {d for n, d in dtypes.items() if not n.startswith("esm.") and d.startswith("F")}
    assert lm == {"F16"} and rest == {"F32"}
    assert "af2_to_esm" in dtypes


def test_tokenizer_uses_alphafold_residue_order(tiny):
    model, tokenizer = tiny
    ids = tokenizer(["ARNDCQEGHILKMFPSTWYVX"], add_special_tokens=False)["input_ids"][0]
    assert ids == list(range(21))
    # the model maps AlphaFold indices (+1, 0 = padding) to ESM-2 ids through config.vocab_list
    vocab = model.config.vocab_list
    assert [vocab[i] for i in model.af2_to_esm[1:22].tolist()] == list("ARNDCQEGHILKMFPSTWYVX")


def test_real_weights_without_gpu_stop_with_a_clear_message(monkeypatch):
    monkeypatch.delenv(models.WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(models.NoGPUError, match="T4 GPU"):
        models.load_model("fp32")
    assert models.require_gpu(source="tiny") == "cpu"


def test_weights_source_and_stand_in_detection(monkeypatch):
    monkeypatch.delenv(models.WEIGHTS_ENV, raising=False)
    assert models.weights_source() == "facebook/esmfold_v1" and not models.is_stand_in()
    monkeypatch.setenv(models.WEIGHTS_ENV, "random-full")
    assert models.is_stand_in() and models.weights_source("some/path") == "some/path"


def test_unknown_recipe_and_stand_in_are_rejected():
    with pytest.raises(ValueError, match="fp32"):
        models.load_model("fp8-magic", device="cpu", source="tiny")
    with pytest.raises(ValueError, match="tiny"):
        models.config_dict("huge")


def test_weights_bytes_are_computed_from_the_tensors(tiny):
    model, _ = tiny
    sizes = models.weights_bytes(model)
    expected = sum(t.numel() * 4 for t in list(model.parameters()) + list(model.buffers()) if t.is_floating_point())
    expected += sum(t.numel() * t.element_size() for t in model.buffers() if not t.is_floating_point())
    assert sizes["total"] == expected
    parts = sum(v for k, v in sizes.items() if k != "total")
    assert parts == sizes["total"]
