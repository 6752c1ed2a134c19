"""A loop guard for greedy decoding that does not stop a model from quoting its prompt.

Small models decode greedily into loops (工程量工程量工程量…). transformers' own guards
(``repetition_penalty``, ``no_repeat_ngram_size``) look at the prompt too, so they penalize
exactly the clause words an answer must copy. This one bans only n-grams the answer itself
already produced.
"""

from __future__ import annotations

import torch
from transformers import LogitsProcessor


class GeneratedNgramBlocker(LogitsProcessor):
    """Bans a token that would repeat an n-gram of the generated part (positions >= ``prompt_len``).

    Args:
        n: the n-gram size (3-4 stops loops and keeps ordinary repeated words).
        prompt_len: tokens before the answer (with left padding, the padded prompt width).
    """

    def __init__(self, n: int, prompt_len: int) -> None:
        if n < 2:
            raise ValueError(f"n-gram size must be at least 2, got {n}")
        self.n = n
        self.prompt_len = prompt_len

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        generated = input_ids[:, self.prompt_len :]
        if generated.shape[1] < self.n - 1:
            return scores
        for row in range(generated.shape[0]):
            tokens = generated[row].tolist()
            prefix = tuple(tokens[len(tokens) - self.n + 1 :])
            banned = {
                tokens[i + self.n - 1]
                for i in range(len(tokens) - self.n + 1)
                if tuple(tokens[i : i + self.n - 1]) == prefix
            }
            if banned:
                scores[row, list(banned)] = -float("inf")
        return scores


__all__ = ["GeneratedNgramBlocker"]
