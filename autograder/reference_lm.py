"""The grader's own greedy generations, computed outside the student's kernel."""
from __future__ import annotations

from functools import lru_cache

import torch


# The notebooks' rule, so the grader generates exactly as the student's kernel did.
USE_CUDA = torch.cuda.is_available()
DTYPE = torch.bfloat16 if USE_CUDA else torch.float32


@lru_cache(maxsize=4)
def load(model_id: str, adapter: str | None = None):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging

    logging.disable_progress_bar()

    tokenizer = AutoTokenizer.from_pretrained(model_id)
    model = AutoModelForCausalLM.from_pretrained(model_id, dtype=DTYPE, device_map="auto" if USE_CUDA else None)
    if adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter)
    return tokenizer, model.eval()


class ReferenceLM:
    def __init__(self, model_id: str, adapter: str | None = None):
        self.tokenizer, self.model = load(model_id, adapter)

    def prompt(self, messages) -> str:
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def generate(self, messages, max_new_tokens: int) -> tuple[str, int]:
        """(answer without the prompt, number of new tokens), greedy."""
        inputs = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True,
                                                    return_tensors="pt").to(self.model.device)
        torch.manual_seed(0)
        with torch.no_grad():
            output = self.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        new = output[0][inputs["input_ids"].shape[1]:]
        return self.tokenizer.decode(new, skip_special_tokens=True).strip(), int(new.shape[0])

    def answer(self, messages, max_new_tokens: int) -> str:
        return self.generate(messages, max_new_tokens)[0]

    def loss(self, conversations: list[list[dict]]) -> float:
        """Mean next-token loss over whole conversations (teacher forcing, as SFT trains on `messages`)."""
        losses = []
        for messages in conversations:
            ids = self.tokenizer.apply_chat_template(messages, return_dict=True, return_tensors="pt")["input_ids"]
            ids = ids.to(self.model.device)
            with torch.no_grad():
                losses.append(float(self.model(input_ids=ids, labels=ids).loss))
        return sum(losses) / len(losses)
