"""Transformers backend: batched sampling with a shared prompt prefill, and choice log-probs.

* Prompts are batched with left padding; prompts are sorted so that those sharing a prefix share
  a batch, whose common prefix is encoded once (``prefix | padding | suffix`` rows).
* The K samples of a prompt share one prefill: the prompt is run once, its KV cache is repeated
  K times into a static cache, and generation continues from there (instead of
  ``num_return_sequences``, which re-encodes the prompt K times and grows the cache by concatenation).
* Each sample stops at its verdict marker or EOS (``stop_strings``).
* Long batches show a tqdm progress bar.
"""

from __future__ import annotations

import contextlib
from typing import Any, Sequence

import torch
from tqdm.auto import tqdm
from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache, StaticCache

from genrm_plugin.backends.base import SamplingConfig, TokenizerBackend, first_difference


class TransformersBackend(TokenizerBackend):
    """A :class:`~genrm_plugin.backends.base.JudgeBackend` over a ``transformers`` causal LM.

    Args:
        model: a causal LM (``AutoModelForCausalLM``).
        tokenizer: its tokenizer (a pad token is required; EOS is used if it has none).
        batch_size: sequences per forward batch: a sampling batch holds ``batch_size // n`` prompts
            with their ``n`` samples each (64 was fastest for the tiny kit model on 2 CPU cores).
        share_prefill: compute each prompt's prefill once and reuse it for its ``n`` samples.
        progress: show progress bars (``None``: only when a call spans several batches).
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        batch_size: int = 64,
        share_prefill: bool = True,
        progress: bool | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model.eval()
        self.tokenizer = tokenizer
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.batch_size = batch_size
        self.share_prefill = share_prefill
        self.progress = progress

    @classmethod
    def from_pretrained(cls, name_or_path: str, dtype: str = "auto", device: str | None = None,
                        device_map: str | None = None, **kwargs: Any):
        """Load model and tokenizer from a local path or hub name (``device_map="auto"``: over all GPUs)."""
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
        model = AutoModelForCausalLM.from_pretrained(name_or_path, dtype=dtype, device_map=device_map)
        if device and device_map is None:
            model = model.to(device)
        return cls(model, tokenizer, **kwargs)

    # -- protocol -------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(
        self, prompts: Sequence[str], n: int, sampling: SamplingConfig, seed: int | None = None
    ) -> list[list[str]]:
        self.check_n(n)
        results: list[list[str]] = [[] for _ in prompts]
        with self._seeded(seed):
            for idx in self._batches(prompts, desc="judge samples", size=max(1, self.batch_size // n)):
                texts = self._generate_batch([prompts[i] for i in idx], n, sampling)
                for j, i in enumerate(idx):
                    results[i] = texts[j * n : (j + 1) * n]
        return results

    @torch.no_grad()
    def choice_logprobs(self, prompts: Sequence[str], choices: Sequence[str]) -> list[list[float]]:
        if len(choices) < 2:
            raise ValueError("choice_logprobs needs at least two choices")
        rows, targets = [], []
        for prompt in prompts:
            encoded = [self._encode(prompt + c) for c in choices]
            split = first_difference(encoded)
            if any(len(e) <= split for e in encoded):
                raise ValueError(f"choices {list(choices)} do not differ by a token after the prompt")
            rows.append(encoded[0][:split])
            targets.append([e[split] for e in encoded])
        out: list[list[float]] = [[] for _ in prompts]
        for idx in self._batches(rows, desc="verdict logprobs"):
            input_ids, mask = self._pad([rows[i] for i in idx])
            logits = self.model(
                input_ids=input_ids, attention_mask=mask, position_ids=_positions(mask), use_cache=False
            ).logits[:, -1, :].float()
            logp = torch.log_softmax(logits, dim=-1)
            for j, i in enumerate(idx):
                out[i] = [logp[j, t].item() for t in targets[i]]
        return out

    # -- internals ------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False).input_ids

    def _pad(self, rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            if r:
                ids[i, width - len(r) :] = torch.tensor(r)
                mask[i, width - len(r) :] = 1
        return ids.to(self.device), mask.to(self.device)

    def _pad_after_prefix(self, rows: list[list[int]], shared: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows laid out as ``prefix | padding | own suffix`` (plain left padding when ``shared == 0``).

        Positions come from the mask, so a row's tokens get the same positions as when it is
        encoded alone; the shared prefix sits in the same columns of every row.
        """
        ids, mask = self._pad([r[shared:] for r in rows])
        if shared:
            prefix = torch.tensor(rows[0][:shared], device=self.device).expand(len(rows), -1)
            ids = torch.cat([prefix, ids], dim=1)
            mask = torch.cat([torch.ones_like(prefix), mask], dim=1)
        return ids, mask

    def _shared_prefill(self, input_ids, mask, shared: int, n: int, max_new_tokens: int) -> StaticCache:
        """KV cache of every row but its last token, computed with shared work, repeated ``n`` times.

        The common prefix is encoded once (one row), its cache copied to every row; each row's own
        suffix is then encoded on top; the result is copied ``n`` times into a static cache sized
        for prompt + new tokens (no per-sample prompt re-encoding, no per-step concatenation).
        """
        prefill = DynamicCache(config=self.model.config)
        positions = _positions(mask)
        if shared:
            self.model(input_ids=input_ids[:1, :shared], position_ids=positions[:1, :shared],
                       past_key_values=prefill, use_cache=True)
            prefill.batch_repeat_interleave(input_ids.shape[0])
        if input_ids.shape[1] - 1 > shared:
            self.model(
                input_ids=input_ids[:, shared:-1],
                attention_mask=mask[:, :-1],
                position_ids=positions[:, shared:-1],
                past_key_values=prefill,
                use_cache=True,
            )
        cache = StaticCache(config=self.model.config, max_cache_len=input_ids.shape[1] + max_new_tokens)
        for layer_idx, layer in enumerate(prefill.layers):
            cache.update(layer.keys.repeat_interleave(n, 0), layer.values.repeat_interleave(n, 0), layer_idx)
        return cache

    def _batches(self, items: Sequence[Any], desc: str, size: int | None = None):
        """Index batches of ``items`` in sorted order, with a progress bar.

        Sorting puts prompts that share a prefix (the G completions of a GRPO group judged against
        one reference, say) into the same batch, where their common prefix is encoded once.
        """
        size = size or self.batch_size
        order = sorted(range(len(items)), key=lambda i: items[i])
        batches = [order[s : s + size] for s in range(0, len(order), size)]
        show = self.progress if self.progress is not None else len(batches) > 1
        return tqdm(batches, desc=desc, disable=not show, leave=False)

    def _seeded(self, seed: int | None):
        if seed is None:
            return contextlib.nullcontext()
        devices = [self.device] if self.device.type == "cuda" else []

        @contextlib.contextmanager
        def ctx():
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(seed)
                yield

        return ctx()

    def _generate_batch(self, prompts: list[str], n: int, sampling: SamplingConfig) -> list[str]:
        if sampling.temperature == 0 and n > 1:  # greedy: every sample is the same
            return [t for t in self._generate_batch(prompts, 1, sampling) for _ in range(n)]
        rows = [self._encode(p) for p in prompts]
        shared = _common_prefix_length(rows) if self.share_prefill else 0
        input_ids, mask = self._pad_after_prefix(rows, shared)
        kwargs: dict[str, Any] = dict(
            max_new_tokens=sampling.max_new_tokens,
            do_sample=sampling.temperature > 0,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.tokenizer.eos_token_id,
        )
        if sampling.temperature > 0:
            kwargs.update(temperature=sampling.temperature, top_p=sampling.top_p, top_k=sampling.top_k)
        if sampling.stop:
            kwargs.update(stop_strings=list(sampling.stop), tokenizer=self.tokenizer)
        if self.share_prefill and (n > 1 or shared > 0) and input_ids.shape[1] > 1:
            cache = self._shared_prefill(input_ids, mask, shared, n, sampling.max_new_tokens)
            input_ids, mask = input_ids.repeat_interleave(n, 0), mask.repeat_interleave(n, 0)
            out = self.model.generate(input_ids=input_ids, attention_mask=mask, past_key_values=cache, **kwargs)
        else:
            out = self.model.generate(input_ids=input_ids, attention_mask=mask, num_return_sequences=n, **kwargs)
        new = out[:, input_ids.shape[1] :]
        return self.tokenizer.batch_decode(new, skip_special_tokens=True)


def _common_prefix_length(rows: list[list[int]]) -> int:
    """Tokens all rows share at the start, leaving each row at least one token of its own."""
    return min(first_difference(rows), min(len(r) for r in rows) - 1) if len(rows) > 1 else max(len(rows[0]) - 1, 0)


def _positions(mask: torch.Tensor) -> torch.Tensor:
    return (mask.cumsum(-1) - 1).clamp(min=0)
