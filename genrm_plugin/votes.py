"""Vote arithmetic: counting, early stopping, and combining the two answer orders.

Pure functions over counts, so the rules are easy to test and fuzz.

Conventions (documented once, used everywhere):
* A vote is "A", "B" or ``None`` (abstain). P(A > B) is the vote share of A among non-abstaining
  votes. All-abstain gives ``None`` (no probability: the caller must treat the item as unscored).
* A tie (equal non-zero A and B votes) gives probability 0.5 and winner ``None``.
* Position swap: the second order judged (B, A); its probability is flipped (1 - p) and the two
  orders are averaged. If one order abstained entirely, the other order's probability is used.
  An item is position-consistent when both orders have a winner and they name the same answer.
* Early stopping: per order (:func:`is_decided`) or jointly on the item's combined verdict
  (:func:`orders_decided`, the ``joint_*`` rules), the only way to keep a swapped maj@K verdict
  that position bias leaves to a few stray votes.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Sequence

JOINT_RULES = ("joint_cannot_flip", "joint_predictive")
ADAPTIVE_RULES = ("off", "cannot_flip", "bayes", "predictive", *JOINT_RULES)


@dataclass
class VoteCount:
    """Votes for one item in one order."""

    a: int = 0
    b: int = 0
    abstain: int = 0
    rationales: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.a + self.b + self.abstain

    def add(self, vote: str | None, rationale: str | None = None) -> None:
        if vote == "A":
            self.a += 1
        elif vote == "B":
            self.b += 1
        else:
            self.abstain += 1
        if rationale is not None:
            self.rationales.append(rationale)

    def probability(self) -> float | None:
        """Vote share of A among non-abstaining votes; ``None`` if all abstained."""
        decided = self.a + self.b
        return self.a / decided if decided else None

    def winner(self) -> str | None:
        """"A", "B", or ``None`` for a tie or all-abstain."""
        if self.a > self.b:
            return "A"
        if self.b > self.a:
            return "B"
        return None


def is_decided(count: VoteCount, k: int, rule: str = "cannot_flip", confidence: float = 0.95) -> bool:
    """Whether drawing more votes (up to ``k`` in all) is no longer needed for ``count``.

    * ``off``: only when ``k`` votes are drawn.
    * ``cannot_flip``: the leader's margin exceeds the votes still to draw, so even if all of them
      went to the other side the full-``k`` majority (winner) would be the same.
    * ``bayes``: the posterior Beta(1 + a, 1 + b) puts at least ``confidence`` mass on one side of
      1/2 (a sequential test; it may stop where ``cannot_flip`` would not, at the stated confidence).
    * ``predictive``: the chance that the votes still to draw change the full-``k`` winner is at
      most ``1 - confidence`` (:func:`winner_change_probability`): it tests what early stopping must keep,
      the maj@``k`` verdict, rather than which side of 1/2 the vote share lies on, so it draws more
      where the count is close and fewer on a clear lead with few votes left.
    * ``joint_cannot_flip``, ``joint_predictive``: :func:`orders_decided` on this one order.
    """
    if rule not in ADAPTIVE_RULES:
        raise ValueError(f"adaptive rule must be one of {ADAPTIVE_RULES}, got {rule!r}")
    if rule in JOINT_RULES:
        return orders_decided([count], k, rule, confidence)
    remaining = k - count.total
    if remaining <= 0:
        return True
    if rule == "off":
        return False
    if abs(count.a - count.b) > remaining:
        return True
    if rule == "bayes" and count.a + count.b > 0:
        mass_a = beta_mass_above_half(1 + count.a, 1 + count.b)
        return mass_a >= confidence or mass_a <= 1 - confidence
    if rule == "predictive" and count.a != count.b:
        return winner_change_probability(count.a, count.b, remaining) <= 1 - confidence
    return False


def winner_change_probability(a: int, b: int, remaining: int) -> float:
    """P(the full-count winner is not today's leader) after ``remaining`` more votes, given ``a``
    and ``b`` votes so far: the Beta(1 + a, 1 + b) posterior's predictive (beta-binomial) chance
    that the trailing side catches up (a tie counts as a change). Every remaining vote is taken as
    decisive (abstentions only make a change less likely), so the figure is an upper bound."""
    if a == b:
        return 1.0
    lead, trail = max(a, b), min(a, b)
    needed = math.ceil((lead - trail + remaining) / 2)  # trailing votes among the remaining to draw level
    if needed > remaining:
        return 0.0
    prior = _log_beta(1 + trail, 1 + lead)
    return min(1.0, sum(
        math.comb(remaining, j) * math.exp(_log_beta(1 + trail + j, 1 + lead + remaining - j) - prior)
        for j in range(needed, remaining + 1)
    ))


def orders_decided(counts: Sequence[VoteCount], k: int, rule: str = "joint_predictive",
                   confidence: float = 0.95) -> bool:
    """Whether drawing more votes (up to ``k`` per order) is no longer needed for one item judged
    in ``counts`` = [first order] or [first order, swapped order] (the swapped order's votes as the
    judge cast them, first-shown = "A"; :func:`combine_orders` flips them).

    The joint rules decide on the item's combined verdict -- the side of 1/2 of the swap-combined
    P(A > B), a tie (exactly 1/2) and all-abstain being verdicts of their own -- which no per-order
    rule can keep: two unanimous but position-biased orders average to a tie that a few stray
    votes of the full count would break.

    * ``joint_cannot_flip``: no way of casting the votes still to draw (A, B or abstain, in each
      order) changes the combined verdict.
    * ``joint_predictive``: the chance that they change it is at most ``1 - confidence``
      (:func:`verdict_change_probability`).
    * a per-order rule: every order is decided by :func:`is_decided`.
    """
    if not 1 <= len(counts) <= 2:
        raise ValueError(f"orders_decided takes one or two orders' counts, got {len(counts)}")
    if rule not in JOINT_RULES:
        return all(is_decided(count, k, rule, confidence) for count in counts)
    if all(count.total >= k for count in counts):
        return True
    if _verdict_fixed(counts, k):
        return True
    return rule == "joint_predictive" and verdict_change_probability(counts, k) <= 1 - confidence


def _original_votes(count: VoteCount, order: int) -> tuple[int, int]:
    """(votes for A, votes for B) of one order in the original labelling (order 1 is swapped)."""
    return (count.b, count.a) if order == 1 else (count.a, count.b)


def _verdict_fixed(counts: Sequence[VoteCount], k: int) -> bool:
    """The joint cannot-flip test: the combined share stays on one side of 1/2 whatever comes --
    each order's share lies between all remaining votes against A and all for A."""
    lows, highs = [], []
    for order, count in enumerate(counts):
        remaining = max(k - count.total, 0)
        a, b = _original_votes(count, order)
        if a + b == 0 and remaining:
            return False  # an order without a decisive vote may still end anywhere in [0, 1], or none
        if a + b:
            lows.append(Fraction(a, a + b + remaining))
            highs.append(Fraction(a + remaining, a + b + remaining))
    half = Fraction(1, 2)
    return bool(lows) and (sum(lows) / len(lows) > half or sum(highs) / len(highs) < half)


def verdict_change_probability(counts: Sequence[VoteCount], k: int) -> float:
    """P(the combined verdict after drawing up to ``k`` votes per order differs from today's) for
    one item's ``counts`` (as in :func:`orders_decided`). Each order's remaining votes follow the
    beta-binomial predictive of its Beta(1 + a, 1 + b) posterior, the orders independently, and
    every remaining vote is taken as decisive (abstentions only keep shares where they are)."""
    now = combined_verdict([(a, a + b) for a, b in (_original_votes(c, order) for order, c in enumerate(counts))])
    outcomes = [_final_votes(count, k, order) for order, count in enumerate(counts)]
    change = sum(math.prod(p for p, _ in combo) for combo in itertools.product(*outcomes)
                 if combined_verdict([votes for _, votes in combo]) != now)
    return min(1.0, change)


def _final_votes(count: VoteCount, k: int, order: int) -> list[tuple[float, tuple[int, int]]]:
    """(probability, (A votes, decisive votes)) of each final count of one order, A in the original
    labelling: the beta-binomial predictive of the remaining votes, all taken as decisive."""
    remaining = max(k - count.total, 0)
    a, b = _original_votes(count, order)
    prior = _log_beta(1 + a, 1 + b)
    return [(math.comb(remaining, j) * math.exp(_log_beta(1 + a + j, 1 + b + remaining - j) - prior),
             (a + j, a + b + remaining)) for j in range(remaining + 1)]


def combined_verdict(a_votes: Sequence[tuple[int, int]]) -> int | None:
    """The swap-combined verdict from each order's (A votes, decisive votes) in the original
    labelling, in exact integer arithmetic: 1 (A), -1 (B), 0 (a tie: the mean share is 1/2) or
    ``None`` (every order abstained) -- :func:`side` of :func:`combine_orders`' ``p_a``."""
    known = [(a, n) for a, n in a_votes if n > 0]
    if not known:
        return None
    common = math.prod(n for _, n in known)
    twice_sum, count_times = sum(2 * a * (common // n) for a, n in known), len(known) * common
    return (twice_sum > count_times) - (twice_sum < count_times)


def _log_beta(x: float, y: float) -> float:
    return math.lgamma(x) + math.lgamma(y) - math.lgamma(x + y)


def beta_mass_above_half(alpha: int, beta: int) -> float:
    """P(X > 1/2) for X ~ Beta(alpha, beta) with integer parameters (exact binomial sum)."""
    n = alpha + beta - 1
    # P(X <= x) = P(Binomial(n, x) >= alpha), so P(X > 1/2) = P(Binomial(n, 1/2) <= alpha - 1)
    total = sum(math.comb(n, j) for j in range(0, alpha))
    return total / 2**n


@dataclass
class Preference:
    """The judge's preference between answer A and answer B for one item.

    Fields:
        p_a: P(A > B) in [0, 1], or ``None`` when every vote (in every order) abstained.
        votes_a, votes_b, abstain: votes for A, for B and abstentions, over all orders, counted
            in the original labelling (a vote for the first-shown answer in the swapped order
            counts for B).
        votes_used: votes drawn (less than k per order when adaptive voting stopped early).
        consistent: both orders name the same winner (``None`` if not swapped or undecided).
        p_by_order: probability from each order, in the original labelling.
        rationales: the judge's raw outputs, first order first.
    """

    p_a: float | None
    votes_a: int = 0
    votes_b: int = 0
    abstain: int = 0
    votes_used: int = 0
    consistent: bool | None = None
    p_by_order: list[float | None] = field(default_factory=list)
    rationales: list[str] = field(default_factory=list)

    @property
    def winner(self) -> str | None:
        if self.p_a is None or self.p_a == 0.5:
            return None
        return "A" if self.p_a > 0.5 else "B"

    @property
    def abstained(self) -> bool:
        return self.p_a is None


def flip_label(label: str | None) -> str | None:
    """The other answer's label ("A" <-> "B"); ``None`` stays ``None``."""
    return {"A": "B", "B": "A"}.get(label) if label is not None else None


def flip_probability(p: float | None) -> float | None:
    """P(A > B) seen from the other side: 1 - p (``None`` stays ``None``)."""
    return None if p is None else 1.0 - p


def side(p: float | None) -> str | None:
    """The answer a probability favours: "A" above 1/2, "B" below, ``None`` at 1/2 or without one."""
    return None if p is None or p == 0.5 else ("A" if p > 0.5 else "B")


def flip_preference(pref: Preference) -> Preference:
    """The same judgment with the answers' labels exchanged (A <-> B); rationales are dropped."""
    return Preference(
        p_a=flip_probability(pref.p_a),
        votes_a=pref.votes_b,
        votes_b=pref.votes_a,
        abstain=pref.abstain,
        votes_used=pref.votes_used,
        consistent=pref.consistent,
        p_by_order=[flip_probability(p) for p in reversed(pref.p_by_order)],
    )


def combine_probabilities(p_first: float | None, p_swapped: float | None = None, swapped: bool = False) -> Preference:
    """A :class:`Preference` from P(first shown wins) in each order judged.

    ``p_first`` is P(A > B) with A shown first; ``p_swapped`` is P(first shown wins) in the swapped
    order (B shown first), as the judge reported it (flipped here). Without ``swapped`` only the
    first order counts. One order without a probability leaves the other's; none leaves ``None``.
    """
    if not swapped:
        return Preference(p_a=p_first, p_by_order=[p_first])
    p_second = flip_probability(p_swapped)
    known = [p for p in (p_first, p_second) if p is not None]
    w1, w2 = side(p_first), side(p_second)
    return Preference(
        p_a=sum(known) / len(known) if known else None,
        consistent=(w1 == w2) if (w1 is not None and w2 is not None) else None,
        p_by_order=[p_first, p_second],
    )


def combine_orders(first: VoteCount, swapped: VoteCount | None = None) -> Preference:
    """A :class:`Preference` from the votes of the original order and (optionally) the swapped one
    (probabilities combined by :func:`combine_probabilities`; counts in the original labelling)."""
    pref = combine_probabilities(first.probability(), None if swapped is None else swapped.probability(), swapped is not None)
    orders = [first] if swapped is None else [first, swapped]
    pref.votes_a = first.a + (swapped.b if swapped is not None else 0)
    pref.votes_b = first.b + (swapped.a if swapped is not None else 0)
    pref.abstain = sum(c.abstain for c in orders)
    pref.votes_used = sum(c.total for c in orders)
    pref.rationales = [r for c in orders for r in c.rationales]
    return pref


def consistency_rate(preferences: list[Preference]) -> float | None:
    """Share of position-consistent items among those where consistency is defined."""
    defined = [p.consistent for p in preferences if p.consistent is not None]
    return sum(defined) / len(defined) if defined else None
