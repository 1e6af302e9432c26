"""Any textgym reward as a TRL reward function: the episode return of each completion, replayed through the env.

TRL's trainers (``GRPOTrainer``, ``RLOOTrainer``) take ``reward_funcs=[callable]`` and call each callable with the
batch's ``prompts`` and ``completions``, every other data-set column as a keyword list, and (TRL 1.16)
``completion_ids``, ``trainer_state``, ``log_extra`` and ``log_metric``. :class:`TextGymReward` is such a callable:
for each completion it returns what the env ``env_id`` pays over the episode that writes it, one token per step
(a sparse id: the task's score; a dense id: the sum of its per-token rewards, e.g. a critic's span rewards plus the
score). The batch is replayed through one vector env, so each step costs one batched scorer (and critic) call for
all completions, not one per text.

Example (``pip install 'textgym[trl]'``)::

    import copy

    from trl import GRPOConfig, GRPOTrainer

    from textgym.integrations.trl import TextGymReward, dataset
    from textgym.models import load_causal_lm, load_tokenizer

    model = "smollm2-135m-instruct"  # a textgym named model; a folder or hub id works too
    trainer = GRPOTrainer(
        model=copy.deepcopy(load_causal_lm(model)),  # textgym's loaders share their objects: train a copy
        processing_class=copy.deepcopy(load_tokenizer(model)),
        reward_funcs=[TextGymReward("TextDetox-critic-v0", model=model, max_new_tokens=20)],
        args=GRPOConfig(
            output_dir="runs/trl_detox", max_completion_length=20, per_device_train_batch_size=4,
            num_generations=4, max_steps=2, use_cpu=True, report_to="none", logging_steps=1,
        ),
        train_dataset=dataset("detox"),  # columns prompt (the task's template applied), source
    )
    trainer.train()  # logs rewards/TextDetox-critic-v0/mean

Prompts. The reward needs each row's task input (and the reference, for summaries), not only the prompt text
the policy saw. It takes it from the row's ``source`` (and ``reference``) column, which :func:`dataset` writes
beside a ``prompt`` column formatted by the task's template (summaries add a line ``TL;DR:``); else from a
``prompt_index`` column (indices into the env's ``split``, checked against the prompt); else it reads the source
back from the prompt string through the task's template (tasks without a reference only).

Tokens. The env's tokenizer (its ``model=``) must be the policy's. TRL 1.16 passes ``completion_ids``, exactly the
sampled tokens (through the first EOS), and those are replayed; without them the completion strings are
re-tokenized without special tokens, and the return is that of the re-tokenized text. Each episode ends as the
env ends it, at the first EOS or at the length limit ``max_new_tokens``: give it TRL's
``max_completion_length``, and a longer completion is cut there, as the env would cut it; with ``None`` (the
default) the limit is each batch's longest completion, so nothing is cut. A completion that stops before the limit
without the env's EOS (a re-tokenized string, whose EOS TRL's decoding dropped, or one stopped by another stop
token) is closed with EOS, as a generation that stops early ends in the env; rewards that pay the EOS token (a
critic's ``default_reward``, +0.5 for summaries) count it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from textgym.envs.registration import task_of
from textgym.error import DataError, MissingPackageError
from textgym.tasks import PromptItem, get_items, get_task

__all__ = ["TextGymReward", "dataset"]

COLUMNS = ("source", "reference", "prompt_index")
"""The data-set columns the reward reads (see the module docstring)."""


class TextGymReward:
    """A TRL reward function: the episode return that the env ``env_id`` pays for each completion.

    Args:
        env_id: A textgym id, e.g. ``"TextDetox-critic-v0"`` (``textgym list`` shows them).
        max_new_tokens: The episodes' length limit: TRL's ``max_completion_length``, or ``None`` for each batch's
            longest completion (see the module docstring).
        name: The name TRL logs the reward under (``rewards/{name}/mean``); the env id by default.
        **env_kwargs: Arguments of the env (``model``, the policy's tokenizer; ``split``, ``scorer``,
            ``critic``, ``mode``, ``device``, ...), as for ``gym.make(env_id, ...)``.

    Raises:
        SettingsError: ``env_id`` is a registered id that is not textgym's. The env is built here once, so an
            argument it does not take fails here too, not in the middle of training.
    """

    def __init__(self, env_id: str, max_new_tokens: int | None = None, name: str | None = None, **env_kwargs: Any):
        task_of(env_id)  # a textgym id, or an error naming the fix
        if max_new_tokens is not None and (type(max_new_tokens) is not int or max_new_tokens < 1):
            raise ValueError(f"max_new_tokens must be a positive integer or None, got {max_new_tokens!r}.")
        self.env_id, self.max_new_tokens, self.env_kwargs = env_id, max_new_tokens, env_kwargs
        self.__name__ = name or env_id
        self._envs: gym.vector.VectorEnv | None = None
        self._shape: tuple[int, int] | None = None
        envs = self._vector(1, max_new_tokens or 1)
        self.task = envs.get_attr("task")[0]
        self.tokenizer = envs.get_attr("tokenizer")[0]
        self.eos_token_id = envs.get_attr("eos_token_id")[0]
        self.items = envs.get_attr("items")[0]

    def __call__(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        completion_ids: Sequence[Sequence[int]] | None = None,
        **columns: Any,
    ) -> list[float]:
        """The episode return of each (prompt, completion), as TRL calls a reward function.

        Args:
            prompts: The prompts as the trainer saw them (strings, or chat messages).
            completions: The completions (strings, or chat messages whose contents are joined).
            completion_ids: The sampled tokens of each completion; replayed instead of re-tokenizing the text.
            **columns: The batch's data-set columns (``source``, ``reference``, ``prompt_index`` are read) and
                TRL's other keywords (ignored).

        Returns:
            One float per completion.

        Raises:
            DataError: A row whose task input cannot be found (see the module docstring).
        """
        if not completions:
            return []
        items = self._items(prompts, columns, len(completions))
        rows = self._token_rows(completions, completion_ids)
        limit = self.max_new_tokens or max(1, *(len(row) for row in rows))
        rows = [self._episode(row, limit) for row in rows]
        envs = self._vector(len(rows), limit)
        envs.reset(options={"prompt": items[0]})
        for i in range(1, len(rows)):
            envs.reset(options={"prompt": items[i], "reset_mask": np.arange(len(rows)) == i})
        returns = np.zeros(len(rows))
        for t in range(max(len(row) for row in rows)):
            actions = np.array([row[t] if t < len(row) else self.eos_token_id for row in rows])
            returns += envs.step(actions)[1]  # a row that has ended idles: its action is ignored, its reward 0
        return returns.tolist()

    def close(self) -> None:
        """Closes the env (its scorer and critic stay cached in the process)."""
        if self._envs is not None:
            self._envs.close()
            self._envs, self._shape = None, None

    # -- helpers --------------------------------------------------------------------------------------------

    def _vector(self, num_envs: int, limit: int) -> gym.vector.VectorEnv:
        """The vector env for a batch, rebuilt when its size or limit changes (cheap: scorers, critics are cached)."""
        if self._shape != (num_envs, limit):
            self.close()
            self._envs = gym.make_vec(
                self.env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", autoreset_mode="disabled",
                max_new_tokens=limit, **self.env_kwargs,
            )  # fmt: skip
            self._shape = (num_envs, limit)
        return self._envs

    def _items(self, prompts: Sequence[Any], columns: dict[str, Any], n: int) -> list[PromptItem]:
        """Each row's prompt item: from its source (and reference) column, its prompt index, or its prompt."""
        for key, values in (("prompts", prompts), *((key, columns.get(key)) for key in COLUMNS)):
            if values is not None and len(values) != n:
                raise DataError(f"Got {len(values)} {key!r} values for {n} completions; give one per completion.")
        references = columns.get("reference") or [None] * n
        if columns.get("source") is not None:
            pairs = zip(columns["source"], references, strict=True)
            items = [PromptItem(source, reference) for source, reference in pairs]
        elif columns.get("prompt_index") is not None:
            pairs = zip(columns["prompt_index"], prompts, strict=True)
            items = [self._indexed(int(index), prompt) for index, prompt in pairs]
        else:
            pairs = zip(prompts, references, strict=True)
            items = [PromptItem(self._source_of(prompt), reference) for prompt, reference in pairs]
        if self.task.reference_key and any(item.reference is None for item in items):
            raise DataError(
                f"The {self.task.name} task scores against a reference: give the data set a 'reference' column "
                f"beside 'source' (textgym.integrations.trl.dataset({self.task.name!r}) writes both)."
            )
        return items

    def _indexed(self, index: int, prompt: Any) -> PromptItem:
        split = self.env_kwargs.get("split", "train")
        if not 0 <= index < len(self.items):
            raise DataError(f"prompt_index {index} is outside the {len(self.items)} items of split {split!r}.")
        item = self.items[index]
        if isinstance(prompt, str) and prompt != self.task.format_prompt(item):
            raise DataError(
                f"The prompt of prompt_index {index} is not the task's prompt of that item of split {split!r}: "
                "pass the env the data set's split= (and prompts_path=), or give 'source' columns instead."
            )
        return item

    def _source_of(self, prompt: Any) -> str:
        before, placeholder, after = self.task.prompt_template.partition("{source}")
        if isinstance(prompt, str) and placeholder and prompt.startswith(before) and prompt.endswith(after):
            return prompt[len(before) : len(prompt) - len(after)]
        raise DataError(
            f"Cannot tell the task input of the prompt {prompt!r}: give the data set a 'source' column (and "
            f"'reference' for summaries); textgym.integrations.trl.dataset({self.task.name!r}) writes them."
        )

    def _token_rows(self, completions: Sequence[Any], completion_ids: Sequence[Sequence[int]] | None) -> list[list]:
        if completion_ids is not None:
            if len(completion_ids) != len(completions):
                raise DataError(f"Got {len(completion_ids)} completion_ids rows for {len(completions)} completions.")
            return [[int(token) for token in row] for row in completion_ids]
        texts = [text if isinstance(text, str) else "".join(m["content"] for m in text) for text in completions]
        return [list(ids) for ids in self.tokenizer(texts, add_special_tokens=False).input_ids]

    def _episode(self, row: list[int], limit: int) -> list[int]:
        """The tokens the env steps: through the first EOS, at most ``limit``, closed with EOS when it stops early."""
        tokens = []
        for token in row[:limit]:
            tokens.append(token)
            if token == self.eos_token_id:
                return tokens
        return tokens if len(tokens) == limit else [*tokens, self.eos_token_id]


def dataset(task: str, split: str = "train", prompts_path: str | None = None):
    """A task's prompts as a ``datasets.Dataset`` for TRL, with the columns :class:`TextGymReward` reads.

    Args:
        task: A task name (``"sentiment"``, ``"detox"``, ``"summarize"``).
        split: ``"train"`` or ``"eval"``.
        prompts_path: A JSON-lines file of your own prompts (as the env's ``prompts_path``).

    Returns:
        Columns ``prompt`` (the task's template applied: what the policy sees), ``source`` and, for tasks with a
        reference output, ``reference``.
    """
    try:
        from datasets import Dataset
    except ImportError as error:
        raise MissingPackageError("dataset() needs the datasets package: pip install 'textgym[trl]'.") from error
    spec = get_task(task)
    items = get_items(task, split, prompts_path)
    columns = {"prompt": [spec.format_prompt(item) for item in items], "source": [item.source for item in items]}
    if spec.reference_key:
        columns["reference"] = [item.reference for item in items]
    return Dataset.from_dict(columns)
