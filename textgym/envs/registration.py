"""Registration of textgym's environment ids with Gymnasium.

Flat ``register`` calls with string entry points: nothing heavy loads until an id is made.
"""

from __future__ import annotations

import gymnasium as gym
from gymnasium.envs.registration import register

ENTRY_POINT = "textgym.envs.text_env:TextGenerationEnv"
VECTOR_ENTRY_POINT = "textgym.envs.vector_env:TextGenerationVectorEnv"
CRITIC_ENTRY_POINT = "textgym.envs.critic_env:make_critic_env"
CRITIC_VECTOR_ENTRY_POINT = "textgym.envs.critic_env:make_critic_vector_env"

register(
    id="TextSentiment-sparse-v0",
    entry_point=ENTRY_POINT,
    vector_entry_point=VECTOR_ENTRY_POINT,
    kwargs={"task": "sentiment"},
)
register(
    id="TextDetox-sparse-v0",
    entry_point=ENTRY_POINT,
    vector_entry_point=VECTOR_ENTRY_POINT,
    kwargs={"task": "detox"},
)
register(
    id="TextSummarize-sparse-v0",
    entry_point=ENTRY_POINT,
    vector_entry_point=VECTOR_ENTRY_POINT,
    kwargs={"task": "summarize"},
)

register(
    id="TextSentiment-critic-v0",
    entry_point=CRITIC_ENTRY_POINT,
    vector_entry_point=CRITIC_VECTOR_ENTRY_POINT,
    kwargs={"task": "sentiment"},
)
register(
    id="TextDetox-critic-v0",
    entry_point=CRITIC_ENTRY_POINT,
    vector_entry_point=CRITIC_VECTOR_ENTRY_POINT,
    kwargs={"task": "detox"},
)
register(
    id="TextSummarize-critic-v0",
    entry_point=CRITIC_ENTRY_POINT,
    vector_entry_point=CRITIC_VECTOR_ENTRY_POINT,
    kwargs={"task": "summarize"},
)


def registered_ids() -> list[str]:
    """Returns every textgym environment id, in registration order."""
    import gymnasium as gym

    return [env_id for env_id, spec in gym.registry.items() if str(spec.entry_point).startswith("textgym.")]


def has_critic(env_id: str) -> bool:
    """Whether the registered id's env pays a critic's rewards (read from its spec's entry point)."""
    return gym.spec(env_id).entry_point == CRITIC_ENTRY_POINT
