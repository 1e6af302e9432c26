"""The token-level text-generation environment."""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from textgym.devices import check_device_settings, resolve_device
from textgym.error import DataError, EpisodeFinishedError, InvalidActionError
from textgym.models import DEFAULT_POLICY_MODEL, load_tokenizer
from textgym.tasks import PromptItem, Scorer, get_items, get_scorer, get_task


class TextGenerationEnv(gym.Env[dict[str, np.ndarray], int]):
    """Text generation as a token-level episode: the agent writes a completion of a prompt, one token per step.

    ## Description
    Each episode draws a prompt of the task (a movie-review opening, a hostile opening, a forum post) and lets
    the agent append tokens of the model's vocabulary until it writes the end-of-sequence token or reaches
    ``max_new_tokens``. The finished completion gets the task's extrinsic score.

    ## Action Space
    ``Discrete(vocab_size)``: the id of the next token, for the tokenizer of ``model`` (``len(tokenizer)`` ids).
    Ids outside the range, non-integers and arrays of more than one element raise ``InvalidActionError``.

    ## Observation Space
    ``Dict`` of two ``Box(shape=(prompt_budget + max_new_tokens,), dtype=int64)``:

    - ``input_ids``: prompt tokens followed by the tokens generated so far, left-padded with the pad token.
    - ``attention_mask``: 1 on real tokens, 0 on padding.

    The layout is what a causal LM takes as a batch row, so a policy can feed the observation straight to it.
    A prompt longer than ``prompt_budget`` tokens keeps its last ``prompt_budget`` tokens
    (``info["prompt_truncated"]``).

    ## Rewards
    Sparse: 0 on every step but the last, whose reward is the task's extrinsic score of the completion
    (sentiment: P(positive) of the review; detox: 1 - toxicity of the completion; summarize: ROUGE, similarity
    and length, see ``textgym.scorers.summary_quality``). All scores lie in [0, 1].

    ## Starting State
    A prompt drawn uniformly from the split with the environment's ``np_random``, or the one given by
    ``reset(options={"prompt": ...})`` (a string, or a dict with ``source`` and optional ``reference``), or by
    ``options={"prompt_index": i}``.

    ## Episode End
    Terminated when the action is the EOS token or the completion reaches ``max_new_tokens`` tokens. The length
    limit is part of the task and visible in the observation, so it terminates rather than truncates: there is no
    reward after it to bootstrap. ``truncated`` is always False. ``info["length_limit"]`` tells the two apart.
    Stepping a finished episode raises ``EpisodeFinishedError``.

    ## Info
    ``reset``: ``prompt``, ``prompt_index`` (-1 for a given prompt), ``prompt_truncated``. The last step adds
    ``completion`` (decoded without special tokens), ``extrinsic_score``, ``num_new_tokens`` and ``length_limit``.

    ## Arguments
    - ``task``: ``"sentiment"``, ``"detox"`` or ``"summarize"``.
    - ``model``: whose tokenizer defines the vocabulary: a named model, a folder or a model hub id.
    - ``max_new_tokens``: the length limit (task default when None).
    - ``split``: ``"train"`` or ``"eval"`` prompts.
    - ``scorer`` / ``scorer_kwargs``: the extrinsic scorer (task default when None), e.g. a transformers
      classifier id with ``{"label": "POSITIVE"}``.
    - ``prompt_budget``: observation tokens for the prompt (task default when None).
    - ``prompts_path``: a JSON-lines file of the user's own prompts instead of the embedded ones.
    - ``render_mode``: ``"ansi"`` (``render()`` returns the text) or ``"human"`` (prints it).
    - ``device``: where the task's scorer model runs (and a critic's, in a ``*-critic-v0`` env): ``"cpu"``,
      ``"cuda"``, ``"cuda:N"`` or ``"auto"`` (see :mod:`textgym.devices`). The environment itself (observations,
      rewards, tokenizer) stays on the CPU. A device this machine lacks raises ``SettingsError`` at construction.
    - ``dtype``: the weights of those models, ``"float32"`` or ``"bfloat16"`` (the toxicity BiLSTM stays float32).

    ## Version History
    - v0: first version; ``device`` and ``dtype`` added later (their defaults give the same rewards as before).
    """

    metadata = {"render_modes": ["ansi", "human"], "render_fps": 4}

    def __init__(
        self,
        task: str = "sentiment",
        model: str = DEFAULT_POLICY_MODEL,
        max_new_tokens: int | None = None,
        split: str = "train",
        scorer: str | None = None,
        scorer_kwargs: dict[str, Any] | None = None,
        prompt_budget: int | None = None,
        prompts_path: str | None = None,
        render_mode: str | None = "ansi",
        device: str = "cpu",
        dtype: str = "float32",
    ) -> None:
        check_device_settings(device, dtype)
        self.device, self.dtype = str(resolve_device(device)), dtype
        self.task = get_task(task)
        self.max_new_tokens = self.task.default_max_new_tokens if max_new_tokens is None else max_new_tokens
        self.prompt_budget = self.task.default_prompt_budget if prompt_budget is None else prompt_budget
        for name, value in (("max_new_tokens", self.max_new_tokens), ("prompt_budget", self.prompt_budget)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        self.max_new_tokens, self.prompt_budget = int(self.max_new_tokens), int(self.prompt_budget)
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']}, got {render_mode!r}.")
        self.render_mode = render_mode
        self.model_name = model
        self.tokenizer = load_tokenizer(model)
        self.items = get_items(task, split, prompts_path)
        self._scorer_args = (task, scorer, scorer_kwargs)
        self.scorer_settings = (scorer, scorer_kwargs)
        self._scorer: Scorer | None = None
        self.vocab_size = len(self.tokenizer)
        self.eos_token_id = self.tokenizer.eos_token_id
        self.pad_token_id = self.tokenizer.pad_token_id
        self.obs_length = self.prompt_budget + self.max_new_tokens
        self.action_space = spaces.Discrete(self.vocab_size)
        self.observation_space = spaces.Dict(
            {
                "input_ids": spaces.Box(0, self.vocab_size - 1, (self.obs_length,), np.int64),
                "attention_mask": spaces.Box(0, 1, (self.obs_length,), np.int64),
            }
        )
        self._prompt_ids_cache: dict[int, np.ndarray] = {}
        self._item: PromptItem | None = None
        self._prompt_text = ""
        self._prompt_ids = np.zeros(0, np.int64)
        self._prompt_truncated = False
        self._prompt_index = -1
        self._generated: list[int] = []
        self._finished = True
        self._started = False

    @property
    def scorer(self) -> Scorer:
        """The task's extrinsic scorer, built on first use and shared by every env of the same configuration."""
        if self._scorer is None:
            task, scorer, scorer_kwargs = self._scorer_args
            self._scorer = get_scorer(task, scorer, scorer_kwargs, self.device, self.dtype)
        return self._scorer

    # -- episode --------------------------------------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Starts an episode on a sampled or given prompt; see the class docstring."""
        super().reset(seed=seed)
        options = options or {}
        if "prompt" in options:
            self._item, self._prompt_index = self._item_from_option(options["prompt"]), -1
        elif "prompt_index" in options:
            index = options["prompt_index"]
            valid = isinstance(index, (int, np.integer)) and not isinstance(index, bool)
            if not valid or not 0 <= index < len(self.items):
                raise DataError(f"prompt_index must be an integer in [0, {len(self.items)}), got {index!r}.")
            self._item, self._prompt_index = self.items[index], int(index)
        else:
            self._prompt_index = int(self.np_random.integers(len(self.items)))
            self._item = self.items[self._prompt_index]
        self._prompt_text = self.task.format_prompt(self._item)
        self._prompt_ids, self._prompt_truncated = self._encode_prompt()
        self._generated = []
        self._finished = False
        self._started = True
        info = {
            "prompt": self._prompt_text,
            "prompt_index": self._prompt_index,
            "prompt_truncated": self._prompt_truncated,
        }
        return self._observation(), info

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], SupportsFloat, bool, bool, dict[str, Any]]:
        """Appends one token; on the last step scores the completion. See the class docstring."""
        if self.advance(action):
            return self.finish(self.scorer([self._item], [self.completion])[0])
        return self._observation(), 0.0, False, False, {}

    def advance(self, action: Any) -> bool:
        """Validates and appends a token without scoring; returns whether the episode has just ended.

        The vector form calls this on every sub-environment, then scores all that ended in one batch and calls
        :meth:`finish` on each. ``step`` is ``advance`` followed by ``finish`` with a score of one text.
        """
        if self._finished:
            if not self._started:
                raise EpisodeFinishedError("Cannot call step() before reset(): call env.reset() first.")
            raise EpisodeFinishedError(
                "This episode has ended (EOS or max_new_tokens reached): call env.reset() before step()."
            )
        token = self.validate_action(action)
        self._generated.append(token)
        self._finished = token == self.eos_token_id or len(self._generated) >= self.max_new_tokens
        return self._finished

    def finish(self, score: float) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Returns the last step's results, with ``score`` as the reward; the episode must have just ended."""
        if not self._finished:
            raise EpisodeFinishedError("finish() called on an episode that has not ended.")
        info = {
            "prompt": self._prompt_text,
            "completion": self.completion,
            "extrinsic_score": float(score),
            "num_new_tokens": len(self._generated),
            "length_limit": self._generated[-1] != self.eos_token_id,
        }
        return self._observation(), float(score), True, False, info

    # -- views ----------------------------------------------------------------------------------------------

    @property
    def item(self) -> PromptItem | None:
        """The current episode's prompt item."""
        return self._item

    @property
    def completion(self) -> str:
        """The text generated so far, decoded without special tokens."""
        return self.tokenizer.decode(self._generated, skip_special_tokens=True)

    @property
    def generated_ids(self) -> list[int]:
        """The token ids generated so far (a copy)."""
        return list(self._generated)

    def render(self) -> str | None:
        """Returns (``"ansi"``) or prints (``"human"``) the prompt and the completion so far."""
        text = self._prompt_text + self.completion
        if self.render_mode == "human":
            print(text)
            return None
        return text

    # -- helpers --------------------------------------------------------------------------------------------

    def _item_from_option(self, prompt: Any) -> PromptItem:
        if isinstance(prompt, str):
            return PromptItem(prompt)
        if isinstance(prompt, PromptItem):
            return prompt
        if isinstance(prompt, dict) and isinstance(prompt.get("source"), str):
            return PromptItem(prompt["source"], prompt.get("reference"))
        raise DataError(
            f"options['prompt'] must be a string or a dict with a 'source' string (and optional 'reference'), "
            f"got {prompt!r}."
        )

    def _encode_prompt(self) -> tuple[np.ndarray, bool]:
        key = self._prompt_index
        if key >= 0 and key in self._prompt_ids_cache:
            ids = self._prompt_ids_cache[key]
        else:
            ids = np.asarray(self.tokenizer(self._prompt_text).input_ids, dtype=np.int64)
            if key >= 0:
                self._prompt_ids_cache[key] = ids
        if len(ids) == 0:
            raise DataError("The prompt is empty after tokenization; give a non-empty prompt.")
        return ids[-self.prompt_budget :], len(ids) > self.prompt_budget

    def validate_action(self, action: Any) -> int:
        """Returns the token id of an action, or raises InvalidActionError with what is wrong and how to fix it."""
        array = np.asarray(action)
        if array.size != 1 or not np.issubdtype(array.dtype, np.integer):
            raise InvalidActionError(
                f"An action is one token id (an integer), got {action!r} of type {type(action).__name__}."
            )
        token = int(array.reshape(()))
        if not 0 <= token < self.vocab_size:
            raise InvalidActionError(
                f"Token id {token} is outside the action space Discrete({self.vocab_size}): ids run from 0 to "
                f"{self.vocab_size - 1}. If your policy's logits are wider than the tokenizer (padded vocabularies), "
                "mask the extra ids."
            )
        return token

    def _observation(self) -> dict[str, np.ndarray]:
        content = np.concatenate([self._prompt_ids, np.asarray(self._generated, dtype=np.int64)])
        input_ids = np.full(self.obs_length, self.pad_token_id, dtype=np.int64)
        attention_mask = np.zeros(self.obs_length, dtype=np.int64)
        if len(content):
            input_ids[-len(content) :] = content
            attention_mask[-len(content) :] = 1
        return {"input_ids": input_ids, "attention_mask": attention_mask}
