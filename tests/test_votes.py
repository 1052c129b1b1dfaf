"""Vote aggregation, ties, all-abstain, swap combination and adaptive stopping (per order and joint)."""

import itertools
import math
import random

import pytest

from genrm_plugin.judge import GenerativeJudge, JudgeConfig
from genrm_plugin.testing import ScriptedBackend, always
from genrm_plugin.testing import split_judge_prompt
from genrm_plugin.votes import (
    VoteCount, beta_mass_above_half, combine_orders, combined_verdict, consistency_rate, is_decided, orders_decided,
    side, verdict_change_probability, winner_change_probability,
)


def counted(a, b, abstain=0):
    c = VoteCount()
    for v in ["A"] * a + ["B"] * b + [None] * abstain:
        c.add(v)
    return c


def of_labels(labels):
    """A VoteCount of a recorded label string ("A", "B", anything else abstains)."""
    c = VoteCount()
    for label in labels:
        c.add(label if label in "AB" else None)
    return c


def verdict(counts):
    """The item's combined verdict as the judge reports it: the side of combine_orders' p_a."""
    return side(combine_orders(*counts).p_a)


# Measured on the demo (seed 2): a position-biased judge names the second-shown answer in both orders
# (judge's labelling: order 1 votes "B" = B, the swapped order votes "B" = A) with three stray votes.
BIASED = ["B" * 32, "BBBBBBBBBBBBBBBBBBBABBBABBABBBBB"]


def test_vote_share_ties_and_all_abstain():
    assert counted(3, 1).probability() == 0.75
    assert counted(3, 1, 4).probability() == 0.75  # abstentions do not count
    tie = combine_orders(counted(2, 2))
    assert tie.p_a == 0.5 and tie.winner is None and not tie.abstained
    none = combine_orders(counted(0, 0, 5))
    assert none.p_a is None and none.abstained and none.winner is None and none.abstain == 5


def test_swap_combination():
    # order 1 (A,B): 3 of 4 for A -> 0.75; order 2 (B,A): 1 of 4 for the first shown (B) -> P(A)=0.75
    pref = combine_orders(counted(3, 1), counted(1, 3))
    assert pref.p_a == pytest.approx(0.75)
    assert pref.votes_a == 6 and pref.votes_b == 2 and pref.consistent is True
    assert pref.p_by_order == [0.75, 0.75]
    # position bias: always the first -> inconsistent, averages to 0.5
    biased = combine_orders(counted(4, 0), counted(4, 0))
    assert biased.p_a == 0.5 and biased.consistent is False
    # one order all-abstain -> the other order's probability
    half = combine_orders(counted(0, 0, 4), counted(1, 3))
    assert half.p_a == 0.75 and half.consistent is None
    assert combine_orders(counted(0, 0, 4), counted(0, 0, 4)).p_a is None
    assert consistency_rate([pref, biased, half]) == 0.5


def test_judge_with_position_biased_backend_is_inconsistent():
    judge = GenerativeJudge(always("A"), JudgeConfig(k=3))
    prefs = judge.compare(["q1", "q2"], ["a1", "a2"], ["b1", "b2"])
    assert all(p.p_a == 0.5 and p.consistent is False for p in prefs)
    assert consistency_rate(prefs) == 0.0
    unswapped = judge.compare(["q1"], ["a1"], ["b1"], swap=False)[0]
    assert unswapped.p_a == 1.0 and unswapped.votes_used == 3


def test_identical_items_are_judged_once():
    backend = always("B")
    judge = GenerativeJudge(backend, JudgeConfig(k=2, swap=False))
    prefs = judge.compare(["q"] * 5, ["a"] * 5, ["b"] * 5)
    assert [p.p_a for p in prefs] == [0.0] * 5
    assert backend.calls == [("generate", 1, 2)]


def test_beta_mass():
    assert beta_mass_above_half(1, 1) == pytest.approx(0.5)
    assert beta_mass_above_half(5, 1) == pytest.approx(1 - 0.5**5)
    assert beta_mass_above_half(3, 7) == pytest.approx(1 - beta_mass_above_half(7, 3))


def test_is_decided_rules():
    assert is_decided(counted(5, 0), k=8, rule="cannot_flip")  # lead 5 > 3 remaining
    assert not is_decided(counted(4, 1), k=8, rule="cannot_flip")  # lead 3 == 3 remaining: a tie is possible
    assert not is_decided(counted(5, 0), k=8, rule="off")
    assert is_decided(counted(4, 4), k=8, rule="off")
    assert is_decided(counted(6, 0), k=32, rule="bayes", confidence=0.95)
    assert not is_decided(counted(6, 0), k=32, rule="cannot_flip")
    with pytest.raises(ValueError, match="adaptive"):
        is_decided(counted(1, 0), k=3, rule="sometimes")


@pytest.mark.parametrize("k", [1, 4, 7, 8, 16])
@pytest.mark.parametrize("round_size", [1, 2, 3])
def test_adaptive_cannot_flip_agrees_with_full_k(k, round_size):
    rng = random.Random(k * 100 + round_size)
    streams = {}
    for item in range(60):
        bias = rng.random()
        streams[f"q{item}"] = [rng.choice(["[[A]]", "[[B]]", "junk"]) if rng.random() < 0.2
                               else ("[[A]]" if rng.random() < bias else "[[B]]") for _ in range(k)]

    def script(prompt, i):
        from genrm_plugin.testing import split_judge_prompt
        return streams[split_judge_prompt(prompt)[0]][i]

    prompts = list(streams)
    full = GenerativeJudge(ScriptedBackend(script), JudgeConfig(k=k, swap=False)).compare(prompts, ["a"] * 60, ["b"] * 60)
    backend = ScriptedBackend(script)
    adaptive = GenerativeJudge(
        backend, JudgeConfig(k=k, swap=False, adaptive="cannot_flip", round_size=round_size)
    ).compare(prompts, ["a"] * 60, ["b"] * 60)
    for f, a in zip(full, adaptive):
        assert f.votes_used == k and a.votes_used <= k
        if a.votes_used < k:  # stopped early: the full-K winner is the same
            assert a.winner == f.winner and a.winner is not None
        else:
            assert (a.votes_a, a.votes_b, a.abstain) == (f.votes_a, f.votes_b, f.abstain)
    if k >= 7:
        assert sum(a.votes_used for a in adaptive) < sum(f.votes_used for f in full)


def test_no_cot_probabilities():
    import math

    backend = ScriptedBackend(logprobs=lambda p: [math.log(0.3), math.log(0.1)])
    pref = GenerativeJudge(backend, JudgeConfig(mode="no_cot")).compare(["q"], ["a"], ["b"])[0]
    # each order: P(first) = 0.75; order 2 flipped -> 0.25; average 0.5, inconsistent
    assert pref.p_by_order == [pytest.approx(0.75), pytest.approx(0.25)]
    assert pref.p_a == pytest.approx(0.5) and pref.consistent is False
    assert backend.calls == [("choice_logprobs", 2, 1)]


def test_bad_inputs_name_the_field():
    judge = GenerativeJudge(always("A"), JudgeConfig(k=1))
    with pytest.raises(ValueError, match="answers_b"):
        judge.compare(["q", "q"], ["a", "a"], ["b"])
    with pytest.raises(TypeError, match=r"answers_a\[1\]"):
        judge.compare(["q", "q"], ["a", None], ["b", "b"])
    with pytest.raises(ValueError, match=r"hints\[0\]"):
        judge.compare(["q"], ["a"], ["b"], hints=["C"])
    with pytest.raises(ValueError, match="JudgeConfig.mode"):
        JudgeConfig(mode="fast")
    with pytest.raises(ValueError, match="JudgeConfig.k"):
        JudgeConfig(k=0)
    with pytest.raises(ValueError, match="top_p"):
        JudgeConfig(top_p=0)


def test_winner_change_probability_is_the_beta_binomial_chance_of_a_change():
    assert winner_change_probability(1, 0, 1) == pytest.approx(1 / 3)  # one vote to come; P(B) ~ Beta(1, 2) has mean 1/3
    assert winner_change_probability(5, 0, 3) == 0.0  # cannot flip: the lead exceeds the votes left
    assert winner_change_probability(2, 2, 10) == 1.0  # no leader yet
    assert winner_change_probability(0, 3, 5) == pytest.approx(winner_change_probability(3, 0, 5))

    def integrated(a: int, b: int, remaining: int, steps: int = 20000) -> float:
        needed = math.ceil((abs(a - b) + remaining) / 2)
        lead, trail = max(a, b), min(a, b)
        total = norm = 0.0
        for i in range(steps):
            p = (i + 0.5) / steps  # the trailing side's vote share
            density = p**trail * (1 - p) ** lead
            norm += density
            total += density * sum(math.comb(remaining, j) * p**j * (1 - p) ** (remaining - j)
                                   for j in range(needed, remaining + 1))
        return total / norm

    for a, b, remaining in [(4, 0, 28), (6, 2, 24), (9, 7, 16), (3, 1, 2)]:
        assert winner_change_probability(a, b, remaining) == pytest.approx(integrated(a, b, remaining), rel=1e-3)


def test_predictive_rule_stops_on_a_clear_lead_and_draws_on_a_close_count():
    assert is_decided(counted(6, 0), k=32, rule="predictive", confidence=0.99)
    assert not is_decided(counted(2, 0), k=32, rule="predictive", confidence=0.99)
    assert not is_decided(counted(9, 7), k=32, rule="predictive", confidence=0.99)  # bayes at 0.95 neither
    assert is_decided(counted(17, 13), k=32, rule="predictive", confidence=0.99)  # 2 left: 4 ahead cannot flip
    assert is_decided(counted(16, 12), k=32, rule="predictive", confidence=0.95)  # 4 left: a tie needs all 4
    assert not is_decided(counted(16, 12), k=32, rule="bayes", confidence=0.95)  # the share is near 1/2 (0.77)


def test_adaptive_predictive_judge_agrees_with_full_k_and_saves_votes():
    rng = random.Random(7)
    k, items = 32, 200
    streams = {}
    for item in range(items):
        bias = rng.choice([0.02, 0.1, 0.9, 0.98, rng.random()])
        streams[f"q{item}"] = ["junk" if rng.random() < 0.1 else ("[[A]]" if rng.random() < bias else "[[B]]")
                               for _ in range(k)]

    def script(prompt, i):
        from genrm_plugin.testing import split_judge_prompt
        return streams[split_judge_prompt(prompt)[0]][i]

    prompts = list(streams)
    full = GenerativeJudge(ScriptedBackend(script), JudgeConfig(k=k, swap=False)).compare(prompts, ["a"] * items, ["b"] * items)
    adaptive = GenerativeJudge(ScriptedBackend(script), JudgeConfig(
        k=k, swap=False, adaptive="predictive", confidence=0.99, round_size=2)).compare(prompts, ["a"] * items, ["b"] * items)
    agree = sum(f.winner == a.winner for f, a in zip(full, adaptive)) / items
    share = sum(a.votes_used for a in adaptive) / sum(f.votes_used for f in full)
    assert agree >= 0.97 and share < 0.6


def test_combined_verdict_is_the_side_of_the_combined_share():
    rng = random.Random(3)
    for _ in range(2000):
        counts = [counted(rng.randrange(5), rng.randrange(5), rng.randrange(2)) for _ in range(rng.choice([1, 2]))]
        original = [(c.a, c.a + c.b) if order == 0 else (c.b, c.a + c.b) for order, c in enumerate(counts)]
        expected = {"A": 1, "B": -1, None: None if combine_orders(*counts).p_a is None else 0}[verdict(counts)]
        assert combined_verdict(original) == expected


def test_joint_cannot_flip_is_exact_on_every_small_state():
    """Decided exactly when no completion of the remaining votes (A, B or abstain, per order) changes the verdict."""
    k = 3
    states = [(a, b, t - a - b) for t in range(k + 1) for a in range(t + 1) for b in range(t - a + 1)]
    for first, second in itertools.product(states, repeat=2):
        if sum(first) != sum(second):
            continue  # the judge draws both orders in lockstep
        counts = [counted(*first), counted(*second)]
        remaining = k - sum(first)
        finals = {verdict([counted(*(x + y for x, y in zip(first, extra1))), counted(*(x + y for x, y in zip(second, extra2)))])
                  for extra1 in _completions(remaining) for extra2 in _completions(remaining)}
        assert orders_decided(counts, k, "joint_cannot_flip") == (len(finals) == 1), (first, second)


def _completions(remaining):
    return [(a, b, remaining - a - b) for a in range(remaining + 1) for b in range(remaining - a + 1)]


def test_joint_rules_on_one_order_match_the_per_order_rules():
    for a, b, abstain in [(5, 0, 0), (4, 1, 0), (9, 7, 0), (16, 12, 0), (17, 13, 0), (6, 0, 2), (3, 3, 0)]:
        count = counted(a, b, abstain)
        assert is_decided(count, 8 if a + b + abstain <= 8 else 32, "joint_cannot_flip") == is_decided(
            count, 8 if a + b + abstain <= 8 else 32, "cannot_flip")
        if a != b:
            assert verdict_change_probability([count], 32) == pytest.approx(
                winner_change_probability(a, b, 32 - count.total))


def test_verdict_change_probability_matches_a_simulation():
    rng = random.Random(11)
    for first, second, k in [((0, 6, 0), (0, 6, 0), 32), ((5, 1, 0), (1, 4, 1), 16), ((3, 0, 0), (0, 3, 0), 8)]:
        counts = [counted(*first), counted(*second)]
        now, changed, runs = verdict(counts), 0, 20000
        for _ in range(runs):
            finals = []
            for c in counts:  # draw each order's share from its posterior, then its remaining votes
                p = rng.betavariate(1 + c.a, 1 + c.b)
                extra = sum(rng.random() < p for _ in range(k - c.total))
                finals.append(counted(c.a + extra, c.b + k - c.total - extra, c.abstain))
            changed += verdict(finals) != now
        assert verdict_change_probability(counts, k) == pytest.approx(changed / runs, abs=0.015)


def test_joint_rules_keep_the_measured_position_biased_verdict():
    from genrm_plugin.demo.analysis import adaptive_replay

    full = verdict([of_labels(labels) for labels in BIASED])
    assert full == "B" and combine_orders(*map(of_labels, BIASED)).p_a == pytest.approx(0.453125)
    # stopped early per order, both orders are unanimous and average to a tie: a per-order rule misses
    assert verdict([of_labels(labels[:6]) for labels in BIASED]) is None
    assert orders_decided([of_labels(labels[:6]) for labels in BIASED], 32, "predictive", 0.99)
    for rule in ("joint_cannot_flip", "joint_predictive"):
        for stop in range(2, 20, 2):  # a tie, unanimous so far: no joint rule stops before the first stray vote
            assert not orders_decided([of_labels(labels[:stop]) for labels in BIASED], 32, rule, 0.99), (rule, stop)
    consistent = {"votes": ["A" * 32, "B" * 32]}
    replay = adaptive_replay([{"votes": BIASED}, consistent], k=32, round_size=2, confidence=0.99)
    assert replay["predictive"]["agreement"] == 0.5
    assert replay["joint_predictive"]["agreement"] == replay["joint_cannot_flip"]["agreement"] == 1.0
    assert replay["joint_predictive"]["votes_used"] < 64 + 64  # the consistent pair stops early
    assert replay["joint_predictive"]["votes_fixed"] == 128


def scripted_orders(streams):
    """A scripted judge whose i-th vote on (question, first-shown answer) is streams[question][order][i]."""
    def script(prompt, i):
        question, first, _ = split_judge_prompt(prompt)
        label = streams[question][0 if first == "a" else 1][i]
        return f"[[{label}]]" if label in "AB" else "no verdict"
    return ScriptedBackend(script)


@pytest.mark.parametrize("rule,confidence", [("joint_cannot_flip", 0.95), ("joint_predictive", 0.99)])
def test_joint_adaptive_judge_agrees_with_full_k_and_counts_the_votes(rule, confidence):
    rng = random.Random(5)
    k, items = 32, 120
    streams = {}
    for item in range(items):
        bias = rng.choice([0.02, 0.98, "position", rng.random()])
        order_bias = [bias, 1 - bias] if bias != "position" else [0.03, 0.97]  # position: always the second shown
        streams[f"q{item}"] = ["".join("-" if rng.random() < 0.05 else ("A" if rng.random() < p else "B")
                                       for _ in range(k)) for p in order_bias]
    streams["q0"] = BIASED
    prompts = list(streams)
    full = GenerativeJudge(scripted_orders(streams), JudgeConfig(k=k)).compare(prompts, ["a"] * items, ["b"] * items)
    backend = scripted_orders(streams)
    adaptive = GenerativeJudge(backend, JudgeConfig(k=k, adaptive=rule, confidence=confidence, round_size=2)).compare(
        prompts, ["a"] * items, ["b"] * items)
    per_order = GenerativeJudge(scripted_orders(streams), JudgeConfig(k=k, adaptive="predictive", confidence=confidence,
                                                                      round_size=2)).compare(prompts, ["a"] * items, ["b"] * items)
    assert per_order[0].winner != full[0].winner  # the measured miss, on the judge itself
    assert adaptive[0].winner == full[0].winner
    agree = sum(f.winner == a.winner for f, a in zip(full, adaptive)) / items
    assert agree == 1.0 if rule == "joint_cannot_flip" else agree >= 0.98
    for question, pref in zip(prompts, adaptive):
        texts = [t for t in backend.drawn if split_judge_prompt(t)[0] == question]
        drawn = [backend.drawn[t] for t in texts]
        assert len(drawn) == 2 and drawn[0] == drawn[1] <= k  # both orders drawn in lockstep
        assert pref.votes_used == sum(drawn) == pref.votes_a + pref.votes_b + pref.abstain
        expected = [of_labels(streams[question][order][: drawn[0]]) for order in (0, 1)]
        assert (pref.votes_a, pref.votes_b, pref.abstain) == (
            expected[0].a + expected[1].b, expected[0].b + expected[1].a, expected[0].abstain + expected[1].abstain)
    share = sum(a.votes_used for a in adaptive) / sum(f.votes_used for f in full)
    assert share < (0.75 if rule == "joint_cannot_flip" else 0.4)
