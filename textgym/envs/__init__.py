"""textgym's environments: the token-level env, its vector form, and the registered ids."""

from textgym.envs.registration import registered_ids

__all__ = ["registered_ids"]
