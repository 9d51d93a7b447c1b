"""What only a CUDA GPU can run (skipped elsewhere, `gpu` marker): the notebooks' 4-bit nf4 load with
bitsandbytes (requirements-gpu.txt) and bf16. On a GPU machine, test_gpu_dry_run.py also grades
ex04-ex06 through these paths, since the notebooks choose them wherever CUDA is available."""
import pytest

from coursegrader.config import load_course

pytestmark = [pytest.mark.gpu, pytest.mark.slow]


def test_the_base_model_loads_in_4bit_nf4_and_generates_in_bf16():
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    model_id = load_course().profile("cpu").resolve(load_course().profile("cpu").model_id)
    quantization = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                      bnb_4bit_compute_dtype=torch.bfloat16, bnb_4bit_use_double_quant=True)
    model = AutoModelForCausalLM.from_pretrained(model_id, quantization_config=quantization, device_map="auto")
    assert any(type(m).__name__ == "Linear4bit" for m in model.modules())
    tokenizer = AutoTokenizer.from_pretrained(model_id)
    inputs = tokenizer.apply_chat_template([{"role": "user", "content": "富士山とは？"}], add_generation_prompt=True,
                                           return_tensors="pt", return_dict=True).to(model.device)
    out = model.generate(**inputs, max_new_tokens=8, do_sample=False)
    assert out.shape[-1] > inputs["input_ids"].shape[-1]
