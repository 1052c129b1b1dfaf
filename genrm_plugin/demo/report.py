"""The demo's report: acceptance checks, ``report.json``, ``report.md``, PNG plots, a stdout table.

Every figure in the markdown and on stdout comes from the ``results`` dict that is also written
as ``report.json``; the acceptance checks state plainly which targets were met and by how much
the others fell short.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from genrm_plugin.evals.plots import plot_grouped_bars, plot_lines
from genrm_plugin.evals.tables import markdown_table, percent

COT_TRAINED = ("star-sft", "star-dpo")
JUDGE_ORDER = ("zero-shot", "warm-start", "bt", "genrm", "star-sft", "star-dpo")
LABELS = {"zero-shot": "zero-shot (base)", "warm-start": "warm start (seed SFT)", "bt": "BT reward model",
          "genrm": "GenRM (no CoT)", "star-sft": "STaR-SFT (CoT)", "star-dpo": "STaR-DPO (CoT)"}


def top_accuracy(evaluation: dict[str, Any]) -> float:
    """The accuracy at the largest K evaluated (maj@1 for no-CoT and BT judges)."""
    acc = evaluation["accuracy"]
    return acc[max(acc, key=lambda k: int(k.split("@")[1]))]


CHANCE_MARGIN = 0.55  # OOD accuracy below this is indistinguishable from chance on 128 pairs


def acceptance(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's acceptance targets, each with the measured value and whether it holds."""
    config, judges, checks = results["config"], results["judges"], []

    def add(name: str, ok: bool | None, measured: str) -> None:
        checks.append({"check": name, "ok": ok, "measured": measured})

    limit = 120 if config["quick"] else (360 if results["base"]["cached"] else 600)
    add(f"wall time <= {limit} s ({'quick' if config['quick'] else 'warm' if results['base']['cached'] else 'cold'} run)",
        results["seconds"] <= limit, f"{results['seconds']:.0f} s")
    cot = [j for j in COT_TRAINED if j in judges]
    if cot:
        best = max(cot, key=lambda j: top_accuracy(judges[j]["id"]))
        k = f"maj@{config['k']}"
        id_acc = top_accuracy(judges[best]["id"])
        add(f"best trained CoT judge ({best}) ID accuracy {k} >= 85%", id_acc >= 0.85, percent(id_acc))
        warm, star1 = judges["warm-start"]["id"]["accuracy"], judges[best]["id"]["accuracy"]
        gain = star1["maj@1"] - warm["maj@1"]
        add("STaR gain over the warm start (ID, maj@1: one sampled rationale) >= 10 points", gain >= 0.10,
            f"{100 * gain:+.1f} points ({percent(warm['maj@1'])} -> {percent(star1['maj@1'])}); at {k}: "
            f"{percent(top_accuracy(judges['warm-start']['id']))} -> {percent(id_acc)}")
        maj1 = judges[best]["id"]["accuracy"]["maj@1"]
        add(f"{best}: {k} >= maj@1 (ID)", id_acc >= maj1, f"{percent(maj1)} -> {percent(id_acc)}")
        if "genrm" in judges:
            cot_ood, plain_ood = top_accuracy(judges[best]["ood"]), top_accuracy(judges["genrm"]["ood"])
            at_chance = cot_ood < CHANCE_MARGIN  # a tie at chance shows no generalisation
            add("CoT GenRM >= no-CoT GenRM out of distribution (and above chance)", cot_ood >= plain_ood and not at_chance,
                f"{percent(cot_ood)} vs {percent(plain_ood)} ({100 * (cot_ood - plain_ood):+.1f} points)"
                + ("; the CoT judge is at chance OOD" if at_chance else ""))
    if results.get("best_of_n"):
        bon = results["best_of_n"]
        gain = bon["judge"][-1] - bon["random"][-1]
        add(f"Best-of-{bon['n'][-1]} with the judge beats random by >= 10 points", gain >= 0.10,
            f"{percent(bon['judge'][-1])} vs {percent(bon['random'][-1])} ({100 * gain:+.1f} points; oracle {percent(bon['oracle'][-1])})")
    if results.get("grpo"):
        g = results["grpo"]
        add("GRPO with GenRMReward raises the policy's accuracy", g["accuracy_after"] > g["accuracy_before"],
            f"{percent(g['accuracy_before'])} -> {percent(g['accuracy_after'])} ({g['steps']} steps)")
    return checks


def judge_rows(results: dict[str, Any]) -> list[list[Any]]:
    k = results["config"]["k"]
    rows = []
    for name in JUDGE_ORDER:
        if name not in results["judges"]:
            continue
        j = results["judges"][name]
        cells = [LABELS[name]]
        for split in ("id", "ood"):
            acc = j[split]["accuracy"]
            cells += [percent(acc.get("maj@1")), percent(acc.get(f"maj@{k}"))]
        cells += [percent(j["id"].get("parse_failure_rate")), percent(j["id"].get("faithful_given_right_verdict"))]
        rows.append(cells)
    return rows


def judge_headers(k: int) -> list[str]:
    return ["judge", "ID maj@1", f"ID maj@{k}", "OOD maj@1", f"OOD maj@{k}", "parse fail (ID)", "faithful, right verdict (ID)"]


def make_plots(results: dict[str, Any], folder: Path) -> dict[str, str]:
    k, judges, plots = results["config"]["k"], results["judges"], {}
    names = [n for n in JUDGE_ORDER if n in judges]
    plots["accuracy_by_judge"] = plot_grouped_bars(
        folder / "accuracy_by_judge.png", [LABELS[n].split(" (")[0] for n in names],
        {f"ID ({'maj@%d' % k} CoT)": [top_accuracy(judges[n]["id"]) for n in names],
         f"OOD ({'maj@%d' % k} CoT)": [top_accuracy(judges[n]["ood"]) for n in names]},
        title="Preference accuracy by judge and split", ylabel="accuracy (%)", line=0.5,
    ).name
    cot = [n for n in names if judges[n]["id"]["accuracy"].get(f"maj@{k}") is not None and k > 1]
    if cot:
        series = {f"{n} {s.upper()}": [judges[n][s]["accuracy"]["maj@1"], judges[n][s]["accuracy"][f"maj@{k}"]]
                  for n in cot for s in ("id", "ood")}
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


def write_report(results: dict[str, Any], folder: Path) -> str:
    """Write report.json, report.md and the plots into ``folder``; return the stdout summary."""
    results["acceptance"] = acceptance(results)
    results["plots"] = make_plots(results, folder)
    (folder / "report.json").write_text(json.dumps(results, indent=1))
    k = results["config"]["k"]
    lines = ["# genrm demo: a tiny judge learning in a verifiable world", "",
             f"Run: {'quick' if results['config']['quick'] else 'full'}; base model "
             f"{'from cache' if results['base']['cached'] else 'pretrained in this run'} "
             f"({results['base']['parameters']:,} parameters); wall time {results['seconds']:.0f} s.", "",
             "## Judges", "", markdown_table(judge_headers(k), judge_rows(results)), "",
             "Accuracy: ties and abstentions count 1/2 (chance = 50%). *faithful, right verdict*: share of "
             "rationales with the right verdict whose recomputed sum is the true sum (a verdict-only filter "
             "keeps the others too).", ""]
    for name, curve in (results.get("star_curves") or {}).items():
        lines.append(f"- {name}: ID maj@{k} by iteration (0 = warm start) "
                     + ", ".join(percent(a) for a in curve["accuracy"])
                     + "; share of right-verdict rationales that are faithful: " + ", ".join(percent(f) for f in curve["right_verdict_faithful"]))
    if results.get("star_curves"):
        lines.append("- STaR kept " + ("only the faithful ones whose candidate checks also hold (the world's rationale "
                                        "filter, `star_rationale_filter`)"
                                       if results["config"].get("star_rationale_filter")
                                       else "all of them (verdict-only filter, as in the paper)") + ".")
    if results.get("best_of_n"):
        bon = results["best_of_n"]
        lines += ["", "## Best-of-N", "", markdown_table(["N", "judge pick", "random pick", "oracle"],
                  [[n, percent(a), percent(b), percent(c)] for n, a, b, c in zip(bon["n"], bon["judge"], bon["random"], bon["oracle"])])]
    if results.get("grpo"):
        g = results["grpo"]
        lines += ["", "## GRPO with GenRMReward", "",
                  f"Policy task accuracy (sampled, T=1): {percent(g['accuracy_before'])} before, "
                  f"{percent(g['accuracy_after'])} after {g['steps']} steps."]
    lines += ["", "## Acceptance", "", markdown_table(["check", "met", "measured"],
              [[c["check"], "yes" if c["ok"] else "NO", c["measured"]] for c in results["acceptance"]])]
    lines += ["", "## Timings (s)", "", markdown_table(["stage", "seconds"], [[s, f"{t:.1f}"] for s, t in results["timings"].items()])]
    lines += ["", "## Plots", ""] + [f"![{name}]({file})" for name, file in results["plots"].items()]
    (folder / "report.md").write_text("\n".join(lines) + "\n")
    summary = [markdown_table(judge_headers(k), judge_rows(results)), ""]
    summary += [f"[{'ok' if c['ok'] else 'NOT MET'}] {c['check']}: {c['measured']}" for c in results["acceptance"]]
    summary.append(f"report: {folder / 'report.md'}")
    return "\n".join(summary)
