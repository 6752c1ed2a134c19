"""Token ids for scoring an answer given its prompt, shared by the local backends' ``score_answers``.

The answer is scored as the model would produce it: tokenized after the prompt rendered by the
chat template with ``add_generation_prompt`` (and ``enable_thinking=False`` for Qwen3 templates, as
generation does), followed by the turn's end token (``<|im_end|>`` for ChatML, else the EOS),
because a model that has learnt the answer also knows where it stops.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from serving.backends.base import Message


def answer_token_ids(tokenizer: Any, prompt: Sequence[Message], answer: str) -> tuple[list[int], list[int]]:
    """Token ids of the rendered prompt and of the answer + end-of-turn token."""
    text = tokenizer.apply_chat_template(
        list(prompt), tokenize=False, add_generation_prompt=True, enable_thinking=False
    )
    prompt_ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    answer_ids = list(tokenizer(answer, add_special_tokens=False)["input_ids"])
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    if end is None or end == tokenizer.unk_token_id:
        end = tokenizer.eos_token_id
    if end is not None:
        answer_ids.append(int(end))
    return list(prompt_ids), answer_ids


__all__ = ["answer_token_ids"]
