"""The demo's acceptance checks: each target with its measured figure and, for a gain, its interval.

A gain holds only if it reaches its target *and* its 95% paired-bootstrap interval (same pairs or
problems, :func:`~genrm_plugin.demo.analysis.paired_gain`) clears zero. The two "no worse than"
checks (maj@K >= maj@1; STaR-DPO within 3 points of BT) hold on the point estimate, interval shown. The full run claims every
check. ``--quick`` trains at a reduced size where the targets are out of reach by design: it
claims only the smoke checks (marked ``smoke``: the pipeline ran end to end, every figure is in
the report, the protocol was learnt) and lists the others as not claimed, with their figures.
"""

from __future__ import annotations

from typing import Any, Callable

from genrm_plugin.demo.analysis import REPLAYED_RULES, mean_interval, paired_gain
from genrm_plugin.evals.tables import percent, percent_ci

COT_TRAINED = ("star-sft", "star-dpo")
TRANSFER_SPLIT = "ood"  # 2-digit differences: a skill the base knows, absent from every judge training row
WALL_LIMIT_S = 420  # full run with the shipped (or a cached) base; pretraining a new base is timed apart
QUICK_LIMIT_S = 180


def top_key(evaluation: dict[str, Any]) -> str:
    """``maj@K`` of the largest K evaluated (``maj@1`` for no-CoT and BT judges)."""
    return max(evaluation["accuracy"], key=lambda key: int(key.split("@")[1]))


def top_accuracy(evaluation: dict[str, Any]) -> float:
    return evaluation["accuracy"][top_key(evaluation)]


def top_credits(evaluation: dict[str, Any]) -> list[float]:
    return evaluation["credits"][top_key(evaluation)]


def best_cot_judge(judges: dict[str, Any]) -> str | None:
    """The trained CoT judge with the best ID accuracy (chosen on ID only; used as the reward too)."""
    trained = [j for j in COT_TRAINED if j in judges]
    return max(trained, key=lambda j: top_accuracy(judges[j]["id"])) if trained else None


def gain_text(gain: dict[str, float]) -> str:
    return f"{100 * gain['gain']:+.1f} points [{100 * gain['low']:+.1f}, {100 * gain['high']:+.1f}]"


def acceptance(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every check: ``check``, ``ok``, ``measured``, ``claimed`` (False: shown, not claimed at quick size)."""
    config, judges, checks = results["config"], results["judges"], []
    quick, rounds, seed = config["quick"], config["bootstrap_rounds"], config["seed"]

    def add(name: str, ok: bool, measured: str, smoke: bool = False) -> None:
        claimed = smoke or not quick
        label = name if claimed or smoke else f"{name} (full-size target, not claimed at quick size)"
        checks.append({"check": ("smoke: " if smoke else "") + label, "ok": bool(ok), "measured": measured,
                       "claimed": claimed})

    def gain(after: list[float], before: list[float]) -> dict[str, float]:
        return paired_gain(after, before, rounds, seed)

    base_seconds = 0.0 if results["base"]["cached"] else results["base"]["seconds"]
    seconds = results["seconds"] - base_seconds
    limit = QUICK_LIMIT_S if quick else WALL_LIMIT_S
    add(f"wall time <= {limit} s" + (" (base pretraining excluded)" if base_seconds else ""), seconds <= limit,
        f"{seconds:.0f} s" + (f" (+ {base_seconds:.0f} s pretraining the base)" if base_seconds else ""))
    if quick:
        smoke_checks(results, add)
    best = best_cot_judge(judges)
    if best is None:
        return checks
    k = f"maj@{config['k']}"
    ood = judges[best][TRANSFER_SPLIT]
    level = mean_interval(top_credits(ood), rounds, seed)
    add(f"OOD transfer (a-b, unseen skill): best CoT judge ({best}) {k} >= 75% (interval above chance)",
        level["mean"] >= 0.75 and level["low"] > 0.5, percent_ci(level["mean"], level["low"], level["high"]))
    for other, label in (("genrm", "no-CoT GenRM"), ("bt", "BT")):
        if other in judges:
            g = gain(top_credits(ood), top_credits(judges[other][TRANSFER_SPLIT]))
            add(f"OOD transfer: {best} >= {label} + 10 points", g["gain"] >= 0.10 and g["low"] > 0,
                f"{percent(top_accuracy(ood))} vs {percent(top_accuracy(judges[other][TRANSFER_SPLIT]))}: {gain_text(g)}")
    if "star-dpo" in judges and "bt" in judges:
        g = gain(top_credits(judges["star-dpo"]["id"]), top_credits(judges["bt"]["id"]))
        add("STaR-DPO within 3 points of BT in distribution (or above)", g["gain"] >= -0.03,
            f"{percent(top_accuracy(judges['star-dpo']['id']))} vs {percent(top_accuracy(judges['bt']['id']))}: {gain_text(g)}")
        fail = judges["star-dpo"]["id"].get("parse_failure_rate")
        add("STaR-DPO writes verdicts: parse failures <= 10% (ID, single rationales)", fail is not None and fail <= 0.10,
            percent(fail))
    id_acc = top_accuracy(judges[best]["id"])
    add(f"best trained CoT judge ({best}) ID {k} >= 85%", id_acc >= 0.85, percent(id_acc))
    star_gain = gain(judges[best]["id"]["credits"]["maj@1"], judges["warm-start"]["id"]["credits"]["maj@1"])
    add("STaR gain over the warm start (ID, maj@1) >= +10 points", star_gain["gain"] >= 0.10 and star_gain["low"] > 0,
        f"{percent(judges['warm-start']['id']['accuracy']['maj@1'])} -> "
        f"{percent(judges[best]['id']['accuracy']['maj@1'])}: {gain_text(star_gain)}")
    voting_gain = gain(top_credits(judges[best]["id"]), judges[best]["id"]["credits"]["maj@1"])
    add(f"{best}: {k} >= maj@1 (ID)", voting_gain["gain"] >= 0, gain_text(voting_gain))
    reward_checks(results, add, gain)
    return checks


def smoke_checks(results: dict[str, Any], add: Callable[..., None]) -> None:
    """What ``--quick`` claims: the pipeline ran end to end and wrote every figure; the protocol was learnt."""
    judges = results["judges"]
    complete = (all(set(j) >= {"id", "ood", "long"} for j in judges.values())
                and bool(results["best_of_n"]["strategies"]) and len(results["grpo"]["reward_curve"]) > 0
                and set(results["voting_cost"]["rules"]) == set(REPLAYED_RULES))
    add("every stage ran and reported its figures (judges x 3 splits, voting cost, Best-of-N strategies, GRPO)",
        complete, f"{len(judges)} judges, {len(results['best_of_n']['strategies'])} Best-of-N strategies, "
        f"{len(results['grpo']['reward_curve'])} GRPO steps", smoke=True)
    zero = judges["zero-shot"]["id"]["parse_failure_rate"]
    add("the zero-shot base never writes a verdict (parse failures > 90%)", zero > 0.9, percent(zero), smoke=True)
    trained = {name: top_accuracy(judges[name]["id"]) for name in ("bt", "genrm", *COT_TRAINED) if name in judges}
    leader = max(trained, key=trained.get)
    add("a trained judge beats the zero-shot base (ID)", trained[leader] > top_accuracy(judges["zero-shot"]["id"]),
        f"{leader} {percent(trained[leader])} vs {percent(top_accuracy(judges['zero-shot']['id']))}", smoke=True)


def reward_checks(results: dict[str, Any], add: Callable[..., None], gain: Callable[..., dict]) -> None:
    """Voting cost, Best-of-N and GRPO."""
    voting = results.get("voting_cost")
    if voting:
        rules = voting["rules"]
        met = [r for r, v in rules.items() if v["vote_share"] <= 0.40 and v["agreement"] >= 0.99]
        add(f"adaptive voting on {voting['judge']} (K={voting['k']}): <= 40% of the votes, >= 99% agreement with maj@{voting['k']}",
            bool(met), "; ".join(f"{r}: {percent(v['vote_share'])}% of votes, {percent(v['agreement'])}% agree"
                                 for r, v in rules.items()))
    bon = results.get("best_of_n")
    if bon:
        s = {name: (outcomes, sum(outcomes) / len(outcomes)) for name, outcomes in bon["strategies"].items()}
        judge, random_pick, majority = s["judge (reference)"], s["random"], s["majority vote (final answers)"]
        g, vs_majority = gain(judge[0], random_pick[0]), gain(judge[0], majority[0])
        add(f"Best-of-{bon['n'][-1]} with the judge beats random by >= 10 points", g["gain"] >= 0.10 and g["low"] > 0,
            f"{percent(judge[1])} vs {percent(random_pick[1])}: {gain_text(g)}; vs majority vote over final answers "
            f"{percent(majority[1])}: {gain_text(vs_majority)}")
    grpo = results.get("grpo")
    if grpo:
        g = gain(grpo["per_problem_after"], grpo["per_problem_before"])
        add("GRPO with GenRMReward raises the policy's accuracy", g["low"] > 0,
            f"{percent(grpo['accuracy_before'])} -> {percent(grpo['accuracy_after'])} ({grpo['steps']} steps): {gain_text(g)}")
