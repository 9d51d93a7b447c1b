"""The grader's own greedy generations, computed outside the student's kernel.

torch is imported where it is used, not with this module: the grader imports the check modules while the
kernel and nbgrader's process start, and only the warm-up (in a thread at nice 19) should pay for it.
"""
from __future__ import annotations

import threading
from functools import lru_cache

from coursegrader.precision import Precision

# transformers builds a model under process-wide switches (weight initialization skipped, weights tied after
# loading): two threads building at once can leave one model with an untied, randomly initialized lm_head, which
# then generates other text. The grader builds models in threads (its warm-up beside the checks; the test suite's
# gradings side by side), so every model it builds, from weights or from a config, is built holding this lock.
BUILD_LOCK = threading.RLock()

@lru_cache(maxsize=None)
def use_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def confirm_margin(precision: Precision) -> float:
    """A teacher-forced pass confirms a token only when it leads the runner-up by more than this (logits): far
    above what one forward pass and a cached, token-by-token one differ by in that precision."""
    return {Precision.FP32: 1e-3, Precision.BF16: 0.5}[precision]


@lru_cache(maxsize=4)
def load(model_id: str, adapter: str | None, precision: Precision):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging

    logging.disable_progress_bar()

    with BUILD_LOCK:
        tokenizer = AutoTokenizer.from_pretrained(model_id)
        model = AutoModelForCausalLM.from_pretrained(model_id, dtype=precision.torch_dtype(), device_map="auto" if use_cuda() else None)
        if adapter:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, adapter)
    return tokenizer, model.eval()


class ReferenceLM:
    """A model (and adapter) in `precision`: the notebooks' rule on this machine (coursegrader.precision), so the
    grader generates exactly as the student's kernel did."""

    def __init__(self, model_id: str, adapter: str | None = None, *, precision: Precision):
        self.precision = precision
        self.tokenizer, self.model = load(model_id, adapter, precision)

    def prompt(self, messages) -> str:
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def generate(self, messages, max_new_tokens: int) -> tuple[str, int]:
        """(answer without the prompt, number of new tokens), greedy."""
        inputs = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True,
                                                    return_tensors="pt").to(self.model.device)
        import torch

        torch.manual_seed(0)
        with torch.no_grad():
            output = self.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        new = output[0][inputs["input_ids"].shape[1]:]
        return self.tokenizer.decode(new, skip_special_tokens=True).strip(), int(new.shape[0])

    def answer(self, messages, max_new_tokens: int, expect=None) -> str:
        """The greedy answer. `expect`: an answer to confirm first, by one teacher-forced pass instead of a
        token-by-token generation; it is returned when that pass shows it is the greedy answer, and the answer is
        generated when it cannot tell (a wrong answer, a near tie, text that does not re-tokenize the same)."""
        if isinstance(expect, str) and self.confirms_greedy(messages, expect, max_new_tokens):
            return expect
        return self.generate(messages, max_new_tokens)[0]

    def confirms_greedy(self, messages, answer: str, max_new_tokens: int) -> bool:
        """Whether `answer` is what generate() returns, by one forward pass over the prompt and its tokens: each
        token is the clear argmax after the ones before it (by more than confirm_margin(precision), so the pass and
        an incremental generation cannot disagree), and it ends where generate stops (an end token, or the limit)."""
        import torch

        prompt = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True,
                                                    return_tensors="pt")["input_ids"]
        tokens = self.tokenizer(answer, add_special_tokens=False, return_tensors="pt")["input_ids"]
        count = tokens.shape[1]
        if not 0 < count <= max_new_tokens or self.tokenizer.decode(tokens[0], skip_special_tokens=True).strip() != answer:
            return False
        ids = torch.cat([prompt, tokens], dim=1).to(self.model.device)
        with torch.no_grad():
            logits = self.model(input_ids=ids).logits[0, prompt.shape[1] - 1:].float()
        top = logits.topk(2, dim=-1)
        margins, chosen = top.values[:, 0] - top.values[:, 1], top.indices[:, 0]
        ends = count < max_new_tokens  # then generate stopped at an end token
        checked = count + ends
        if bool((margins[:checked] <= confirm_margin(self.precision)).any()):
            return False
        if not torch.equal(chosen[:count].cpu(), tokens[0]):
            return False
        return not ends or int(chosen[count]) in self._end_tokens()

    def _end_tokens(self) -> set[int]:
        eos = self.model.generation_config.eos_token_id
        return set(eos if isinstance(eos, (list, tuple)) else [eos])

    def loss(self, conversations: list[list[dict]]) -> float:
        """Mean next-token loss over whole conversations (teacher forcing, as SFT trains on `messages`)."""
        import torch

        losses = []
        for messages in conversations:
            ids = self.tokenizer.apply_chat_template(messages, return_dict=True, return_tensors="pt")["input_ids"]
            ids = ids.to(self.model.device)
            with torch.no_grad():
                losses.append(float(self.model(input_ids=ids, labels=ids).loss))
        return sum(losses) / len(losses)
