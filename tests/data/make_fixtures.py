"""Rebuild the test fixtures in this folder from the full files (see README.md for the selection rule).

Usage: ``python tests/data/make_fixtures.py [SOURCE_DIR]`` (default: ``../shared/data`` beside the
repository). Every fixture line is a verbatim line of its source file, in the source's order.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
MATH_FIRST_ROWS = 46
MATH_EXTRA_IDS = ("test/algebra/2592.json", "test/counting_and_probability/116.json")  # "compute" problems
ARENA_FIRST_QUESTIONS = 46
ARENA_EXTRA_UIDS = ("6225fbb8f3084d57852db56882e972ba",)  # gpt-4-0613's answer equals the baseline's
ARENA_FILES = ("model_answer_gpt-4-0314.jsonl", "model_answer_gpt-4-0613.jsonl", "model_answer_gpt-3.5-turbo-0125.jsonl")


def keep_lines(source: Path, target: Path, keep) -> int:
    """Copy the lines of ``source`` whose parsed row satisfies ``keep`` to ``target``; return the count."""
    lines = [line for line in source.read_text(encoding="utf-8").splitlines() if line.strip() and keep(json.loads(line))]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(source: Path) -> None:
    math_src = source / "math500" / "test.jsonl"
    rows = [json.loads(line) for line in math_src.read_text(encoding="utf-8").splitlines() if line.strip()]
    wanted = {r["unique_id"] for r in rows[:MATH_FIRST_ROWS]} | set(MATH_EXTRA_IDS)
    wanted |= {r["unique_id"] for r in rows if "\\text" in r["answer"] or "\\mbox" in r["answer"]}
    count = keep_lines(math_src, HERE / "math500" / "test.jsonl", lambda r: r["unique_id"] in wanted)
    print(f"math500/test.jsonl: {count} rows (source sha256 {sha256(math_src)})")

    arena = source / "arena_hard_v0.1"
    questions = [json.loads(line) for line in (arena / "question.jsonl").read_text(encoding="utf-8").splitlines()]
    uids = {q["uid"] for q in questions[:ARENA_FIRST_QUESTIONS]} | set(ARENA_EXTRA_UIDS)
    for name in ("question.jsonl", *ARENA_FILES):
        count = keep_lines(arena / name, HERE / "arena_hard_v0.1" / name, lambda r: r["uid"] in uids)
        print(f"arena_hard_v0.1/{name}: {count} rows (source sha256 {sha256(arena / name)})")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parents[2] / "shared" / "data")
