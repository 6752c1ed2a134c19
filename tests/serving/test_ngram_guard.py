"""The answer-only loop guard: bans repeats of the answer's own n-grams, never the prompt's."""

from __future__ import annotations

import torch

from serving.backends.ngram import GeneratedNgramBlocker


def test_bans_the_token_that_would_repeat_an_answer_trigram():
    # prompt: 5 6 7 | answer so far: 1 2 3 1 2 -> "1 2" was followed by 3, so 3 is banned now
    ids = torch.tensor([[5, 6, 7, 1, 2, 3, 1, 2]])
    scores = torch.zeros(1, 10)
    out = GeneratedNgramBlocker(3, prompt_len=3)(ids, scores.clone())
    assert out[0, 3] == float("-inf")
    assert (out[0, [0, 1, 2, 4, 5, 6, 7, 8, 9]] == 0).all()


def test_prompt_ngrams_stay_quotable():
    # the prompt contains "1 2 3"; the answer "1 2" may continue with 3 (quoting the clause)
    ids = torch.tensor([[1, 2, 3, 9, 1, 2]])
    out = GeneratedNgramBlocker(3, prompt_len=4)(ids, torch.zeros(1, 10))
    assert (out == 0).all()


def test_rows_are_independent():
    ids = torch.tensor([[0, 4, 4, 4], [0, 4, 5, 4]])
    out = GeneratedNgramBlocker(2, prompt_len=1)(ids, torch.zeros(2, 6))
    assert out[0, 4] == float("-inf") and out[1, 5] == float("-inf") and out[1, 4] == 0


def test_a_guarded_tiny_model_never_repeats_an_answer_trigram(tiny_model_dir):
    from serving.backends.transformers_backend import TransformersBackend

    backend = TransformersBackend(tiny_model_dir, max_new_tokens=48, no_repeat_ngram=3)
    prompt = backend.tokenizer.apply_chat_template(
        [{"role": "user", "content": "存货应当如何计量？"}], tokenize=False, add_generation_prompt=True
    )
    inputs = backend.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    width = inputs["input_ids"].shape[1]
    out = backend._model.generate(
        **inputs, max_new_tokens=48, do_sample=False, logits_processor=backend.logits_processors(width)
    )[0, width:].tolist()
    grams = [tuple(out[i : i + 3]) for i in range(len(out) - 2)]
    assert len(out) > 10 and len(grams) == len(set(grams))
