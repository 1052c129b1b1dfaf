"""``genrm train``: train a judge with a recipe (bt, genrm, star-sft, star-dpo, star-rationalizer, judge-zero-shot)
or a critique reward model (synthetic-critique-rm, cloud).

Flags and ``--config recipe.yaml`` fill :class:`~genrm_plugin.recipes.config.RecipeConfig`,
:class:`~genrm_plugin.recipes.config.TrainConfig` and :class:`~genrm_plugin.judge.JudgeConfig`
(flags win). Re-running the same command resumes the run in ``--output_dir``.
"""

from __future__ import annotations

HELP = ("train a judge or reward model: --recipe bt|genrm|star-sft|star-dpo|star-rationalizer|judge-zero-shot|"
        "synthetic-critique-rm|cloud (resumable)")


def main(argv: list[str]) -> int:
    from genrm_plugin.config_parser import parse_configs
    from genrm_plugin.recipes import distributed
    from genrm_plugin.recipes.card import read_card
    from genrm_plugin.recipes.runner import train_config_types, train_judge

    configs = parse_configs(train_config_types(), argv, "genrm train")  # + trl.ModelConfig (LoRA), VLLMConfig
    final = train_judge(*configs)
    if not distributed.is_main():  # another rank of a multi-process launch: rank 0 reports
        return 0
    card = read_card(final)
    print(f"recipe={card['recipe']} base={card['base_model']} iterations={card['iterations']}")
    for s in card["stats"]:
        parts = [f"iteration {s['iteration']}"]
        for key in ("stage", "frac_pairs_with_correct", "kept_examples", "dpo_pairs", "critiques", "train_loss"):
            if s.get(key) is not None:
                value = s[key]
                parts.append(f"{key}={value:.3f}" if isinstance(value, float) else f"{key}={value}")
        if s.get("eval"):
            parts.append(f"held_out_accuracy={s['eval']['accuracy']:.3f}")
        print("  " + " ".join(parts))
    print(f"final judge: {final}  (stats: {final.parent / 'stats.json'}, plot: {final.parent / 'stats.png'})")
    return 0
