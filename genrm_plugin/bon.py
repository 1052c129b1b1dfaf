"""Best-of-N selection with a pairwise generative judge.

Three strategies pick one of N candidates per prompt (all prompts of a call are judged in shared
batches, one judge call per round):

* ``reference``: each candidate against the prompt's reference answer (N comparisons); the score is
  P(candidate > reference) and the highest wins.
* ``knockout``: a single-elimination tournament over a bracket shuffled by ``seed`` (N - 1
  comparisons; an odd candidate out gets a bye); the score is the number of matches won.
* ``round_robin``: every pair (N(N-1)/2 comparisons), aggregated by ``copeland`` (wins, a tie or an
  all-abstain pair counting 1/2; ties broken by the summed win probabilities) or ``bradley_terry``
  (log-strengths fitted to the pairwise probabilities by minorise-maximise iterations).

Repeated answers: ``knockout`` and ``round_robin`` treat candidates with the same answer (identical
text, or the same ``answer_key``, e.g. the final answer the judge is shown) as ONE candidate with a
multiplicity: each distinct answer is judged once against each other one, so copies neither split
nor inflate a score (a lone answer that wins one comparison by judge error gains one win, not one
per copy of its opponent). The multiplicity breaks ties (in a match and in the final choice): the
judge decides, self-consistency settles what the judge leaves even.

An all-abstain comparison counts as a tie (:func:`genrm_plugin.reward.win_probability`); remaining
ties in the final choice are broken at random with ``seed`` (so the first-listed candidate gets no
advantage).

Any reward -- the pairwise :class:`~genrm_plugin.reward.GenRMReward` against references, or a
pointwise :class:`~genrm_plugin.critique_reward.CritiqueReward` -- picks through the reward core
(``reward.score_items``): :func:`best_of_n_by_reward` scores every candidate (N scores per prompt,
all prompts in one call) and takes the highest reward. For TRL's old
``BestOfNSampler(queries_to_scores=...)``, :class:`QueriesToScores` scores decoded "prompt +
response" strings the same way.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from itertools import combinations
from typing import Any, Callable, Sequence

from genrm_plugin.judge import GenerativeJudge
from genrm_plugin.reward import compare_unique, win_probability

STRATEGIES = ("reference", "knockout", "round_robin")
AGGREGATIONS = ("copeland", "bradley_terry")


@dataclass
class BestOfNResult:
    """The choice for one prompt.

    Fields:
        index: position of the chosen candidate.
        scores: one float per candidate (meaning depends on the strategy, see the module docstring).
        comparisons: pairwise comparisons asked of the judge for this prompt.
        strategy: the strategy used (``reward`` for :func:`best_of_n_by_reward`).
        multiplicity: per candidate, how many candidates share its answer (``knockout`` and
            ``round_robin``; ``None`` otherwise).
    """

    index: int
    scores: list[float]
    comparisons: int
    strategy: str = "reference"
    multiplicity: list[int] | None = None


def best_of_n(
    judge: GenerativeJudge,
    prompts: Sequence[str],
    candidates: Sequence[Sequence[str]],
    strategy: str = "reference",
    references: Sequence[str] | None = None,
    seed: int = 0,
    aggregation: str = "copeland",
    answer_key: Callable[[str], str] | None = None,
) -> list[BestOfNResult]:
    """Choose the best of ``candidates[i]`` for each ``prompts[i]`` (see the module docstring).

    ``answer_key``: candidates with the same key count as one candidate with a multiplicity in the
    ``knockout`` and ``round_robin`` strategies (default: identical text; pass e.g.
    ``JudgeConfig(...).prompt().shown_answer`` to group by the final answer the judge is shown).
    """
    _check(prompts, candidates, strategy, references, aggregation)
    if strategy == "reference":
        return _reference(judge, prompts, candidates, references, seed)
    groups = [AnswerGroups.of(c, answer_key) for c in candidates]
    if strategy == "knockout":
        return _knockout(judge, prompts, groups, seed)
    return _round_robin(judge, prompts, groups, seed, aggregation)


@dataclass
class AnswerGroups:
    """One prompt's candidates grouped by answer: ``texts[g]`` stands for ``count[g]`` candidates."""

    texts: list[str]
    count: list[int]
    group_of: list[int]

    @classmethod
    def of(cls, candidates: Sequence[str], answer_key: Callable[[str], str] | None) -> "AnswerGroups":
        key_of = answer_key or (lambda text: text)
        index: dict[str, int] = {}
        texts, count, group_of = [], [], []
        for text in candidates:
            g = index.setdefault(key_of(text), len(texts))
            if g == len(texts):
                texts.append(text)
                count.append(0)
            count[g] += 1
            group_of.append(g)
        return cls(texts, count, group_of)

    def result(self, group_scores: Sequence[float], winner: int, comparisons: int, strategy: str) -> BestOfNResult:
        """The chosen group's first candidate; every candidate gets its group's score."""
        return BestOfNResult(self.group_of.index(winner), [group_scores[g] for g in self.group_of], comparisons, strategy,
                             multiplicity=[self.count[g] for g in self.group_of])


def _p(pref) -> float:
    return win_probability(pref, required=True)  # an all-abstain comparison is a tie


def _argmax(scores: Sequence[float], rng: random.Random, *tie_breaks: Sequence[float]) -> int:
    keys = [(s, *(t[i] for t in tie_breaks)) for i, s in enumerate(scores)]
    best = max(keys)
    return rng.choice([i for i, k in enumerate(keys) if k == best])


def _reference(judge, prompts, candidates, references, seed) -> list[BestOfNResult]:
    rows = [(i, j) for i, cands in enumerate(candidates) for j in range(len(cands))]
    prefs, _ = compare_unique(
        judge, [prompts[i] for i, _ in rows], [candidates[i][j] for i, j in rows], [references[i] for i, _ in rows],
        seed=seed,
    )
    scores: list[list[float]] = [[0.0] * len(c) for c in candidates]
    for (i, j), pref in zip(rows, prefs):
        scores[i][j] = _p(pref)
    return [
        BestOfNResult(_argmax(s, random.Random(f"{seed}|{i}")), s, len(s), "reference") for i, s in enumerate(scores)
    ]


def _knockout(judge, prompts, groups: list[AnswerGroups], seed) -> list[BestOfNResult]:
    rngs = [random.Random(f"{seed}|{i}") for i in range(len(prompts))]
    brackets = []
    for rng, grouped in zip(rngs, groups):
        order = list(range(len(grouped.texts)))
        rng.shuffle(order)
        brackets.append(order)
    wins = [[0.0] * len(g.texts) for g in groups]
    round_index = 0
    while any(len(b) > 1 for b in brackets):
        matches = [(i, b[k], b[k + 1]) for i, b in enumerate(brackets) for k in range(0, len(b) - 1, 2)]
        prefs, _ = compare_unique(
            judge, [prompts[i] for i, _, _ in matches], [groups[i].texts[a] for i, a, _ in matches],
            [groups[i].texts[b] for i, _, b in matches], seed=seed + round_index,
        )
        winners: dict[int, list[int]] = {i: [] for i in range(len(brackets))}
        for (i, a, b), pref in zip(matches, prefs):
            p, count = _p(pref), groups[i].count
            w = a if p > 0.5 else b if p < 0.5 else a if count[a] > count[b] else b if count[b] > count[a] else rngs[i].choice((a, b))
            wins[i][w] += 1.0
            winners[i].append(w)
        brackets = [winners[i] + (b[-1:] if len(b) % 2 else []) if len(b) > 1 else b for i, b in enumerate(brackets)]
        round_index += 1
    return [g.result(w, b[0], len(w) - 1, "knockout") for g, b, w in zip(groups, brackets, wins)]


def _round_robin(judge, prompts, groups: list[AnswerGroups], seed, aggregation) -> list[BestOfNResult]:
    matches = [(i, a, b) for i, g in enumerate(groups) for a, b in combinations(range(len(g.texts)), 2)]
    prefs, _ = compare_unique(
        judge, [prompts[i] for i, _, _ in matches], [groups[i].texts[a] for i, a, _ in matches],
        [groups[i].texts[b] for i, _, b in matches], seed=seed,
    )
    matrices = [[[0.5] * len(g.texts) for _ in g.texts] for g in groups]
    for (i, a, b), pref in zip(matches, prefs):
        matrices[i][a][b], matrices[i][b][a] = _p(pref), 1.0 - _p(pref)
    results = []
    for i, (m, grouped) in enumerate(zip(matrices, groups)):
        n = len(m)
        borda = [sum(m[a][b] for b in range(n) if b != a) for a in range(n)]
        if aggregation == "copeland":
            scores = [sum(1.0 if m[a][b] > 0.5 else 0.5 if m[a][b] == 0.5 else 0.0 for b in range(n) if b != a)
                      for a in range(n)]
        else:
            scores = bradley_terry(m)
        winner = _argmax(scores, random.Random(f"{seed}|{i}"), grouped.count, borda)
        results.append(grouped.result(scores, winner, n * (n - 1) // 2, "round_robin"))
    return results


def bradley_terry(p: Sequence[Sequence[float]], prior: float = 0.01, iterations: int = 500, tol: float = 1e-10) -> list[float]:
    """Bradley-Terry log-strengths (mean 0) from a matrix of soft wins ``p[a][b]`` = P(a beats b).

    Minorise-maximise updates (Hunter 2004) with ``prior`` pseudo-wins per pair so that a candidate
    that never wins keeps a finite strength.
    """
    n = len(p)
    if n == 1:
        return [0.0]
    wins = [sum(p[a][b] + prior for b in range(n) if b != a) for a in range(n)]
    games = 1.0 + 2 * prior  # soft games per pair: p[a][b] + p[b][a] + priors
    strength = [1.0] * n
    for _ in range(iterations):
        new = [wins[a] / sum(games / (strength[a] + strength[b]) for b in range(n) if b != a) for a in range(n)]
        log_mean = sum(math.log(s) for s in new) / n
        new = [s / math.exp(log_mean) for s in new]
        done = max(abs(x - y) for x, y in zip(new, strength)) < tol
        strength = new
        if done:
            break
    return [math.log(s) for s in strength]


def best_of_n_by_reward(
    reward: Any,
    prompts: Sequence[str],
    candidates: Sequence[Sequence[str]],
    references: Sequence[str] | None = None,
    seed: int = 0,
) -> list[BestOfNResult]:
    """The candidate with the highest reward per prompt, every candidate scored by the reward core
    (``reward.score_items``, one call for all prompts): ``scores`` are the rewards (stand-ins for
    abstentions); ties are broken at random with ``seed``. ``references`` (one per prompt) are
    needed by a reward with ``needs_reference`` on unless it has a ``reference_fn``; a pointwise
    reward ignores them."""
    _check(prompts, candidates, "round_robin", None, "copeland")
    if references is not None:
        _check_references(prompts, references)
    rows = [(i, j) for i, cands in enumerate(candidates) for j in range(len(cands))]
    refs = None if references is None else [references[i] for i, _ in rows]
    items = reward.score_items([prompts[i] for i, _ in rows], [candidates[i][j] for i, j in rows], refs)
    scores: list[list[float]] = [[0.0] * len(c) for c in candidates]
    for (i, j), item in zip(rows, items):
        scores[i][j] = item.reward
    return [BestOfNResult(_argmax(s, random.Random(f"{seed}|{i}")), s, len(s), "reward") for i, s in enumerate(scores)]


class QueriesToScores:
    """A ``queries_to_scores`` callable for TRL's (pre-1.0) ``BestOfNSampler``: it receives decoded
    "prompt + response" strings and returns one float per string, the reward of the response from
    the reward core (``reward.score_items``: against its prompt's reference for
    :class:`~genrm_plugin.reward.GenRMReward`, an all-abstain judgment getting the stand-in; alone
    for a pointwise reward).

    Args:
        reward: the reward (:class:`~genrm_plugin.reward.GenRMReward`: judge, mapping,
            ``reference_fn``; or :class:`~genrm_plugin.critique_reward.CritiqueReward`).
        prompts: the known prompts; each query is matched to the longest one it starts with.
        references: one reference per prompt (default: ``reward.reference_fn``, cached; unused by a
            reward that needs no reference).
    """

    def __init__(self, reward: Any, prompts: Sequence[str], references: Sequence[str] | None = None) -> None:
        if references is not None and len(references) != len(prompts):
            raise ValueError(f"references ({len(references)}) and prompts ({len(prompts)}) differ in length")
        self.reward = reward
        self.prompts = sorted(set(prompts), key=len, reverse=True)
        self.reference_of = dict(zip(prompts, references)) if references is not None else None

    def __call__(self, queries: Sequence[str]) -> list[float]:
        prompts, responses = [], []
        for i, q in enumerate(queries):
            if not isinstance(q, str):
                raise TypeError(f"queries[{i}] must be a string, got {type(q).__name__}")
            prompt = next((p for p in self.prompts if q.startswith(p)), None)
            if prompt is None:
                raise ValueError(f"queries[{i}] does not start with any of the {len(self.prompts)} known prompts: {q[:80]!r}")
            prompts.append(prompt)
            responses.append(q[len(prompt):])
        references = None if self.reference_of is None else [self.reference_of[p] for p in prompts]
        return [s.reward for s in self.reward.score_items(prompts, responses, references)]


def _check(prompts: Sequence[str], candidates: Sequence[Sequence[Any]], strategy: str, references, aggregation) -> None:
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
    if len(prompts) != len(candidates):
        raise ValueError(f"prompts ({len(prompts)}) and candidates ({len(candidates)}) differ in length")
    for i, p in enumerate(prompts):
        if not isinstance(p, str):
            raise TypeError(f"prompts[{i}] must be a string, got {type(p).__name__}")
    for i, cands in enumerate(candidates):
        if isinstance(cands, str) or not isinstance(cands, Sequence) or len(cands) == 0:
            raise ValueError(f"candidates[{i}] must be a non-empty list of strings, got {cands!r:.80}")
        for j, c in enumerate(cands):
            if not isinstance(c, str):
                raise TypeError(f"candidates[{i}][{j}] must be a string, got {type(c).__name__}")
    if strategy == "reference":
        if references is None:
            raise ValueError("strategy='reference' needs references (one per prompt)")
        _check_references(prompts, references)


def _check_references(prompts: Sequence[str], references: Sequence[Any]) -> None:
    if len(references) != len(prompts):
        raise ValueError(f"references ({len(references)}) and prompts ({len(prompts)}) differ in length")
    for i, r in enumerate(references):
        if not isinstance(r, str):
            raise TypeError(f"references[{i}] must be a string, got {type(r).__name__}")
