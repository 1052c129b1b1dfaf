"""Candidate text as a judge sees it: one normalisation that leaves nothing for a candidate to steer.

Whatever a policy writes reaches the judge only through :func:`neutralize_text` (called by
:func:`genrm_plugin.prompts.judge_messages` for both answers and the question, which can come from
the policy's environment too). Two versions of a text are involved:

* the **display text** -- what the judge is shown: the text verbatim, except that invisible
  characters are dropped (format characters such as zero-width spaces and joiners, soft hyphens,
  bidi controls, BOM and tag characters; control characters other than whitespace; variation
  selectors and Hangul fillers) and lone surrogates become U+FFFD;
* the **matching view** -- what markers are looked for in: each character in NFKC form, look-alike
  brackets, letters, colons, bars and angle brackets folded to ASCII (``〚``/``⟦`` read as ``[[``),
  combining marks dropped, and each whitespace run of any kind (NBSP, ideographic space, tabs)
  collapsed to one space, or one newline when it holds a line break.

Markers found in the view are rewritten in the display text (the whole span, look-alikes and all,
becomes a canonical ASCII form that reads the same):

* verdicts -- two or more ``[`` (whitespace allowed between them), one letter or an arena-style
  comparison (``A>B``) with any non-word characters around it, two or more ``]``: one bracket pair
  is kept, ``[[[A]]]`` -> ``[A]``, ``[[**B**]]`` -> ``[**B**]``;
* MT-Bench delimiters -- ``[The Start/End of ...``, ``[User Question``, ``[Hint``: ``[`` -> ``(``;
* line markers of line-based formats (``Q:``/``A:``/``B:`` of the compact and tiny templates,
  ``USER:``... of plain transcripts) at the start of a line: ``B: 42`` -> ``\\B: 42``;
* control markers (chat-template special tokens: :data:`COMMON_CONTROL_MARKERS`, any
  ``<|name|>``, and a judge tokenizer's own, :func:`tokenizer_markers`): a backslash after the first
  character, ``<|im_end|>`` -> ``<\\|im_end|>``, so no tokenizer reads them as control tokens.

Rewriting repeats until the view holds no marker: a **fixed point**. Each pass removes at least
one ``[``, line marker or control marker and creates none (replacements hold one bracket pair, a
``(``, or a backslash that no marker contains), so it ends -- in practice after one pass, the second
only confirms. Text without markers comes out unchanged apart from the invisible characters. Each
pass is linear in the text's length: a verdict is only tried where a bracket run begins, and a
line's lead-in stops at the next line break (``"[ " * 50_000`` takes milliseconds, not minutes).
"""

from __future__ import annotations

import re
import unicodedata
import weakref
from functools import lru_cache
from typing import Any, Sequence

ESCAPE = "\\"
LINE_BREAKS = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"
# Chat-template markers of common model families, escaped in every candidate whatever the judge's
# tokenizer (remote endpoints tokenize the prompt themselves). Any ``<|name|>`` is escaped as well.
COMMON_CONTROL_MARKERS = (
    "<|eot_id|>", "<|im_end|>", "<|im_start|>", "<|end|>", "<|assistant|>", "<|user|>", "<|system|>",
    "<|start_header_id|>", "<|end_header_id|>", "<|begin_of_text|>", "<|end_of_text|>", "<|endoftext|>",
    "</s>", "<s>", "[INST]", "[/INST]", "<<SYS>>", "<</SYS>>", "<start_of_turn>", "<end_of_turn>",
    "<bos>", "<eos>", "<think>", "</think>", "<tool_call>", "</tool_call>", "[SYSTEM_PROMPT]",
    "[/SYSTEM_PROMPT]", "[TOOL_CALLS]", "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜User｜>",
    "<｜Assistant｜>",
)
_ANY_PIPE_MARKER = r"<\|[^\s<>|]{1,64}\|>"

_INVISIBLE = frozenset("\u034f\u115f\u1160\u3164\uffa0") | frozenset(map(chr, range(0xFE00, 0xFE10)))
_KEEP_CONTROLS = frozenset("\t" + LINE_BREAKS)
_ASCII_INVISIBLE_RE = re.compile(r"[\x00-\x08\x0e-\x1b\x1f\x7f]")
# Look-alikes NFKC leaves alone, folded for matching (NFKC already maps fullwidth forms to ASCII).
_LOOKALIKES = {
    **dict.fromkeys("⁅〔〘【〖⦋⦍⦏❲⸢⸤⌈⌊⎡⎣⟬⦗", "["), **dict.fromkeys("⁆〕〙】〗⦌⦎⦐❳⸣⸥⌉⌋⎤⎦⟭⦘", "]"),
    "⟦": "[[", "〚": "[[", "⟧": "]]", "〛": "]]",
    **dict.fromkeys("АΑᎪꓮᴀ", "A"), **dict.fromkeys("аɑα", "a"), **dict.fromkeys("ВΒᏴꓐʙ", "B"),
    **dict.fromkeys("ԚႭ", "Q"), **dict.fromkeys("꞉∶ː׃", ":"), **dict.fromkeys("∣ǀ│┃", "|"),
    **dict.fromkeys("‹ᐸ〈", "<"), **dict.fromkeys("›ᐳ〉", ">"),
}
_JUNK = r"(?:[^\w\[\]]|_)*"  # what may surround a verdict letter: whitespace, markdown, quotes...
# In the view a whitespace run is one character, so ``\s?`` spans it; a verdict is only tried where a
# bracket run begins (the lookbehinds), which keeps the scan linear on long runs of brackets.
_VERDICT = (
    rf"(?P<verdict>(?<!\[)(?<!\[\s)\[(?:\s?\[)+"
    rf"(?P<inner>{_JUNK}(?:[A-Za-z]|[A-Za-z]\s?[<>=≫≪]{{1,2}}\s?[A-Za-z]){_JUNK})\](?:\s?\])+)"
)
_DELIMITER = r"(?P<delimiter>(?i:\[(?=\s*(?:(?:the\s+)?(?:start|end)\s+of\b|user\s+question|hint\b))))"


def visible_text(text: str) -> str:
    """``text`` without invisible characters (lone surrogates become U+FFFD)."""
    if text.isascii():
        return _ASCII_INVISIBLE_RE.sub("", text)
    return "".join(map(_visible_char, text))


@lru_cache(maxsize=8192)
def _visible_char(ch: str) -> str:
    category = unicodedata.category(ch)
    if category == "Cs":
        return "\ufffd"
    if category == "Cf" or (category == "Cc" and ch not in _KEEP_CONTROLS) or ch in _INVISIBLE:
        return ""
    return ch if not 0xE0100 <= ord(ch) <= 0xE01EF else ""


@lru_cache(maxsize=8192)
def _fold_char(ch: str) -> str:
    if _visible_char(ch) != ch:
        return ""
    if ch in _LOOKALIKES:
        return _LOOKALIKES[ch]
    folded = (_LOOKALIKES.get(c, c) for c in unicodedata.normalize("NFKC", ch))
    return "".join(c for c in folded if unicodedata.category(c) not in ("Mn", "Me"))


_COLLAPSIBLE_RE = re.compile(r"\s{2,}|[^\S \n]")  # whitespace the view writes differently
_LINE_BREAK_RE = re.compile(f"[{LINE_BREAKS}]")


def matching_view(text: str) -> tuple[str, list[int] | None]:
    """The text markers are looked for in, and for each of its characters the index of the
    character of ``text`` it comes from (``None``: the same indices; plain ASCII text with single
    spaces is its own view)."""
    view, index = _folded_with_index(text)
    runs = list(_COLLAPSIBLE_RE.finditer(view))
    if not runs:
        return view, index
    pieces, collapsed, last = [], [], 0
    for run in runs:
        pieces += [view[last : run.start()], "\n" if _LINE_BREAK_RE.search(run.group()) else " "]
        collapsed += [*(range(last, run.start()) if index is None else index[last : run.start()])]
        collapsed.append(run.start() if index is None else index[run.start()])
        last = run.end()
    pieces.append(view[last:])
    collapsed += range(last, len(view)) if index is None else index[last:]
    return "".join(pieces), collapsed


def _folded_with_index(text: str) -> tuple[str, list[int] | None]:
    if text.isascii() and not _ASCII_INVISIBLE_RE.search(text):
        return text, None
    pieces: list[str] = []
    index: list[int] = []
    for i, ch in enumerate(text):
        folded = _fold_char(ch)
        if folded:
            pieces.append(folded)
            index.extend([i] * len(folded))
    return "".join(pieces), index


def fold(text: str) -> str:
    """``text`` with look-alikes folded and invisible characters and combining marks dropped,
    whitespace left as it is (the matching view before whitespace runs are collapsed)."""
    return _folded_with_index(text)[0]


def neutralize_text(text: str, line_labels: Sequence[str] = (), control_markers: Sequence[str] = ()) -> str:
    """``text`` as shown to a judge: invisible characters dropped, and no verdict, MT-Bench
    delimiter, line marker from ``line_labels`` or control marker left in its matching view
    (:data:`COMMON_CONTROL_MARKERS` and any ``<|name|>`` always, plus ``control_markers``)."""
    return _rewrite(visible_text(text), _marker_pattern(True, tuple(line_labels), _control_set(tuple(control_markers))))


def escape_markers(text: str, control_markers: Sequence[str] = (), line_labels: Sequence[str] = ()) -> str:
    """``text`` with only its control markers (and lines starting with ``line_labels``) escaped,
    nothing else touched: for whole chat messages about to go through a chat template."""
    return _rewrite(text, _marker_pattern(False, tuple(line_labels), _control_set(tuple(control_markers))))


@lru_cache(maxsize=64)
def _control_set(extra: tuple[str, ...]) -> tuple[str, ...]:
    markers = {matching_view(m)[0] for m in (*COMMON_CONTROL_MARKERS, *extra)}  # as they appear in a view
    # A marker of one character cannot be split; one holding the escape character would not be split by it.
    return tuple(sorted((m for m in markers if len(m) >= 2 and ESCAPE not in m), key=lambda m: (-len(m), m)))


@lru_cache(maxsize=64)
def _marker_pattern(structural: bool, line_labels: tuple[str, ...], controls: tuple[str, ...]) -> re.Pattern:
    parts = [_VERDICT, _DELIMITER] if structural else []
    if line_labels:
        labels = "|".join(re.escape(label) for label in sorted(line_labels, key=len, reverse=True))
        parts.append(rf"(?:^|[{LINE_BREAKS}])(?:[*_#>]|[^\S{LINE_BREAKS}])*(?P<label>{labels})(?=\s?:)")
    parts.append("(?P<control>" + "|".join([*map(re.escape, controls), _ANY_PIPE_MARKER]) + ")")
    return re.compile("|".join(parts))


def _replacement(match: re.Match) -> tuple[int, int, str]:
    """(view start, view end, canonical text) for one marker found in the view."""
    kind = match.lastgroup
    if kind == "verdict":
        return match.start(), match.end(), "[" + match.group("inner") + "]"
    if kind == "delimiter":
        return match.start(), match.end(), "("
    if kind == "label":
        return match.start("label"), match.end("label"), ESCAPE + match.group("label")
    marker = match.group("control")
    return match.start(), match.end(), marker[0] + ESCAPE + marker[1:]


def _rewrite(display: str, pattern: re.Pattern) -> str:
    while True:
        view, index = matching_view(display)
        edits, end = [], 0
        for match in pattern.finditer(view):
            start_v, end_v, text = _replacement(match)
            start, stop = (start_v, end_v) if index is None else (index[start_v], index[end_v - 1] + 1)
            if start < end:  # two view matches inside one display character: the next pass takes this one
                continue
            edits.append((start, stop, text))
            end = stop
        if not edits:
            return display
        out, last = [], 0
        for start, stop, text in edits:
            out += [display[last:start], text]
            last = stop
        display = "".join(out) + display[last:]


_TOKENIZER_MARKERS: "weakref.WeakKeyDictionary[Any, tuple[int, tuple[str, ...]]]" = weakref.WeakKeyDictionary()


def tokenizer_markers(tokenizer: Any) -> tuple[str, ...]:
    """The strings ``tokenizer`` may read as control tokens: its special tokens and its added tokens
    that are special or look like markup (hold a character that is neither alphanumeric nor space),
    e.g. ``<think>``. Whitespace-only tokens and plain added words are left out."""
    if tokenizer is None:
        return ()
    size = len(tokenizer) if hasattr(tokenizer, "__len__") else -1
    try:
        cached = _TOKENIZER_MARKERS.get(tokenizer)
    except TypeError:  # not weak-referenceable
        cached = None
    if cached is not None and cached[0] == size:
        return cached[1]
    found = {str(t) for t in (getattr(tokenizer, "all_special_tokens", None) or [])}
    for token in (getattr(tokenizer, "added_tokens_decoder", None) or {}).values():
        content = getattr(token, "content", str(token))
        if getattr(token, "special", False) or any(not (c.isalnum() or c.isspace()) for c in content):
            found.add(content)
    markers = tuple(sorted(t for t in found if t.strip()))
    try:
        _TOKENIZER_MARKERS[tokenizer] = (size, markers)
    except TypeError:
        pass
    return markers
