"""The seam every dense reward shares: what a member computes, and the bookkeeping of paying it.

A *dense reward* turns a task's one sparse score per text into per-token rewards. Each member (uniform,
potential, attention, occlusion, critic; see :data:`textgym.rewards.REWARDS`) is a :class:`DenseReward`: it says
which queries it needs answered at a step (a prefix's potential, a critique, the score of a text with a clause left
out), answers a batch of them in one call, and turns the answers into the step's reward. Everything else lives
here, once, for the single wrapper and the vector wrapper alike:

- **Payment modes.** ``episode`` (hindsight): steps before the last pay 0, the last pays the episode's whole
  return and ``info["token_rewards"]`` holds each token's share (summing to that return), so agents that credit
  tokens retroactively can. ``prefix`` (online): rewards are paid during the episode as the change of a potential
  over the prefix, at clause boundaries; the return equals the ``episode`` mode's for the same text (with a
  discount of 1). A member declares which modes it has.
- **One batched call per step.** :class:`DenseRewardBook` gathers every sub-environment's queries of a step and
  asks the member once.
- **The cache.** Answers are kept by (member configuration, query), per member object, so a repeated prefix or text
  costs nothing; failed answers are not kept.
- **Faults.** A member's evaluation that raises, or an answer that is a :class:`Failure`, is counted in
  ``info["reward_stats"]["failures"]``, logged, and never crashes the env: a failed prefix pays nothing, a failed
  final answer makes the episode's return the extrinsic reward alone (what was paid is taken back, and
  ``info["reward_error"]`` says why); ``info["reward_fallback"]`` says that an answer failed in the episode.
  No silent wrong reward: a member whose shares do not sum to what it paid is a bug, logged and replaced by the
  fallback.
- **What agents read.** ``credit_token_rewards`` on the wrappers (see :class:`DenseRewardBook`), and the reward's
  name and mode, instead of peeking at a wrapper's internals or at the env id's spelling.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import numpy as np

from textgym.critics.alignment import token_char_ranges
from textgym.error import SettingsError, unknown_name
from textgym.tasks import PromptItem

log = logging.getLogger("textgym.rewards")

MODES = ("episode", "prefix")


@dataclass(frozen=True)
class Failure:
    """An answer that could not be had (a scorer or critic error, a timeout, garbage): the query's reason."""

    error: str


@dataclass(frozen=True)
class EnvSettings:
    """What a member needs to know of the environment it pays: the task, tokenizer and where models run."""

    task: str
    tokenizer: Any
    model_name: str
    device: str = "cpu"
    dtype: str = "float32"
    scorer: str | None = None
    scorer_kwargs: dict[str, Any] | None = None

    @classmethod
    def of_env(cls, env: Any) -> EnvSettings:
        """Reads the settings from a ``TextGenerationEnv`` (possibly wrapped)."""
        base = env.unwrapped
        scorer, scorer_kwargs = base.scorer_settings
        return cls(base.task.name, base.tokenizer, base.model_name, base.device, base.dtype, scorer, scorer_kwargs)

    @classmethod
    def of_vector_env(cls, envs: Any) -> EnvSettings:
        """Reads the settings from a vector of textgym envs (its first sub-environment's)."""
        names = ("task", "tokenizer", "model_name", "device", "dtype", "scorer_settings")
        task, tokenizer, model_name, device, dtype, (scorer, scorer_kwargs) = (envs.get_attr(n)[0] for n in names)
        return cls(task.name, tokenizer, model_name, device, dtype, scorer, scorer_kwargs)

    def get_scorer(self):
        """The env's own extrinsic scorer (built once per process)."""
        from textgym.tasks import get_scorer

        return get_scorer(self.task, self.scorer, self.scorer_kwargs, self.device, self.dtype)


@dataclass
class EpisodeState:
    """One episode as a dense reward sees it.

    Attributes:
        item: The prompt item.
        tokens: The tokens generated so far.
        paid: The sum of the rewards paid so far.
        payments: The reward paid at each step so far.
        fallback: Whether an answer failed in this episode.
        error: Why the last step's return fell back (set on the last step; None when it did not).
        memo: The member's own per-episode state (e.g. the last potential).
    """

    item: PromptItem = field(default_factory=lambda: PromptItem(""))
    tokens: list[int] = field(default_factory=list)
    paid: float = 0.0
    payments: list[float] = field(default_factory=list)
    fallback: bool = False
    error: str | None = None
    memo: dict[str, Any] = field(default_factory=dict)

    @property
    def source(self) -> str:
        """The prompt item's source text."""
        return self.item.source


@dataclass
class RewardStats:
    """Counts of a dense reward's work, per member object (one per wrapper; the vector wrapper's serves all its envs).

    Attributes:
        requests: Queries asked for.
        hits: Queries answered from the cache.
        calls: Batched evaluations made.
        evaluated: Queries sent to the evaluation.
        failures: Queries whose answer failed.
        bad_shares: Finished episodes whose token shares did not sum to what was paid (a member bug).
    """

    requests: int = 0
    hits: int = 0
    calls: int = 0
    evaluated: int = 0
    failures: int = 0
    bad_shares: int = 0

    def as_dict(self) -> dict[str, float]:
        """The counts and the cache hit rate."""
        return {**asdict(self), "hit_rate": self.hits / self.requests if self.requests else 0.0}


class DenseReward:
    """A way to turn a task's sparse score into per-token rewards; subclasses are the members.

    A member implements :meth:`queries` (what it needs answered at a step), :meth:`evaluate` (answers a batch of
    queries; hashable queries are cached), and :meth:`settle` (the step's reward from the answers, and at the end
    the per-token shares). It may add keys to the last step's info with :meth:`final_info`.

    Class attributes:
        name: The reward's name, as in the env ids (``Text{Task}-{name}-v0``).
        summary: One line for ``textgym list``.
        modes: The payment modes it has (``"episode"``, and ``"prefix"`` where it can pay online).
        cache_answers: Whether the base caches its answers (a member with its own cache turns this off).
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    modes: ClassVar[tuple[str, ...]] = ("episode",)
    cache_answers: ClassVar[bool] = True
    max_cache_entries: ClassVar[int] = 100_000

    def __init__(self, settings: EnvSettings, mode: str = "episode") -> None:
        if mode not in MODES:
            raise unknown_name("mode", mode, MODES)
        if mode not in self.modes:
            raise SettingsError(
                f"The {self.name!r} reward pays only in {' and '.join(self.modes)} mode, not {mode!r}; "
                f"drop mode= or use one of {self.modes}."
            )
        self.settings, self.task, self.mode = settings, settings.task, mode
        self.tokenizer = settings.tokenizer
        self.stats = RewardStats()
        self._cache: OrderedDict[Hashable, Any] = OrderedDict()

    # -- what a member implements ---------------------------------------------------------------------------

    def config_key(self) -> str:
        """Identifies the member's configuration (its answers are cached under it)."""
        return f"{type(self).__name__}:{self.task}:{self.mode}"

    def queries(self, state: EpisodeState, done: bool, extrinsic: float) -> list[Any]:
        """The queries to answer at this step, after its token was appended to ``state.tokens``.

        Hashable queries are cached. ``extrinsic`` is the env's score on the last step, 0 before.
        """
        return []

    def evaluate(self, queries: Sequence[Any]) -> list[Any]:
        """Answers queries (from any episodes) in one batch; an answer may be a :class:`Failure`."""
        raise NotImplementedError

    def settle(self, state: EpisodeState, answers: list[Any], done: bool, extrinsic: float) -> StepPayment:
        """The step's whole reward from this step's answers (``None`` for a failed one); at the end, the shares.

        The env's own reward (the extrinsic score on the last step, 0 before) is replaced by the returned one.
        Raise :class:`RewardUnavailable` at the end when the return cannot be computed (the episode falls back).
        """
        raise NotImplementedError

    def extrinsic_part(self, extrinsic: float) -> float:
        """The return of a fallen-back episode: the extrinsic reward as this member weighs it."""
        return extrinsic

    def final_info(self, state: EpisodeState, extrinsic: float) -> dict[str, Any]:
        """More keys for the last step's info (e.g. a critic's spans)."""
        return {}

    # -- helpers for members --------------------------------------------------------------------------------

    def text(self, tokens: Sequence[int]) -> str:
        """The decoded text of ``tokens`` (special tokens skipped), as the env decodes its completion."""
        return self.tokenizer.decode(list(tokens), skip_special_tokens=True)

    def token_ranges(self, tokens: Sequence[int]) -> list[tuple[int, int]]:
        """Each token's character range in the decoded text (see ``critics.alignment.token_char_ranges``)."""
        return token_char_ranges(self.tokenizer, list(tokens))

    # -- the cache ------------------------------------------------------------------------------------------

    def answer(self, queries: Sequence[Any]) -> list[Any]:
        """Answers queries through the cache, in one :meth:`evaluate` call for the misses; never raises."""
        self.stats.requests += len(queries)
        answers: list[Any] = [None] * len(queries)
        missing: dict[Hashable, list[int]] = {}
        for index, query in enumerate(queries):
            key = (self.config_key(), query) if self.cache_answers else index
            if self.cache_answers and key in self._cache:
                self._cache.move_to_end(key)
                answers[index] = self._cache[key]
                self.stats.hits += 1
            else:
                missing.setdefault(key, []).append(index)
        if missing:
            asked = [queries[indices[0]] for indices in missing.values()]
            self.stats.calls += 1
            self.stats.evaluated += len(asked)
            try:
                got = self.evaluate(asked)
                if len(got) != len(asked):
                    raise RuntimeError(f"{type(self).__name__}.evaluate gave {len(got)} answers for {len(asked)}")
            except Exception as error:  # a scorer or critic bug or outage must not crash a training run
                log.warning("%s failed on a batch of %d: %r", type(self).__name__, len(asked), error)
                got = [Failure(repr(error))] * len(asked)
            for (key, indices), value in zip(missing.items(), got, strict=True):
                for index in indices:
                    answers[index] = value
                if isinstance(value, Failure):
                    self.stats.failures += len(indices)
                elif self.cache_answers:
                    self._cache[key] = value
                    if len(self._cache) > self.max_cache_entries:
                        self._cache.popitem(last=False)
        return answers


@dataclass
class StepPayment:
    """A member's settlement of one step: the reward, and at the end each token's share of the return."""

    reward: float
    token_rewards: np.ndarray | None = None


class RewardUnavailable(Exception):
    """Raised by a member's ``settle`` at the end of an episode whose return it cannot compute (it falls back)."""


@dataclass
class StepResult:
    """What the book gives a wrapper for one sub-environment's step."""

    reward: float
    info: dict[str, Any] | None = None


class RewardViews:
    """What agents read from a dense reward wrapper (single or vector): its reward's name, mode and credit rule.

    The class using it sets ``reward`` (the member) and ``book`` (its :class:`DenseRewardBook`).
    """

    reward: DenseReward
    book: DenseRewardBook

    @property
    def reward_name(self) -> str:
        """The member's name."""
        return self.reward.name

    @property
    def mode(self) -> str:
        """The payment mode."""
        return self.reward.mode

    @property
    def credit_token_rewards(self) -> bool:
        """Whether agents should credit ``info["token_rewards"]`` onto the episode's steps (see the book)."""
        return self.book.credit_token_rewards


class DenseRewardBook:
    """The bookkeeping of one dense reward over ``num_envs`` episodes: queries, one batched answer, payments.

    Both wrappers drive one book: the single wrapper with one episode, the vector wrapper with one per
    sub-environment, so their rewards are the same arithmetic.

    ``credit_token_rewards`` is True when the step rewards are paid in hindsight (``episode`` mode): an agent that
    wants the dense signal must move ``info["token_rewards"]`` of the last step onto the episode's steps (summing
    to the same return). In ``prefix`` mode it is False: the step rewards are already dense, and the info's
    shares (same sum) are the member's hindsight view of the same episode.
    """

    def __init__(self, reward: DenseReward, num_envs: int = 1) -> None:
        self.reward = reward
        self.states = [EpisodeState() for _ in range(num_envs)]

    @property
    def credit_token_rewards(self) -> bool:
        """Whether agents should credit ``info["token_rewards"]`` onto the episode's steps (see the class)."""
        return self.reward.mode == "episode"

    def start(self, index: int, item: PromptItem) -> None:
        """Starts episode ``index`` on a prompt item."""
        self.states[index] = EpisodeState(item=item)

    def step(self, steps: Sequence[tuple[int, int, bool, float]]) -> list[StepResult]:
        """Pays one step of several episodes: ``(index, token, done, extrinsic score or 0)`` each, one batch."""
        member = self.reward
        counts: list[int] = []  # queries of each step
        flat: list[Any] = []
        for index, token, done, extrinsic in steps:
            state = self.states[index]
            state.tokens.append(token)
            queries = member.queries(state, done, extrinsic)
            counts.append(len(queries))
            flat += queries
        answers = member.answer(flat) if flat else []
        results, offset = [], 0
        for count, (index, _, done, extrinsic) in zip(counts, steps, strict=True):
            mine = answers[offset : offset + count]
            offset += count
            results.append(self._settle(self.states[index], mine, done, extrinsic))
        return results

    def _settle(self, state: EpisodeState, answers: list[Any], done: bool, extrinsic: float) -> StepResult:
        member = self.reward
        failed = [answer for answer in answers if isinstance(answer, Failure)]
        if failed:
            state.fallback = True
            log.warning("%s: %s; %s", member.name, failed[0].error, "it falls back" if done else "it pays nothing now")
        clean = [None if isinstance(answer, Failure) else answer for answer in answers]
        error = failed[0].error if failed else None
        shares = None
        try:
            if done and failed:
                raise RewardUnavailable(error)
            payment = member.settle(state, clean, done, extrinsic)
            reward, shares = float(payment.reward), payment.token_rewards
            if done and (shares is None or not np.isclose(float(np.sum(shares)), state.paid + reward, atol=1e-6)):
                member.stats.bad_shares += 1
                log.error("%s: token shares do not sum to the return paid; the episode falls back.", member.name)
                raise RewardUnavailable("token shares do not sum to the return")
        except RewardUnavailable as reason:
            if not done:
                raise
            error = error or str(reason)
            state.fallback = True
            reward = member.extrinsic_part(extrinsic) - state.paid  # take back what was paid
            shares = np.zeros(len(state.tokens))
            shares[-1] = member.extrinsic_part(extrinsic)
        state.paid += reward
        state.payments.append(reward)
        if not done:
            return StepResult(reward)
        state.error = error
        info = {
            "token_rewards": tuple(np.asarray(shares, dtype=np.float64).tolist()),  # a tuple: vector infos hold objects
            "dense_reward": state.paid - member.extrinsic_part(extrinsic),
            "reward_fallback": state.fallback,
            "reward_error": error,
            "reward_stats": member.stats.as_dict(),
            **member.final_info(state, extrinsic),
        }
        return StepResult(reward, info)
