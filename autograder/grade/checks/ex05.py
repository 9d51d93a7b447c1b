"""ex05 LoRA fine-tuning: checks on the saved adapter, recomputed outside the kernel."""
from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

from ...metrics.gozaru import gozaru_rate
from ...metrics.lora import lora_trainable_params, trainable_percent
from ..evidence import Evidence, Verdict, claim_matches, fail, ok
from ..reference_lm import ReferenceLM
from ..untrusted import copy_adapter
from . import check

EX = "ex05"
REQUIRED_LORA = {"r": 16, "lora_alpha": 32, "target_modules": {"q_proj", "v_proj"}, "lora_dropout": 0.05}
HELDOUT_PROMPTS = Path(__file__).resolve().parents[3] / "fixtures" / "data" / "heldout_prompts.json"


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


@check(EX)
def split_reproducible(ev: Evidence) -> Verdict:
    from datasets import load_dataset

    data = load_dataset("json", data_files=ev.profile.resolve(ev.profile.dataset), split="train")
    split = data.map(reference_messages, remove_columns=data.column_names).train_test_split(test_size=0.1, seed=42)
    expected = {"train": len(split["train"]), "test": len(split["test"]), "first_train": split["train"][0]["messages"]}
    return claim_matches(ev, "ex05_dataset_report", "split_info", expected,
                         mismatch="split が、同じ変換と train_test_split(test_size=0.1, seed=42) の結果と一致しません。")


@check(EX)
def nf4_config(ev: Evidence) -> Verdict:
    expected = {"load_in_4bit": True, "quant_type": "nf4", "compute_dtype": "torch.bfloat16"}
    return claim_matches(ev, "ex05_quantization_report", "quantization", expected,
                         mismatch="BitsAndBytesConfig は 4bit・nf4・compute_dtype=bfloat16 にしてください。")


@check(EX)
def lora_param_count(ev: Evidence) -> Verdict:
    config = _base_config(ev)
    if "Target modules" in _kernel_error(ev, "ex05_lora_impl"):
        return Verdict(False, "target_modules に、モデルに存在しない層の名前が指定されています（Gemma 3 では q_proj, v_proj など）。"
                              " / target_modules names layers the model does not have.", "target_modules_missing")
    trainable = lora_trainable_params(config, REQUIRED_LORA["r"], sorted(REQUIRED_LORA["target_modules"]))
    base = _base_params(ev)
    expected = {"trainable": trainable, "total": base + trainable,
                "percent": round(trainable_percent(trainable, base), 4)}
    return claim_matches(ev, "ex05_lora_report", "lora_params", expected,
                         mismatch=f"学習可能パラメータ数が r(d_in+d_out)×層数 の計算と一致しません（期待: {expected}）。")


def _base_params(ev: Evidence) -> int:
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(_base_config(ev)).num_parameters()


@check(EX)
def training_ran(ev: Evidence) -> Verdict:
    try:
        summary = ev.claim("ex05_train_report", "train_summary")
        steps, loss = summary["steps"], summary["final_loss"]
    except (KeyError, TypeError):
        return fail("学習の結果（train_summary）が記録されていません。学習セルがエラーか時間切れになっていないか確認してください。")
    if not isinstance(loss, (int, float)) or not math.isfinite(loss):
        return Verdict(False, "学習の損失が NaN / inf になりました。学習率などを確認してください。 / The training loss is not finite.",
                       "loss_nan")
    if steps != ev.profile.max_steps:
        return fail(f"学習ステップ数は MAX_STEPS（{ev.profile.max_steps}）にしてください（記録: {steps}）。")
    return ok()


def load_adapter(ev: Evidence) -> tuple[ReferenceLM | None, Verdict | None]:
    """The student's adapter on the profile's base model, or why it cannot be used. The grader loads
    a copy of adapter_config.json and adapter_model.safetensors only (it never unpickles a .bin)."""
    path = _adapter_dir(ev)
    if not (path / "adapter_config.json").is_file():
        return None, Verdict(False, f"アダプタが見つかりません（{ev.inputs['ADAPTER_DIR']}/adapter_config.json）。"
                                    " / The adapter is missing.", "adapter_missing")
    if "adapter_copy" not in ev.memo:
        ev.memo["adapter_copy"] = copy_adapter(path, Path(ev.work_dir).parent / "adapter-checked")
    if not ev.memo["adapter_copy"]:
        return None, Verdict(False, "アダプタの重みが adapter_model.safetensors として保存されていません（save_pretrained の既定の形式で保存してください）。"
                                    " / The adapter weights are not saved as adapter_model.safetensors.", "adapter_invalid")
    try:
        return ReferenceLM(_model_id(ev), str(ev.memo["adapter_copy"])), None
    except Exception as err:  # noqa: BLE001 - a broken adapter is the student's, reported, never raised
        text = str(err)
        code = "adapter_mismatch" if "size mismatch" in text or "shape" in text else "adapter_invalid"
        first = text.strip().splitlines()[0][:200] if text.strip() else type(err).__name__
        return None, Verdict(False, f"アダプタをベースモデルに読み込めません（別のモデルで学習したアダプタではありませんか）: {first}"
                                    f" / The adapter does not load on the base model.", code)


@check(EX)
def adapter_valid(ev: Evidence) -> Verdict:
    lm, problem = load_adapter(ev)
    if problem:
        return problem
    saved = json.loads((ev.memo["adapter_copy"] / "adapter_config.json").read_text())
    actual = {"r": saved.get("r"), "lora_alpha": saved.get("lora_alpha"),
              "target_modules": set(saved.get("target_modules") or ()), "lora_dropout": saved.get("lora_dropout")}
    if actual != REQUIRED_LORA:
        return fail(f"adapter_config.json の設定が課題と違います: {actual}")
    weights = [p for n, p in lm.model.named_parameters() if "lora_" in n]
    if not all(bool(p.isfinite().all()) for p in weights):
        return Verdict(False, "アダプタの重みに NaN / inf が含まれています（学習の損失が NaN になっています）。"
                              " / The adapter weights are not finite: the training loss went NaN.", "loss_nan")
    lora = sum(p.numel() for p in weights)
    expected = lora_trainable_params(_base_config(ev), REQUIRED_LORA["r"], sorted(REQUIRED_LORA["target_modules"]))
    if lora != expected:
        return fail(f"保存されたアダプタのパラメータ数 {lora} が計算値 {expected} と一致しません。")
    return ok()


def _heldout_prompts() -> list[str]:
    return json.loads(HELDOUT_PROMPTS.read_text(encoding="utf-8"))


@lru_cache(maxsize=4)
def base_heldout_rate(model_id: str, max_new_tokens: int) -> float:
    """The base model's rate: the same for every student, so computed once per process."""
    lm = ReferenceLM(model_id)
    return gozaru_rate(lm.answer([{"role": "user", "content": p}], max_new_tokens) for p in _heldout_prompts())


def heldout_rates(ev: Evidence, lm: ReferenceLM) -> tuple[float, float]:
    n = ev.profile.max_new_tokens
    tuned = [lm.answer([{"role": "user", "content": p}], n) for p in _heldout_prompts()]
    return gozaru_rate(tuned), base_heldout_rate(_model_id(ev), n)


@check(EX)
def gozaru_rate_heldout(ev: Evidence) -> Verdict:
    lm, problem = load_adapter(ev)
    if problem:
        return problem
    tuned, base = heldout_rates(ev, lm)
    need, lift = ev.profile.min_gozaru_rate, ev.profile.min_gozaru_lift
    if tuned < need or tuned - base < lift:
        return fail(f"採点用の未知のプロンプトでのござる率が {tuned:.2f}（学習前 {base:.2f}）です。"
                    f"{need:.2f} 以上、かつ学習前より {lift:.2f} 以上の向上が必要です。")
    return ok(f"ござる率 {tuned:.2f}（学習前 {base:.2f}）")
