"""ex05 (LoRA fine-tuning) evidence checks: claims computed as the solution computes them, and adapters in a
work folder: the reference adapter (fixtures/models/tiny-gemma3-ja-gozaru-lora) and broken copies of it."""
from __future__ import annotations

import json
import math
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

import builders as b
from autograder.checks import get_check
from autograder.checks.ex05 import messages_digest
from coursegrader.config import load_course
from coursegrader.precision import Precision

EX = "ex05"
INPUTS = b.inputs(EX)
WEIGHTS, CONFIG = "adapter_model.safetensors", "adapter_config.json"

pytestmark = pytest.mark.filterwarnings("ignore:Found missing adapter keys:UserWarning", "ignore::FutureWarning")


def run(name, claims=None, **fields):
    return get_check(EX, name)(b.evidence(EX, claims=claims, **fields))


@pytest.fixture(scope="module")
def solution(profile):
    """What ex05's solution reports (dataset split, quantization config, LoRA parameter count, training summary),
    computed its way on the cpu profile, and the error peft raises for target modules the model lacks."""
    from datasets import load_dataset
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    def to_messages(row):
        user = row["instruction"] if not row.get("input") else f"{row['instruction']}\n\n{row['input']}"
        return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": row["output"]}]}

    dataset = load_dataset("json", data_files=profile.resolve(profile.dataset), split="train")
    chat = dataset.map(to_messages, remove_columns=dataset.column_names)
    split = chat.train_test_split(test_size=0.1, seed=42)
    other_seed = chat.train_test_split(test_size=0.1, seed=0)
    quantization = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=b.machine_precision().torch_dtype(),
                                      bnb_4bit_use_double_quant=True)

    def lora_params(**config):
        model = AutoModelForCausalLM.from_pretrained(profile.resolve(profile.model_id))
        peft_model = get_peft_model(model, LoraConfig(lora_alpha=32, lora_dropout=0.05, bias="none", task_type="CAUSAL_LM",
                                                      **config))
        trainable, total = peft_model.get_nb_trainable_parameters()
        return {"trainable": trainable, "total": total, "percent": round(100 * trainable / total, 4)}

    try:
        lora_params(r=16, target_modules=["query", "value"])  # BERT's names
    except Exception as err:  # noqa: BLE001 - peft's own message, as the kernel would show it
        target_error = (type(err).__name__, str(err))
    def instruction_only(row):  # the usual mistake: the input column left out (the first row has none)
        return {"messages": [{"role": "user", "content": row["instruction"]}, {"role": "assistant", "content": row["output"]}]}

    without_input = dataset.map(instruction_only, remove_columns=dataset.column_names).train_test_split(test_size=0.1, seed=42)
    claims = {
        "ex05_dataset_report": {"split_info": {"train": len(split["train"]), "test": len(split["test"]),
                                               "first_train": split["train"][0]["messages"],
                                               "train_digest": messages_digest([r["messages"] for r in split["train"]])}},
        "ex05_quantization_report": {"quantization": {"load_in_4bit": quantization.load_in_4bit,
                                                      "quant_type": quantization.bnb_4bit_quant_type,
                                                      "compute_dtype": str(quantization.bnb_4bit_compute_dtype),
                                                      "double_quant": quantization.bnb_4bit_use_double_quant}},
        "ex05_lora_report": {"lora_params": lora_params(r=16, target_modules=["q_proj", "v_proj"])},
        "ex05_train_report": {"train_summary": {"steps": profile.max_steps, "final_loss": 1.734}},
    }
    mistakes = {"other_seed_first_train": other_seed["train"][0]["messages"],
                "input_ignored_digest": messages_digest([r["messages"] for r in without_input["train"]]),
                "lora_r8": lora_params(r=8, target_modules=["q_proj", "v_proj"]),
                "lora_all_attention": lora_params(r=16, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]),
                "target_error": target_error}
    return claims, mistakes


@pytest.fixture
def work(tmp_path):
    """The folder the notebook ran in (the grader copies the adapter to a sibling folder)."""
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


@pytest.fixture
def adapter(work, profile):
    """The reference adapter and the base model's tokenizer, saved where the notebook saves them (ADAPTER_DIR)."""
    from transformers import AutoTokenizer

    folder = shutil.copytree(profile.reference_adapter_path(), work / INPUTS["ADAPTER_DIR"])
    AutoTokenizer.from_pretrained(profile.resolve(profile.model_id)).save_pretrained(folder)
    return folder


def edit_weights(folder, change):
    weights = load_file(folder / WEIGHTS)
    save_file(change(weights), folder / WEIGHTS)


def edit_config(folder, **changes):
    config = json.loads((folder / CONFIG).read_text())
    (folder / CONFIG).write_text(json.dumps({**config, **changes}))


# -- split_reproducible --------------------------------------------------------------------------

def test_split_reproducible_passes_with_the_solutions_split(claims):
    assert run("split_reproducible", claims).passed


@pytest.mark.parametrize("case, code", [
    ("other_seed", "ex05_split_mismatch"),
    ("input_not_appended", "ex05_split_mismatch"),
    ("test_size_0_2", "ex05_split_mismatch"),
    ("input_ignored_on_every_row", "ex05_split_mismatch"),
    ("claim_missing", "claim_missing"),
])
def test_split_reproducible_fails(claims, mistakes, case, code):
    info = claims["ex05_dataset_report"]["split_info"]
    if case == "other_seed":
        info["first_train"] = mistakes["other_seed_first_train"]
    elif case == "input_not_appended":  # a row with an input must carry it after a blank line
        info["first_train"][0]["content"] = info["first_train"][0]["content"].split("\n\n")[0] + "。"
    elif case == "test_size_0_2":
        total = info["train"] + info["test"]
        info["test"] = math.ceil(total * 0.2)
        info["train"] = total - info["test"]
    elif case == "input_ignored_on_every_row":  # the first row passes; the digest covers the others
        info["train_digest"] = mistakes["input_ignored_digest"]
    else:
        claims = {}
    verdict = run("split_reproducible", claims)
    assert not verdict.passed and verdict.code == code


# -- nf4_config ----------------------------------------------------------------------------------

def test_nf4_config_passes_with_the_solutions_config(claims):
    assert run("nf4_config", claims).passed


@pytest.mark.parametrize("case, code", [
    ("fp4", "ex05_quantization_mismatch"),
    ("float16_compute", "ex05_quantization_mismatch"),
    ("other_precision_compute", "ex05_quantization_mismatch"),  # bf16 here, where the rule gives fp32, or fp32 on an A10
    ("eight_bit", "ex05_quantization_mismatch"),
    ("no_double_quant", "ex05_quantization_mismatch"),
    ("claim_missing", "claim_missing"),
])
def test_nf4_config_fails(claims, case, code):
    quantization = claims["ex05_quantization_report"]["quantization"]
    if case == "fp4":
        quantization["quant_type"] = "fp4"
    elif case == "float16_compute":
        quantization["compute_dtype"] = "torch.float16"
    elif case == "other_precision_compute":
        other = {Precision.BF16: Precision.FP32, Precision.FP32: Precision.BF16}[b.machine_precision()]
        quantization["compute_dtype"] = other.torch_name
    elif case == "eight_bit":
        quantization["load_in_4bit"] = False
    elif case == "no_double_quant":
        quantization["double_quant"] = False
    else:
        claims = {}
    verdict = run("nf4_config", claims)
    assert not verdict.passed and verdict.code == code


# -- lora_param_count ----------------------------------------------------------------------------

def test_lora_param_count_passes_with_the_solutions_count(claims):
    assert run("lora_param_count", claims).passed


@pytest.mark.parametrize("case, code", [
    ("rank_8", "ex05_lora_params_mismatch"),
    ("all_attention_projections", "ex05_lora_params_mismatch"),
    ("percent_of_trainable", "ex05_lora_params_mismatch"),
    ("target_modules_not_in_model", "target_modules_missing"),
    ("claim_missing", "claim_missing"),
])
def test_lora_param_count_fails(claims, mistakes, case, code):
    errors = {}
    params = claims["ex05_lora_report"]["lora_params"]
    if case == "rank_8":
        claims["ex05_lora_report"]["lora_params"] = mistakes["lora_r8"]
    elif case == "all_attention_projections":
        claims["ex05_lora_report"]["lora_params"] = mistakes["lora_all_attention"]
    elif case == "percent_of_trainable":  # trainable / (total - trainable)
        params["percent"] = round(100 * params["trainable"] / (params["total"] - params["trainable"]), 4)
    elif case == "target_modules_not_in_model":  # the lora cell raised; nothing was reported
        del claims["ex05_lora_report"]
        errors = {"ex05_lora_impl": [mistakes["target_error"]]}
    else:
        del claims["ex05_lora_report"]
    verdict = run("lora_param_count", claims, errors=errors)
    assert not verdict.passed and verdict.code == code


# -- training_ran --------------------------------------------------------------------------------

def test_training_ran_passes_with_the_solutions_summary(claims):
    assert run("training_ran", claims).passed


@pytest.mark.parametrize("case, code", [
    ("claim_missing", "ex05_train_summary_missing"),
    ("loss_missing", "ex05_train_summary_missing"),
    ("nan_loss", "loss_nan"),
    ("infinite_loss", "loss_nan"),
    ("loss_as_text", "loss_nan"),
    ("gpu_max_steps", "ex05_wrong_max_steps"),
])
def test_training_ran_fails(claims, profile, case, code):
    summary = claims["ex05_train_report"]["train_summary"]
    if case == "claim_missing":
        claims = {}
    elif case == "loss_missing":
        del summary["final_loss"]
    elif case == "nan_loss":
        summary["final_loss"] = float("nan")
    elif case == "infinite_loss":
        summary["final_loss"] = float("inf")
    elif case == "loss_as_text":
        summary["final_loss"] = "1.73"
    else:  # MAX_STEPS hard-coded instead of read from the profile
        summary["steps"] = 300
        assert profile.max_steps != 300
    verdict = run("training_ran", claims)
    assert not verdict.passed and verdict.code == code


def test_training_ran_passes_with_the_trained_adapter_saved(claims, adapter, work):
    assert run("training_ran", claims, work_dir=work).passed


def test_training_ran_fails_when_the_saved_adapter_was_never_trained(claims, adapter, work):
    """A reported train_result is the kernel's word: the saved lora_B weights, still all zero, show no training."""
    edit_weights(adapter, lambda w: {k: torch.zeros_like(v) if "lora_B" in k else v for k, v in w.items()})
    verdict = run("training_ran", claims, work_dir=work)
    assert not verdict.passed and verdict.code == "ex05_adapter_untrained"


def test_training_ran_fails_when_the_saved_adapter_raises_the_training_loss(claims, adapter, work):
    """Non-zero lora_B that moved away from the data: the grader's own loss, before and after, is the product."""
    generator = torch.Generator().manual_seed(0)
    edit_weights(adapter, lambda w: {k: torch.randn(v.shape, generator=generator) if "lora_B" in k else v
                                     for k, v in w.items()})
    verdict = run("training_ran", claims, work_dir=work)
    assert not verdict.passed and verdict.code == "ex05_loss_not_reduced"
    assert verdict.fields["tuned"] > verdict.fields["base"]


def test_training_ran_reports_the_graders_loss_before_and_after(claims, adapter, work):
    verdict = run("training_ran", claims, work_dir=work)
    assert verdict.passed and verdict.message.startswith("採点側で計算した学習データの損失: 学習前 ")


@pytest.mark.parametrize("case", ["nan_weights", "other_base_model_shapes"])
def test_training_ran_leaves_a_broken_adapter_to_adapter_valid(claims, adapter, work, case):
    """NaN weights or an adapter for another model are one mistake, charged once (to ex05_adapter)."""
    if case == "nan_weights":
        edit_weights(adapter, lambda w: {k: torch.full_like(v, float("nan")) for k, v in w.items()})
    else:
        _break_adapter(adapter, case)
        edit_weights(adapter, lambda w: {k: torch.zeros_like(v) if "lora_B" in k else v for k, v in w.items()})
    assert run("training_ran", claims, work_dir=work).passed


# -- adapter_valid -------------------------------------------------------------------------------

def test_adapter_valid_passes_with_the_reference_adapter(adapter, work):
    (adapter / "tokenizer_config.json").write_text("{}")  # the solution saves the tokenizer there too
    assert run("adapter_valid", work_dir=work).passed


def _break_adapter(folder, case):
    if case == "config_missing":
        (folder / CONFIG).unlink()
    elif case == "weights_as_bin":  # torch.save: the grader unpickles nothing
        torch.save(load_file(folder / WEIGHTS), folder / "adapter_model.bin")
        (folder / WEIGHTS).unlink()
    elif case == "weights_symlinked":
        target = folder.parent.parent / "elsewhere.safetensors"
        shutil.move(folder / WEIGHTS, target)
        (folder / WEIGHTS).symlink_to(target)
    elif case == "other_base_model_shapes":  # trained on a model with a hidden size of 128
        edit_weights(folder, lambda w: {k: (v[:, :128] if "lora_A" in k else v[:128]).contiguous() for k, v in w.items()})
    elif case == "truncated_weights":
        data = (folder / WEIGHTS).read_bytes()
        (folder / WEIGHTS).write_bytes(data[: len(data) // 2])
    elif case == "nan_weights":
        edit_weights(folder, lambda w: {k: torch.full_like(v, float("nan")) if "lora_B" in k else v for k, v in w.items()})
    elif case == "dropout_0_1":
        edit_config(folder, lora_dropout=0.1)
    elif case == "rank_8":  # a consistent rank-8 adapter: loads, but not the required configuration
        edit_config(folder, r=8, lora_alpha=16)
        edit_weights(folder, lambda w: {k: (v[:8] if "lora_A" in k else v[:, :8]).contiguous() for k, v in w.items()})
    elif case == "no_task_type":  # LoraConfig without task_type="CAUSAL_LM": a bare PeftModel
        edit_config(folder, task_type=None)
    elif case == "bias_all":
        edit_config(folder, bias="all")
    elif case == "k_proj_too":
        edit_config(folder, target_modules=["q_proj", "k_proj", "v_proj"])
    elif case == "first_layer_only":
        edit_config(folder, layers_to_transform=[0])
        edit_weights(folder, lambda w: {k: v for k, v in w.items() if ".layers.0." in k})
    elif case == "tokenizer_not_saved":
        (folder / "tokenizer_config.json").unlink()
    elif case == "tokenizer_config_symlinked":
        (folder / "tokenizer_config.json").unlink()
        (folder / "tokenizer_config.json").symlink_to(folder / CONFIG)
    elif case == "tokenizer_config_not_json":
        (folder / "tokenizer_config.json").write_text("{not json")
    elif case == "not_saved":
        shutil.rmtree(folder)
    elif case == "rank_524288":  # the red team's: the config alone would have the grader allocate 7 GB
        edit_config(folder, r=524288)
    elif case == "weights_over_limit":  # sparse: the size is checked, the bytes are never read
        with open(folder / WEIGHTS, "r+b") as fh:
            fh.truncate((load_course().limits.adapter_max_mb + 1) << 20)
    else:
        raise ValueError(case)


@pytest.mark.parametrize("case, code", [
    ("not_saved", "adapter_missing"),
    ("config_missing", "adapter_missing"),
    ("weights_as_bin", "adapter_not_safetensors"),
    ("weights_symlinked", "adapter_not_safetensors"),
    ("other_base_model_shapes", "adapter_mismatch"),
    ("truncated_weights", "adapter_invalid"),
    ("nan_weights", "loss_nan"),
    ("tokenizer_not_saved", "ex05_tokenizer_not_saved"),
    ("tokenizer_config_symlinked", "ex05_tokenizer_not_saved"),
    ("tokenizer_config_not_json", "ex05_tokenizer_not_saved"),
    ("k_proj_too", "ex05_adapter_params_mismatch"),  # the config names k_proj, the weights have none
    ("first_layer_only", "ex05_adapter_params_mismatch"),
    ("rank_524288", "adapter_over_limit"),
    ("weights_over_limit", "adapter_over_limit"),
])
def test_adapter_valid_fails(adapter, work, case, code):
    _break_adapter(adapter, case)
    verdict = run("adapter_valid", work_dir=work)
    assert not verdict.passed and verdict.code == code


@pytest.mark.parametrize("case", ["dropout_0_1", "rank_8"])
def test_adapter_valid_passes_an_adapter_true_to_another_config(adapter, work, case):
    """A consistent adapter of another LoraConfig is 5.3's mistake (lora_param_count), charged once."""
    _break_adapter(adapter, case)
    verdict = run("adapter_valid", work_dir=work)
    assert verdict.passed, verdict.message


@pytest.mark.parametrize("case", ["dropout_0_1", "rank_8", "k_proj_too", "no_task_type", "bias_all"])
def test_lora_param_count_fails_when_the_saved_adapter_has_another_config(claims, adapter, work, case):
    """The reported counts are the kernel's word; the saved adapter_config.json is 5.3's LoraConfig."""
    _break_adapter(adapter, case)
    verdict = run("lora_param_count", claims, work_dir=work)
    assert not verdict.passed and verdict.code == "ex05_adapter_config_wrong"


def test_lora_param_count_passes_with_the_reference_adapter_saved(claims, adapter, work):
    assert run("lora_param_count", claims, work_dir=work).passed


@pytest.mark.parametrize("case", ["no_tensors", "keys_renamed"])
def test_adapter_valid_rejects_weights_that_do_not_load(adapter, work, case):
    if case == "no_tensors":
        edit_weights(adapter, lambda w: {})
    else:
        edit_weights(adapter, lambda w: {k.replace(".model.layers.", ".model.blocks."): v for k, v in w.items()})
    assert not run("adapter_valid", work_dir=work).passed


# -- gozaru_rate_heldout -------------------------------------------------------------------------

def comparison_claims(profile, adapter_dir, add_generation_prompt=True) -> dict:
    """What the solution's 5.5 reports: greedy answers to COMPARE_PROMPTS with the adapter disabled, then enabled."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(profile.resolve(profile.model_id))
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(profile.resolve(profile.model_id)),
                                      str(adapter_dir)).eval()

    def answers():
        out = []
        for prompt in INPUTS["COMPARE_PROMPTS"]:
            inputs = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], return_dict=True,
                                                   add_generation_prompt=add_generation_prompt, return_tensors="pt")
            with torch.no_grad():
                output = model.generate(**inputs, max_new_tokens=profile.max_new_tokens, do_sample=False)
            out.append(tokenizer.decode(output[0][inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip())
        return out

    with model.disable_adapter():
        base = answers()
    return {"ex05_gozaru_report": {"comparison": {"base_answers": base, "tuned_answers": answers()}}}


@pytest.mark.slow  # 24 held-out prompts with the adapter and 24 without (about 10-20 s on a laptop CPU)
def test_gozaru_rate_heldout_passes_with_the_reference_adapter(adapter, work, profile):
    verdict = run("gozaru_rate_heldout", comparison_claims(profile, adapter), work_dir=work)
    assert verdict.passed, verdict.message


@pytest.mark.parametrize("case", ["without_generation_prompt", "not_reported"])
def test_gozaru_rate_heldout_fails_when_the_comparison_is_not_the_models(adapter, work, profile, case):
    """5.5's own answers: a prompt without the model turn answers otherwise, whatever the adapter learned."""
    claims = comparison_claims(profile, adapter, add_generation_prompt=case != "without_generation_prompt")
    if case == "not_reported":
        claims = {}
    verdict = run("gozaru_rate_heldout", claims, work_dir=work)
    assert not verdict.passed and verdict.code == ("ex05_comparison_mismatch" if claims else "claim_missing")


@pytest.mark.parametrize("case, code", [
    ("not_saved", "adapter_missing"),
    ("weights_as_bin", "adapter_not_safetensors"),
    ("other_base_model_shapes", "adapter_mismatch"),
])
def test_gozaru_rate_heldout_fails_without_a_usable_adapter(adapter, work, case, code):
    _break_adapter(adapter, case)
    verdict = run("gozaru_rate_heldout", work_dir=work)
    assert not verdict.passed and verdict.code == code


@pytest.mark.slow  # generates the 24 held-out answers twice (base and adapter)
def test_gozaru_rate_heldout_fails_with_an_untrained_adapter(adapter, work, profile):
    """lora_B = 0 is what get_peft_model starts from: the model answers as the base model does."""
    edit_weights(adapter, lambda w: {k: torch.zeros_like(v) if "lora_B" in k else v for k, v in w.items()})
    verdict = run("gozaru_rate_heldout", comparison_claims(profile, adapter), work_dir=work)
    assert not verdict.passed and verdict.code == "ex05_gozaru_rate_low"


def test_adapter_valid_names_the_missing_tokenizer_file_not_the_graders_folder(adapter, work):
    _break_adapter(adapter, "tokenizer_not_saved")
    verdict = run("adapter_valid", work_dir=work)
    assert "tokenizer_config.json" in verdict.message and str(work) not in verdict.message


# -- adapter_reloaded (5.6) -----------------------------------------------------------------------------------

def reloaded_claims(profile, adapter_dir) -> dict:
    """What the solution's 5.6 reports: greedy answers to COMPARE_PROMPTS from the adapter loaded back."""
    tuned = comparison_claims(profile, adapter_dir)["ex05_gozaru_report"]["comparison"]["tuned_answers"]
    return {"ex05_reload_report": {"reloaded_answers": tuned}}


def test_adapter_reloaded_passes_with_the_reference_adapter(adapter, work, profile):
    verdict = run("adapter_reloaded", reloaded_claims(profile, adapter), work_dir=work)
    assert verdict.passed, verdict.message


@pytest.mark.parametrize("case, code", [
    ("base_models_answers", "ex05_reload_mismatch"),  # the adapter never stacked on the base model
    ("first_answer_only", "ex05_reload_mismatch"),
    ("not_reported", "claim_missing"),
])
def test_adapter_reloaded_fails_when_the_answers_are_not_the_saved_adapters(adapter, work, profile, case, code):
    claims = reloaded_claims(profile, adapter)
    answers = claims["ex05_reload_report"]["reloaded_answers"]
    if case == "base_models_answers":
        answers[:] = comparison_claims(profile, adapter)["ex05_gozaru_report"]["comparison"]["base_answers"]
    elif case == "first_answer_only":
        del answers[1:]
    elif case == "not_reported":
        claims = {}
    verdict = run("adapter_reloaded", claims, work_dir=work)
    assert not verdict.passed and verdict.code == code


@pytest.mark.parametrize("case, code", [("not_saved", "adapter_missing"), ("weights_as_bin", "adapter_not_safetensors")])
def test_adapter_reloaded_fails_without_a_usable_adapter(adapter, work, profile, case, code):
    claims = reloaded_claims(profile, adapter)
    _break_adapter(adapter, case)
    verdict = run("adapter_reloaded", claims, work_dir=work)
    assert not verdict.passed and verdict.code == code
