"""Cost per scored completion: pairwise GenRM (against a reference) vs pointwise critique RMs (CLoud).

One tiny model (random weights, EOS suppressed so every generation writes exactly ``--tokens``
tokens: equal work per generated text) serves as the GenRM judge and as the CLoud model (its LM
writes critiques, a reward head reads the scalar). The same batch of ``--items`` distinct
(prompt, completion) items is scored by

    (g) ``GenRMReward``: CoT, ``--k`` votes per answer order, both orders (2k rationales per item),
        against a reference answer;
    (c1) ``CritiqueReward``: one greedy critique per item, then one reward-head forward;
    (ck) ``CritiqueReward``: ``--k`` sampled critiques per item (CLoud's self-consistency).

Printed: seconds per run (best of ``--rounds`` interleaved rounds), generated texts per item, and
the cost ratios g / c1 and g / ck measured in the same run. What it shows: the pairwise judge's cost
is 2k generations per completion plus a reference; a critique RM's is k generations and one forward.

    python benchmarks/critique_cost.py [--items 32] [--k 4] [--tokens 32] [--rounds 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from genrm_plugin.backends.transformers import TransformersBackend
from genrm_plugin.critique_reward import CritiqueReward
from genrm_plugin.critique_scorer import CritiqueConfig, CritiqueScorer, save_reward_head
from genrm_plugin.judge import GenerativeJudge, JudgeConfig
from genrm_plugin.prompts import PromptConfig
from genrm_plugin.reward import GenRMReward
from genrm_plugin.toy import TinyModelConfig, build_tiny_model


def best_time(fn, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--items", type=int, default=32, help="distinct (prompt, completion) items scored per run")
    ap.add_argument("--k", type=int, default=4, help="GenRM votes per order; critiques per item in (ck)")
    ap.add_argument("--tokens", type=int, default=32, help="tokens per rationale / critique")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: stable timings on a shared CPU)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    model, tokenizer = build_tiny_model(TinyModelConfig(seed=1))
    model.generation_config.suppress_tokens = [tokenizer.eos_token_id]  # equal work per generated text
    folder = Path(tempfile.mkdtemp(prefix="critique-cost-"))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    save_reward_head(folder, torch.nn.Linear(model.config.hidden_size, 1), {"kind": "cloud"})

    questions = [f"What is {i}+{2 * i + 7}?" for i in range(args.items)]
    completions = [f"{i}+{2 * i + 7}={3 * i + 7 + (i % 3 == 0)}" for i in range(args.items)]
    references = [f"{i}+{2 * i + 7}={3 * i + 7}" for i in range(args.items)]
    backend = TransformersBackend(model, tokenizer, progress=False)
    genrm = GenRMReward(GenerativeJudge(backend, JudgeConfig(mode="cot", k=args.k, swap=True,
                                                             max_new_tokens=args.tokens, template="compact")))
    prompt = PromptConfig(template="compact")
    one = CritiqueReward(CritiqueScorer.load(folder, "cloud", config=CritiqueConfig(max_new_tokens=args.tokens), prompt=prompt))
    many = CritiqueReward(CritiqueScorer.load(folder, "cloud", prompt=prompt, config=CritiqueConfig(
        k=args.k, temperature=1.0, max_new_tokens=args.tokens)))
    for reward in (one, many):
        reward.scorer.critic.model.generation_config.suppress_tokens = [tokenizer.eos_token_id]

    runs = {
        "g": lambda: genrm.score_items(questions, completions, references),
        "c1": lambda: one.score_items(questions, completions),
        "ck": lambda: many.score_items(questions, completions),
    }
    for fn in runs.values():  # warm-up
        fn()
    seconds = {name: float("inf") for name in runs}
    for _ in range(args.rounds):  # interleaved: load drifts hit every variant alike
        for name, fn in runs.items():
            seconds[name] = min(seconds[name], best_time(fn, 1))
    texts = {"g": 2 * args.k, "c1": 1, "ck": args.k}
    labels = {"g": f"GenRM CoT, k={args.k} per order, swap, vs reference",
              "c1": "CLoud, 1 greedy critique + head",
              "ck": f"CLoud, k={args.k} sampled critiques + head"}
    print(f"{args.items} items, {args.tokens} tokens per generated text, torch threads={torch.get_num_threads()}")
    for name in runs:
        print(f"  ({name:>2}) {labels[name]:<44} {seconds[name]:7.2f} s   {texts[name]:>2} texts/item   "
              f"{1000 * seconds[name] / args.items:7.1f} ms/item")
    print(f"  cost ratio GenRM / CLoud(1) = {seconds['g'] / seconds['c1']:.1f}x; "
          f"GenRM / CLoud(k={args.k}) = {seconds['g'] / seconds['ck']:.1f}x")


if __name__ == "__main__":
    main()
