"""The offline model and data, the LoRA arithmetic, and the gpu profile up to the network boundary."""
import json
import subprocess
import sys

import nbformat
import pytest
import torch

from coursegrader.config import FIXTURES_DIR, REPO_ROOT, SOURCE_DIR, load_course
from coursegrader.precision import machine_precision
from autograder.metrics.lora import lora_trainable_params, trainable_percent

TINY = FIXTURES_DIR / "models" / "tiny-gemma3-ja"
PRECISION = machine_precision(load_course().bf16_min_capability)  # the rule here (no GPU: fp32)
REAL_CONFIG = FIXTURES_DIR / "models" / "gemma-3-270m-it"


def test_real_gemma_270m_parameter_counts():
    """The real config, random bf16 weights: peft's counts equal the formula."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(REAL_CONFIG)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    assert type(model).__name__ == "Gemma3ForCausalLM"
    assert model.num_parameters() == 268_098_176
    peft_model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj", "v_proj"],
                                                  lora_dropout=0.05, task_type="CAUSAL_LM"))
    trainable, total = peft_model.get_nb_trainable_parameters()
    assert trainable == 737_280 == lora_trainable_params(config, 16, ["q_proj", "v_proj"])
    assert f"{100 * trainable / total:.4f}" == "0.2742" == f"{trainable_percent(trainable, 268_098_176):.4f}"


def test_formula_rejects_unknown_modules():
    from transformers import AutoConfig

    with pytest.raises(ValueError, match="query"):
        lora_trainable_params(AutoConfig.from_pretrained(REAL_CONFIG), 16, ["query"])


def test_tiny_model_is_a_gemma3_with_the_same_module_names_and_template():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(TINY)
    model = AutoModelForCausalLM.from_pretrained(TINY)
    assert type(model).__name__ == "Gemma3ForCausalLM" and 2_000_000 < model.num_parameters() < 3_500_000
    names = {n.split(".")[-1] for n, _ in model.named_modules()}
    assert {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"} <= names
    prompt = tok.apply_chat_template([{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}],
                                     tokenize=False, add_generation_prompt=True)
    assert prompt == "<bos><start_of_turn>user\nS\n\nQ<end_of_turn>\n<start_of_turn>model\n"


def test_tokenizer_round_trips_japanese_and_bytes_are_ordinary_tokens():
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(TINY)
    for text in ["拙者は侍でござる。", "𠮷野家の🍣と𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "改行\nタブ\t全角　空白"]:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert tok.decode(ids, skip_special_tokens=True) == text
    assert set(tok.all_special_tokens) == {"<bos>", "<eos>", "<pad>", "<unk>", "<start_of_turn>", "<end_of_turn>"}


def test_base_model_speaks_politely_not_like_a_samurai():
    from autograder.reference_lm import ReferenceLM
    from coursegrader.metrics.gozaru import gozaru_rate

    prompts = json.loads((FIXTURES_DIR / "data" / "heldout_prompts.json").read_text())
    answers = [ReferenceLM(str(TINY), precision=PRECISION).answer([{"role": "user", "content": p}], 48) for p in prompts]
    assert gozaru_rate(answers) == 0.0
    assert sum(a.endswith(("です。", "ます。")) for a in answers) >= len(answers) * 0.8


def test_dataset_has_the_real_columns_and_gozaru_answers():
    from coursegrader.metrics.gozaru import is_gozaru

    rows = [json.loads(l) for l in (FIXTURES_DIR / "data" / "gozaru_dataset.jsonl").read_text().splitlines()]
    assert len(rows) >= 500
    assert all(set(r) == {"instruction", "input", "output", "category"} for r in rows)
    assert all(is_gozaru(r["output"]) for r in rows)
    heldout = json.loads((FIXTURES_DIR / "data" / "heldout_prompts.json").read_text())
    assert not set(heldout) & {r["instruction"] for r in rows}


def test_build_script_is_deterministic(tmp_path):
    runs = []
    for name in ("a", "b"):
        out = tmp_path / name
        subprocess.run([sys.executable, str(FIXTURES_DIR / "models" / "build_tiny_gemma.py"), "--steps", "3", "--out", str(out)],
                       check=True, capture_output=True)
        runs.append((out / "model.safetensors").read_bytes())
    assert runs[0] == runs[1]


def test_notebook_defaults_are_the_real_ids_and_budgets():
    """Without COURSE_* variables a notebook runs the gpu profile where CUDA is, and cpu-real where it is not:
    the same ids and numbers as course.toml, in the form `"<gpu>" if USE_CUDA else "<cpu-real>"`."""
    course = load_course()
    gpu, cpu_real, names = course.profile("gpu"), course.profile("cpu-real"), course.profile_env
    def code(ex):
        return "\n".join(c.source for c in nbformat.read(SOURCE_DIR / ex / f"{ex}.ipynb", as_version=4).cells)

    assert (cpu_real.model_id, cpu_real.dataset) == (gpu.model_id, gpu.dataset)
    for ex in ("ex04", "ex05", "ex06"):
        assert f'"{names["model_id"]}", "{gpu.model_id}"' in code(ex)
        assert f'"{names["max_new_tokens"]}", "{gpu.max_new_tokens}" if USE_CUDA else "{cpu_real.max_new_tokens}"' in code(ex)
    for ex in ("ex05", "ex06"):
        assert f'"{names["dataset"]}", "{gpu.dataset}"' in code(ex)
    for field in ("max_steps", "batch_size", "max_length", "learning_rate"):
        as_written = {"learning_rate": lambda v: f"{v:.0e}".replace("e-0", "e-")}.get(field, str)
        assert (f'"{names[field]}", "{as_written(getattr(gpu, field))}" if USE_CUDA '
                f'else "{as_written(getattr(cpu_real, field))}"') in code("ex05"), field


GPU_PROBE = r"""
import os, sys
for cell in CELLS:
    exec(cell, globals())
results = {}
try:
    from transformers import AutoTokenizer
    AutoTokenizer.from_pretrained(MODEL_ID)
    results["model"] = "loaded"
except Exception as err:
    results["model"] = f"{type(err).__name__}: {err}"
try:
    load_course_dataset(DATASET_ID)
    results["dataset"] = "loaded"
except Exception as err:
    results["dataset"] = f"{type(err).__name__}: {err}"
q = make_quantization_config()
results["quantization"] = [q.load_in_4bit, q.bnb_4bit_quant_type, str(q.bnb_4bit_compute_dtype)]
results["profile"] = [PROFILE, MODEL_ID, DATASET_ID, MAX_STEPS, BATCH_SIZE, MAX_LENGTH, LEARNING_RATE, MAX_NEW_TOKENS]
print(repr(results))
"""


def test_gpu_profile_code_reaches_the_network_boundary(tmp_path):
    """The notebook's own gpu-profile code asks the Hub for the real model and dataset (offline here)."""
    nb = nbformat.read(SOURCE_DIR / "ex05" / "ex05.ipynb", as_version=4)
    wanted = {"ex05_profile", "ex05_course_dataset", "ex05_quantization_impl"}
    cells = [c.source for c in nb.cells if c.metadata["nbgrader"]["grade_id"] in wanted]
    script = "from IPython.display import display\nCELLS = " + repr(cells) + GPU_PROBE
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "HF_HOME": str(tmp_path / "hf")}  # no COURSE_* variables: the notebook defaults, as on Databricks
    run = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    results = eval(run.stdout.strip().splitlines()[-1])
    gpu = load_course().profile("gpu")
    budget = gpu if torch.cuda.is_available() else load_course().profile("cpu-real")  # chosen by the notebook itself
    assert results["profile"] == ["gpu", gpu.model_id, gpu.dataset, budget.max_steps, budget.batch_size,
                                  budget.max_length, budget.learning_rate, budget.max_new_tokens]
    assert results["model"].startswith("OSError") and "huggingface.co" in results["model"]  # asked the Hub
    assert results["dataset"] != "loaded" and ("offline" in results["dataset"].lower() or gpu.dataset in results["dataset"])
    assert results["quantization"] == [True, "nf4", PRECISION.torch_name]  # the rule here: no GPU, fp32


def test_kernels_and_the_grader_run_torch_with_the_courses_thread_count(tmp_path):
    """The same numerics in a kernel and in the grader's reference runs, on any machine and beside another grading."""
    import subprocess
    import sys

    import torch

    from coursegrader.config import load_course
    from coursegrader.execution.environment import kernel_env, limit_cpu_threads

    threads = load_course().cpu_threads
    proc = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"],
                          env=kernel_env({}, tmp_path, threads), capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == str(threads), proc.stderr
    limit_cpu_threads(threads)
    assert torch.get_num_threads() == threads
