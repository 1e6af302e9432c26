"""textgym: text generation as token-level Gymnasium environments.

Importing textgym registers its environment ids::

    import gymnasium as gym
    import textgym  # noqa: F401

    env = gym.make("TextDetox-sparse-v0")
"""

from textgym import forking
from textgym.envs import registered_ids
from textgym.error import TextGymError

forking.register()

__version__ = "0.1.0"
__all__ = ["TextGymError", "registered_ids", "__version__"]
