"""The demo's report: acceptance checks, ``report.json``, ``report.md``, PNG plots, a stdout table.

Every figure in the markdown and on stdout comes from the ``results`` dict that is also written
as ``report.json``; the acceptance checks state plainly which targets were met and by how much
the others fell short.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from genrm_plugin.demo.checks import acceptance, top_accuracy
from genrm_plugin.evals.plots import plot_grouped_bars, plot_lines
from genrm_plugin.evals.tables import markdown_table, percent, percent_ci

JUDGE_ORDER = ("zero-shot", "warm-start", "bt", "genrm", "star-sft", "star-dpo", "cloud", "synthetic-critique-rm")
LABELS = {"zero-shot": "zero-shot (base)", "warm-start": "warm start (seed SFT)", "bt": "BT reward model",
          "genrm": "GenRM (no CoT)", "star-sft": "STaR-SFT (CoT)", "star-dpo": "STaR-DPO (CoT)",
          "cloud": "CLoud (critique + reward head)", "synthetic-critique-rm": "Synthetic-Critiques RM"}
SPLIT_LABELS = {"id": "ID", "ood": "OOD a-b", "long": "long a+b"}  # 2-digit sums; differences (transfer); 3-digit sums


def judge_rows(results: dict[str, Any]) -> list[list[Any]]:
    k = results["config"]["k"]
    rows = []
    for name in JUDGE_ORDER:
        if name not in results["judges"]:
            continue
        j = results["judges"][name]
        cells = [LABELS[name]]
        for split in SPLIT_LABELS:
            acc = j[split]["accuracy"]
            cells += [percent(acc.get("maj@1")), percent(acc.get(f"maj@{k}"))]
        cells += [percent(j["id"].get("parse_failure_rate")), percent(j["ood"].get("faithful_rate"))]
        rows.append(cells)
    return rows


def judge_headers(k: int) -> list[str]:
    splits = [f"{label} maj@{j}" for label in SPLIT_LABELS.values() for j in (1, k)]
    return ["judge", *splits, "parse fail (ID)", "OOD a-b recomputed right"]


def make_plots(results: dict[str, Any], folder: Path) -> dict[str, str]:
    k, judges, plots = results["config"]["k"], results["judges"], {}
    names = [n for n in JUDGE_ORDER if n in judges]
    plots["accuracy_by_judge"] = plot_grouped_bars(
        folder / "accuracy_by_judge.png", [LABELS[n].split(" (")[0] for n in names],
        {f"{label} ({'maj@%d' % k} CoT)": [top_accuracy(judges[n][split]) for n in names]
         for split, label in SPLIT_LABELS.items()},
        title="Preference accuracy by judge and split", ylabel="accuracy (%)", line=0.5,
    ).name
    cot = [n for n in names if judges[n]["id"]["accuracy"].get(f"maj@{k}") is not None and k > 1]
    if cot:
        series = {f"{n} {s.upper()}": [judges[n][s]["accuracy"]["maj@1"], judges[n][s]["accuracy"][f"maj@{k}"]]
                  for n in cot for s in SPLIT_LABELS}
        plots["accuracy_vs_k"] = plot_lines(folder / "accuracy_vs_k.png", [1, k], series,
                                            title="CoT judges: accuracy vs K", xlabel="K (votes per order)",
                                            ylabel="accuracy (%)").name
    star = results.get("star_curves") or {}
    if star:
        longest = max(len(c["accuracy"]) for c in star.values())
        series = {name: c["accuracy"] + [None] * (longest - len(c["accuracy"])) for name, c in star.items()}
        series.update({f"{name}: right verdicts faithful": [None] + c["right_verdict_faithful"] + [None] * (longest - 1 - len(c["right_verdict_faithful"]))
                       for name, c in star.items()})
        plots["star_iterations"] = plot_lines(folder / "star_iterations.png", list(range(longest)), series,
                                              title=f"STaR iterations (0 = warm start), ID maj@{k}",
                                              xlabel="iteration", ylabel="%").name
    if results.get("best_of_n"):
        bon = results["best_of_n"]
        plots["best_of_n"] = plot_lines(folder / "best_of_n.png", bon["n"],
                                        {"judge pick": bon["judge"], "random pick": bon["random"], "oracle": bon["oracle"]},
                                        title="Best-of-N on the base policy's samples", xlabel="N",
                                        ylabel="task accuracy (%)", log2_x=len(bon["n"]) > 1).name
    if results.get("grpo") and results["grpo"]["reward_curve"]:
        g = results["grpo"]
        steps = list(range(1, len(g["reward_curve"]) + 1))
        plots["grpo"] = plot_lines(folder / "grpo.png", steps,
                                   {"GenRM reward (P win vs reference)": g["reward_curve"],
                                    "task accuracy of the sampled answers": g["accuracy_curve"]},
                                   title="GRPO with GenRMReward", xlabel="step", ylabel="%").name
    return plots


def voting_lines(results: dict[str, Any]) -> list[str]:
    voting = results.get("voting_cost")
    if not voting:
        return []
    k, acc = voting["k"], voting["accuracy"]
    rows = [[f"fixed maj@{k}", voting["rules"]["cannot_flip"]["votes_fixed"], "100.0", "100.0"]]
    rows += [[rule, v["votes_used"], percent(v["vote_share"]), percent(v["agreement"])] for rule, v in voting["rules"].items()]
    return ["", f"## Voting cost ({voting['judge']}, {voting['pairs']} ID pairs, both orders)", "",
            "maj@K accuracy: " + ", ".join(f"{key} {percent(v)}" for key, v in acc.items()) + ".", "",
            markdown_table(["rule", "votes", "% of fixed", f"% agree with maj@{k}"], rows), "",
            "The adaptive rules are replayed on the recorded votes, in the judge's rounds (same votes, so "
            "the agreement measures the stopping rule alone); `bayes` and `predictive` at confidence "
            f"{voting.get('confidence', 0.95)} (`predictive`: stop once the remaining votes change the maj@{k} "
            "winner with at most 1 - confidence chance)."]


def best_of_n_lines(results: dict[str, Any], rounds: int, seed: int) -> list[str]:
    from genrm_plugin.demo.analysis import mean_interval

    bon = results.get("best_of_n")
    if not bon:
        return []
    curve = markdown_table(["N", "judge pick (reference)", "random pick", "oracle"],
                           [[n, percent(a), percent(b), percent(c)]
                            for n, a, b, c in zip(bon["n"], bon["judge"], bon["random"], bon["oracle"])])
    rows = []
    for name, outcomes in bon["strategies"].items():
        ci = mean_interval(outcomes, rounds, seed)
        rows.append([name, percent_ci(ci["mean"], ci["low"], ci["high"])])
    return ["", f"## Best-of-N ({bon['problems']} problems, judge {bon['judge_name']})", "", curve, "",
            f"Every strategy at N = {bon['n'][-1]} (task accuracy, 95% bootstrap interval; knockout and "
            "round-robin count repeated final answers once, with their multiplicity):", "",
            markdown_table(["strategy", "accuracy"], rows)]


def write_report(results: dict[str, Any], folder: Path) -> str:
    """Write report.json, report.md and the plots into ``folder``; return the stdout summary."""
    results["acceptance"] = acceptance(results)
    results["plots"] = make_plots(results, folder)
    (folder / "report.json").write_text(json.dumps(results, indent=1))
    config, k = results["config"], results["config"]["k"]
    base = results["base"]
    origin = "shipped with the package" if base.get("shipped") else "from cache" if base["cached"] else "pretrained in this run"
    lines = ["# genrm demo: a tiny judge learning in a verifiable world", "",
             f"Run: {'quick' if config['quick'] else 'full'}, seed {config['seed']}; base model {origin} "
             f"({base['parameters']:,} parameters); wall time {results['seconds']:.0f} s.", "",
             "## Judges", "", markdown_table(judge_headers(k), judge_rows(results)), "",
             "Splits: ID = 2-digit sums (all judge training data); OOD a-b = 2-digit differences, a skill "
             "the base model knows from its corpus but no judge training row shows (transfer of reasoning); "
             "long a+b = 3-digit sums (length generalisation, reported without a target). Accuracy: ties "
             "and abstentions count 1/2 (chance = 50%). *OOD a-b recomputed right*: share of the judge's "
             "rationales on differences whose recomputed result is the true one.", ""]
    for name, curve in (results.get("star_curves") or {}).items():
        lines.append(f"- {name}: ID maj@{k} by iteration (0 = warm start) "
                     + ", ".join(percent(a) for a in curve["accuracy"])
                     + "; share of right-verdict rationales that are faithful: " + ", ".join(percent(f) for f in curve["right_verdict_faithful"]))
    if results.get("star_curves"):
        lines.append("- STaR kept " + ("only the faithful ones whose candidate checks also hold (the world's rationale "
                                        "filter, `star_rationale_filter`)"
                                       if config.get("star_rationale_filter")
                                       else "all of them (verdict-only filter, as in the paper)") + ".")
    lines += voting_lines(results) + best_of_n_lines(results, config["bootstrap_rounds"], config["seed"])
    if results.get("grpo"):
        g = results["grpo"]
        lines += ["", "## GRPO with GenRMReward", "",
                  f"Policy task accuracy (sampled, T=1, {len(g['per_problem_before'])} problems): "
                  f"{percent(g['accuracy_before'])} before, {percent(g['accuracy_after'])} after {g['steps']} steps."]
    lines += ["", "## Acceptance", "", "Gains: point estimate [95% paired-bootstrap interval]." + (
        " Quick run: only the smoke checks are claimed." if config["quick"] else ""), "",
        markdown_table(["check", "met", "measured"], [[c["check"], mark(c, "yes", "NO"), c["measured"]]
                                                      for c in results["acceptance"]])]
    lines += ["", "## Timings (s)", "", markdown_table(["stage", "seconds"], [[s, f"{t:.1f}"] for s, t in results["timings"].items()])]
    lines += ["", "## Plots", ""] + [f"![{name}]({file})" for name, file in results["plots"].items()]
    (folder / "report.md").write_text("\n".join(lines) + "\n")
    summary = [markdown_table(judge_headers(k), judge_rows(results)), ""]
    summary += [f"[{mark(c, 'ok', 'NOT MET')}] {c['check']}: {c['measured']}" for c in results["acceptance"]]
    summary.append(f"report: {folder / 'report.md'}")
    return "\n".join(summary)


def mark(check: dict[str, Any], met: str, missed: str) -> str:
    """``met`` / ``missed`` for a claimed check; an unclaimed one (quick run) says so whatever its figure."""
    return (met if check["ok"] else missed) if check["claimed"] else "not claimed"
