"""Where models run: device and dtype names, resolved once with errors that say how to fix them.

Every agent config, the CLI and the bench grid take ``device`` (``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"``)
and ``dtype`` (``"float32"``, ``"bfloat16"``). Models (policy, reference, LM scorers and critics) go to the device;
environments, tokenizers and rewards stay on the CPU.
"""

from __future__ import annotations

import torch

from textgym.error import SettingsError, unknown_name

DEVICES = ("auto", "cpu", "cuda", "cuda:N")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """The torch device a device name means (``"auto"``: the first GPU when CUDA is available, else the CPU).

    Raises:
        SettingsError: An unknown name, or a CUDA device on a machine without one (or without that index).
    """
    if isinstance(name, torch.device):
        name = str(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or (name.startswith("cuda:") and name[5:].isdigit()):
        if not torch.cuda.is_available():
            raise SettingsError(
                f"device={name!r} needs CUDA, but torch {torch.__version__} sees no CUDA device here "
                f"(torch.cuda.is_available() is False). Use device='cpu', or 'auto' to take a GPU only when one is "
                "there; on a GPU machine install a CUDA build of torch."
            )
        index = int(name[5:]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise SettingsError(
                f"device={name!r}: this machine has {torch.cuda.device_count()} CUDA device(s), numbered from 0."
            )
        return torch.device("cuda", index)
    raise SettingsError(f"Unknown device {name!r}. Valid devices: {', '.join(DEVICES)} (N a GPU index).")


def resolve_dtype(name: str | torch.dtype = "float32") -> torch.dtype:
    """The torch dtype of a dtype name (``"float32"`` or ``"bfloat16"``).

    Raises:
        UnknownNameError: Another name.
    """
    if isinstance(name, torch.dtype):
        if name not in DTYPES.values():
            raise SettingsError(f"dtype {name} is not supported; use one of {', '.join(DTYPES)}.")
        return name
    if name not in DTYPES:
        raise unknown_name("dtype", name, DTYPES)
    return DTYPES[name]


def check_device_settings(device: str, dtype: str) -> None:
    """Raises :class:`SettingsError` (or an unknown-name error) for a device or dtype that cannot be used here."""
    resolve_device(device)
    resolve_dtype(dtype)
