"""The demo's statistics: per-item outcomes, paired-bootstrap intervals of gains, voting cost.

* :func:`paired_gain` -- the mean difference of two paired outcome lists (same pairs, same
  problems) with a 95% percentile interval from a paired bootstrap (pairs resampled together);
  a gain "holds" only where the whole interval clears zero.
* :func:`adaptive_replay` -- the judge's adaptive rules (:func:`genrm_plugin.votes.orders_decided`,
  in rounds of ``JudgeConfig.round_size`` as :class:`~genrm_plugin.judge.GenerativeJudge` draws:
  each order on its own for a per-order rule, both orders in lockstep for a joint one) replayed on
  recorded fixed-K votes: votes used and agreement with the full-K verdict. Replaying isolates the
  stopping rule from sampling noise (both see the same votes).
"""

from __future__ import annotations

import random
from typing import Any, Sequence

from genrm_plugin.evals.intervals import percentile_interval
from genrm_plugin.votes import ADAPTIVE_RULES, JOINT_RULES, VoteCount, combine_orders, orders_decided, side

LEVEL = 0.95


def paired_gain(after: Sequence[float], before: Sequence[float], rounds: int, seed: int) -> dict[str, float]:
    """``mean(after) - mean(before)`` over paired items, with its 95% paired-bootstrap interval."""
    if len(after) != len(before) or not after:
        raise ValueError(f"paired_gain needs two equally long, non-empty lists, got {len(after)} and {len(before)}")
    diffs = [a - b for a, b in zip(after, before)]
    n, rng = len(diffs), random.Random(f"bootstrap|{seed}")
    means = [sum(diffs[rng.randrange(n)] for _ in range(n)) / n for _ in range(rounds)]
    low, high = percentile_interval(means, LEVEL)
    return {"gain": sum(diffs) / n, "low": low, "high": high, "items": n}


def mean_interval(values: Sequence[float], rounds: int, seed: int) -> dict[str, float]:
    """The mean of ``values`` with its 95% bootstrap interval (a gain over the constant 0)."""
    gain = paired_gain(values, [0.0] * len(values), rounds, seed)
    return {"mean": gain["gain"], "low": gain["low"], "high": gain["high"], "items": gain["items"]}


REPLAYED_RULES = tuple(rule for rule in ADAPTIVE_RULES if rule != "off")


def adaptive_replay(records: Sequence[dict[str, Any]], k: int, round_size: int, rules: Sequence[str] = REPLAYED_RULES,
                    confidence: float = 0.95) -> dict[str, dict[str, Any]]:
    """For each rule: votes used (share of the fixed 2K per pair) and agreement of its verdict with
    the full-K one, replaying the votes of a maj@``k`` evaluation in the order they were drawn."""
    out = {}
    for rule in rules:
        used = agree = 0
        for record in records:
            counts = _stopped([labels[:k] for labels in record["votes"]], k, rule, round_size, confidence)
            full = [_count(labels[:k]) for labels in record["votes"]]
            used += sum(c.total for c in counts)
            agree += side(combine_orders(*counts).p_a) == side(combine_orders(*full).p_a)
        fixed = sum(len(labels[:k]) for record in records for labels in record["votes"])
        out[rule] = {"votes_used": used, "votes_fixed": fixed, "vote_share": used / fixed if fixed else None,
                     "agreement": agree / len(records) if records else None, "pairs": len(records)}
    return out


def _count(labels: str) -> VoteCount:
    count = VoteCount()
    for label in labels:
        count.add(label if label in "AB" else None)
    return count


def _stopped(orders: Sequence[str], k: int, rule: str, round_size: int, confidence: float) -> list[VoteCount]:
    """The votes an adaptive judge would have drawn of each order's labels in ``orders`` before ``rule``
    stopped it: a joint rule stops both orders together, a per-order rule each on its own."""
    counts = [VoteCount() for _ in orders]
    groups = [list(range(len(orders)))] if rule in JOINT_RULES else [[order] for order in range(len(orders))]
    for group in groups:
        for start in range(0, max(len(orders[order]) for order in group), round_size):
            for order in group:
                for label in orders[order][start : start + round_size]:
                    counts[order].add(label if label in "AB" else None)
            if orders_decided([counts[order] for order in group], k, rule, confidence):
                break
    return counts
