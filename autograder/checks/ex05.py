"""ex05 LoRA fine-tuning: checks on the saved adapter, recomputed outside the kernel."""
from __future__ import annotations

import hashlib
import importlib
import json
import math
from functools import lru_cache
from pathlib import Path

from coursegrader.config import FIXTURES_DIR, Profile
from coursegrader.course_dataset import course_split, load_course_dataset
from coursegrader.grading.untrusted import adapter_over_limits, copy_adapter, read_regular
from coursegrader.metrics.gozaru import gozaru_rate
from coursegrader.precision import Precision

from ..evidence import Evidence, Verdict, claim_matches, fail, ok
from ..metrics.lora import lora_trainable_params, trainable_percent
from ..reference_lm import BUILD_LOCK, ReferenceLM
from . import check, warms_up

EX = "ex05"
LOSS_ROWS = 8  # training conversations the grader scores its own loss on, before and after the adapter
REQUIRED_LORA = {"r": 16, "lora_alpha": 32, "target_modules": {"q_proj", "v_proj"}, "lora_dropout": 0.05,
                 "bias": "none", "task_type": "CAUSAL_LM"}
HELDOUT_PROMPTS = FIXTURES_DIR / "data" / "heldout_prompts.json"


def _model_id(ev: Evidence) -> str:
    return ev.profile.resolve(ev.profile.model_id)


def _base_config(ev: Evidence):
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(_model_id(ev))


def _adapter_dir(ev: Evidence) -> Path:
    return Path(ev.work_dir) / ev.inputs["ADAPTER_DIR"]


def _kernel_error(ev: Evidence, grade_id: str) -> str:
    return " ".join(f"{e}: {v}" for e, v in ev.errors.get(grade_id, []))


def question_of(row: dict) -> str:
    """A dataset row's user turn: the instruction, then a blank line and the input if there is one."""
    return row["instruction"] if not row.get("input") else f"{row['instruction']}\n\n{row['input']}"


def reference_messages(row: dict) -> dict:
    return {"messages": [{"role": "user", "content": question_of(row)}, {"role": "assistant", "content": row["output"]}]}


def messages_digest(rows: list) -> str:
    """What the report cell digests: every converted row (a conversion is checked on all rows, not the first)."""
    return hashlib.sha256(json.dumps(rows, ensure_ascii=False).encode()).hexdigest()


@check(EX)
def split_reproducible(ev: Evidence) -> Verdict:
    split = _grader_split(ev)
    expected = {"train": len(split["train"]), "test": len(split["test"]), "first_train": split["train"][0]["messages"],
                "train_digest": messages_digest([row["messages"] for row in split["train"]])}
    return claim_matches(ev, "ex05_dataset_report", "split_info", expected,
                         mismatch="ex05_split_mismatch")


@check(EX)
def nf4_config(ev: Evidence) -> Verdict:
    expected = {"load_in_4bit": True, "quant_type": "nf4", "compute_dtype": ev.precision.torch_name,
                "double_quant": True}  # the compute dtype the notebooks' rule gives here, as the kernel here chose
    return claim_matches(ev, "ex05_quantization_report", "quantization", expected,
                         mismatch="ex05_quantization_mismatch")


@check(EX)
def lora_param_count(ev: Evidence) -> Verdict:
    config = _base_config(ev)
    if "Target modules" in _kernel_error(ev, "ex05_lora_impl"):
        return fail("target_modules_missing")
    trainable = lora_trainable_params(config, REQUIRED_LORA["r"], sorted(REQUIRED_LORA["target_modules"]))
    base = _base_params(ev)
    expected = {"trainable": trainable, "total": base + trainable,
                "percent": round(trainable_percent(trainable, base), 4)}
    claimed = claim_matches(ev, "ex05_lora_report", "lora_params", expected,
                            mismatch="ex05_lora_params_mismatch", expected=expected)
    return saved_lora_config_wrong(ev) or claimed if claimed.passed else claimed


def saved_lora_config_wrong(ev: Evidence) -> Verdict | None:
    """5.3's LoraConfig as the saved adapter records it (the product; the counts above are the kernel's word).
    Charged here, to the cell that asks for the config, and not again to 5.4's adapter."""
    adapter = _adapter_copy(ev)
    if adapter is None:
        return None  # nothing saved yet: 5.4's adapter_valid reports that
    saved = json.loads((adapter / "adapter_config.json").read_text())
    actual = {key: saved.get(key) for key in REQUIRED_LORA}
    actual["target_modules"] = set(saved.get("target_modules") or ())
    differs = {key: sorted(value) if isinstance(value, set) else value
               for key, value in actual.items() if value != REQUIRED_LORA[key]}
    if differs:
        return fail("ex05_adapter_config_wrong", config=differs)
    return None


def _meta_base_model(ev: Evidence):
    """The profile's base model built on the meta device: its structure, no weights."""
    import torch
    from transformers import AutoModelForCausalLM

    with BUILD_LOCK, torch.device("meta"):
        return AutoModelForCausalLM.from_config(_base_config(ev))


def _base_params(ev: Evidence) -> int:
    return _meta_base_model(ev).num_parameters()


@check(EX)
def training_ran(ev: Evidence) -> Verdict:
    try:
        summary = ev.claim("ex05_train_report", "train_summary")
        steps, loss = summary["steps"], summary["final_loss"]
    except (KeyError, TypeError):
        return fail("ex05_train_summary_missing")
    if not isinstance(loss, (int, float)) or not math.isfinite(loss):
        return fail("loss_nan")
    if steps != ev.profile.max_steps:
        return fail("ex05_wrong_max_steps", expected=ev.profile.max_steps, recorded=steps)
    if _adapter_copy(ev) and _never_trained(ev, _adapter_copy(ev)):
        return fail("ex05_adapter_untrained")
    return _loss_reduced(ev)


def _loss_reduced(ev: Evidence) -> Verdict:
    """The grader's own loss on the first LOSS_ROWS training conversations, without and with the saved adapter:
    training must have lowered it. An adapter that cannot be used is adapter_valid's to report."""
    lm, problem = load_adapter(ev) if _adapter_copy(ev) else (None, True)
    if problem:
        return ok()
    rows = [row["messages"] for row in _grader_split(ev)["train"].select(range(LOSS_ROWS))]
    with lm.model.disable_adapter():
        base = lm.loss(rows)
    tuned = lm.loss(rows)
    if not math.isfinite(tuned):
        return ok()  # NaN weights: adapter_valid's loss_nan, charged once
    if tuned >= base:
        return fail("ex05_loss_not_reduced", base=base, tuned=tuned)
    return ok(f"採点側で計算した学習データの損失: 学習前 {base:.3f} → 学習後 {tuned:.3f}")


def _grader_split(ev: Evidence):
    """The grader's own conversion and split of the profile's dataset, made once."""
    def split():
        data = load_course_dataset(ev.profile.resolve(ev.profile.dataset))
        return course_split(data.map(reference_messages, remove_columns=data.column_names))
    return ev.shared.once("split", split)


def _adapter_copy(ev: Evidence) -> Path | None:
    """The grader's own copy of the saved adapter (config and safetensors only), made once; None without one."""
    if ev.work_dir is None:
        return None
    path = _adapter_dir(ev)
    if not (path / "adapter_config.json").is_file():
        return None
    return ev.shared.once("adapter_copy", lambda: copy_adapter(path, Path(ev.work_dir).parent / "adapter-checked",
                                                               ev.course.limits))


def _never_trained(ev: Evidence, adapter: Path) -> bool:
    """Training moved no weight: peft starts every lora_B at zero, so an adapter for this base model whose lora_B
    are all still exactly zero was never trained (the reported train_result is the kernel's word; the saved weights
    are the product). An adapter that does not fit the base model is adapter_valid's to report, not this."""
    from safetensors import safe_open

    with safe_open(str(adapter / "adapter_model.safetensors"), framework="pt") as weights:
        names = list(weights.keys())
        lora_a = {n: weights.get_slice(n).get_shape() for n in names if "lora_A" in n}
        if not lora_a or not _fits_base_model(ev, lora_a):
            return False
        return all(bool((weights.get_tensor(n) == 0).all()) for n in names if "lora_B" in n)


def _fits_base_model(ev: Evidence, lora_a_shapes: dict) -> bool:
    """Every lora_A takes the input width of the base model's module it adapts."""
    modules = dict(_meta_base_model(ev).named_modules())
    for name, shape in lora_a_shapes.items():
        module = modules.get(name.removeprefix("base_model.model.").rsplit(".lora_A", 1)[0])
        if module is None or getattr(module, "in_features", None) != shape[-1]:
            return False
    return True


def load_adapter(ev: Evidence) -> tuple[ReferenceLM | None, Verdict | None]:
    """The student's adapter on the profile's base model, or why it cannot be used. The grader loads
    a copy of adapter_config.json and adapter_model.safetensors only (it never unpickles a .bin)."""
    if not (_adapter_dir(ev) / "adapter_config.json").is_file():
        return None, fail("adapter_missing")
    if over := adapter_over_limits(_adapter_dir(ev), ev.course.limits):
        return None, fail("adapter_over_limit", detail=over)
    if not _adapter_copy(ev):
        return None, fail("adapter_not_safetensors")
    try:
        return ReferenceLM(_model_id(ev), str(_adapter_copy(ev)), precision=ev.precision), None
    except Exception as err:  # noqa: BLE001 - a broken adapter is the student's, reported, never raised
        text = str(err)
        first = text.strip().splitlines()[0][:200] if text.strip() else type(err).__name__
        if "size mismatch" in text or "shape" in text:
            return None, fail("adapter_mismatch", error=first)
        return None, fail("adapter_invalid", error=first)


@check(EX)
def adapter_valid(ev: Evidence) -> Verdict:
    lm, problem = load_adapter(ev)
    if problem:
        return problem
    saved = json.loads((_adapter_copy(ev) / "adapter_config.json").read_text())
    weights = [p for n, p in lm.model.named_parameters() if "lora_" in n]
    if not all(bool(p.isfinite().all()) for p in weights):
        return fail("loss_nan")
    # The adapter holds every weight its own config asks for (whether that config is the assignment's is 5.3's
    # charge: lora_param_count). Counted in the saved file: peft fills weights missing there with fresh ones.
    shapes = _saved_lora_shapes(_adapter_copy(ev))
    if not _fits_base_model(ev, {n: shape for n, shape in shapes.items() if "lora_A" in n}):
        return fail("adapter_mismatch", error="the saved LoRA weights name modules the base model does not have")
    lora = sum(math.prod(shape) for shape in shapes.values())
    try:
        expected = lora_trainable_params(_base_config(ev), int(saved.get("r")), sorted(saved.get("target_modules") or ()))
    except (TypeError, ValueError):  # targets named by path, or no r: count nothing to compare
        expected = None
    if lora != expected:
        return fail("ex05_adapter_params_mismatch", actual=lora, expected=expected)
    return _tokenizer_saved(ev)


TOKENIZER_CONFIG_MAX_BYTES = 64 << 20  # Gemma 3's tokenizer_config.json is about 1 MB


def _tokenizer_saved(ev: Evidence) -> Verdict:
    """5.4 saves the tokenizer beside the adapter: its tokenizer_config.json, a plain JSON object (read, not loaded)."""
    try:
        config = json.loads(read_regular(_adapter_dir(ev) / "tokenizer_config.json", TOKENIZER_CONFIG_MAX_BYTES))
    except OSError as err:  # the file name alone: the grader's folders are not the student's business
        return fail("ex05_tokenizer_not_saved", error=f"tokenizer_config.json: {err.strerror or err}")
    except ValueError as err:
        return fail("ex05_tokenizer_not_saved", error=str(err))
    if not isinstance(config, dict):
        return fail("ex05_tokenizer_not_saved", error="tokenizer_config.json is not a JSON object")
    return ok()


def _saved_lora_shapes(adapter: Path) -> dict[str, list[int]]:
    from safetensors import safe_open

    with safe_open(str(adapter / "adapter_model.safetensors"), framework="pt") as weights:
        return {n: weights.get_slice(n).get_shape() for n in weights.keys() if "lora_" in n}


def _heldout_prompts() -> list[str]:
    return json.loads(HELDOUT_PROMPTS.read_text(encoding="utf-8"))


@lru_cache(maxsize=4)
def base_heldout_rate(model_id: str, max_new_tokens: int, precision: Precision) -> float:
    """The base model's rate: the same for every student, so computed once per process."""
    lm = ReferenceLM(model_id, precision=precision)
    return gozaru_rate(lm.answer([{"role": "user", "content": p}], max_new_tokens) for p in _heldout_prompts())


@warms_up(EX)
def load_reference_model(inputs: dict, profile: Profile, precision: Precision) -> None:
    """Loads only: generating now would fight the student's training for the same cores."""
    ReferenceLM(profile.resolve(profile.model_id), precision=precision)
    importlib.import_module("peft")  # what load_adapter imports next


def heldout_rates(lm: ReferenceLM, model_id: str, max_new_tokens: int) -> tuple[float, float]:
    """(the adapter's gozaru rate, the base model's) on the grader's held-out prompts."""
    tuned = [lm.answer([{"role": "user", "content": p}], max_new_tokens) for p in _heldout_prompts()]
    return gozaru_rate(tuned), base_heldout_rate(model_id, max_new_tokens, lm.precision)


def _compared_answers(ev: Evidence, tuned_lm: ReferenceLM) -> Verdict:
    """The notebook's before/after answers to COMPARE_PROMPTS are greedy generations of the base model and of the
    saved adapter (a prompt without the generation turn, or the adapter left on for "before", answers otherwise)."""
    n, prompts = ev.profile.max_new_tokens, ev.inputs["COMPARE_PROMPTS"]
    base_lm = ReferenceLM(_model_id(ev), precision=ev.precision)
    expected = {"base_answers": [base_lm.answer([{"role": "user", "content": p}], n) for p in prompts],
                "tuned_answers": [tuned_lm.answer([{"role": "user", "content": p}], n) for p in prompts]}
    return claim_matches(ev, "ex05_gozaru_report", "comparison", expected, mismatch="ex05_comparison_mismatch")


@check(EX)
def gozaru_rate_heldout(ev: Evidence) -> Verdict:
    lm, problem = load_adapter(ev)
    if problem:
        return problem
    compared = _compared_answers(ev, lm)
    if not compared.passed:
        return compared
    tuned, base = heldout_rates(lm, _model_id(ev), ev.profile.max_new_tokens)
    need, lift = ev.profile.min_gozaru_rate, ev.profile.min_gozaru_lift
    if tuned < need or tuned - base < lift:
        return fail("ex05_gozaru_rate_low", tuned=tuned, base=base, need=need, lift=lift)
    return ok(f"ござる率 {tuned:.2f}（学習前 {base:.2f}）")


@check(EX)
def adapter_reloaded(ev: Evidence) -> Verdict:
    """5.6's answers to COMPARE_PROMPTS from the adapter it loaded back are the grader's greedy answers from the
    saved adapter (each confirmed by one teacher-forced pass where it is; the hidden test in the kernel checks that
    load_saved_adapter loads the folder it is given). An unusable adapter is 5.4's loss (adapter_valid), and it
    leaves nothing to reload: this check fails with it."""
    lm, problem = load_adapter(ev)
    if problem:
        return problem
    claimed = ev.claimed("ex05_reload_report", "reloaded_answers", list) or []
    n, prompts = ev.profile.max_new_tokens, ev.inputs["COMPARE_PROMPTS"]
    expected = [lm.answer([{"role": "user", "content": p}], n, expect=claimed[i] if i < len(claimed) else None)
                for i, p in enumerate(prompts)]
    return claim_matches(ev, "ex05_reload_report", "reloaded_answers", expected, mismatch="ex05_reload_mismatch")
