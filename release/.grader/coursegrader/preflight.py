"""The notebooks' first check: what works where the student runs them (Databricks, serverless or not, a local
Jupyter), before the exercise spends time on it. The locked first cell of ex01 and ex04-ex06 calls preflight();
it prints one line per finding, in Japanese with the next step, and never raises. In grading it is not called
(the cell skips it when COURSE_PROFILE is set): the grader runs its own profile.

Each check asks the real service at its network boundary: the GPU through torch, the Hugging Face Hub over HTTPS
(HF_ENDPOINT, as huggingface_hub does), the Foundation Model endpoint through the Databricks SDK.
"""
from __future__ import annotations

import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from .config import Course, load_course
from .precision import Precision, precision_for

HUB_MODEL = "google/gemma-3-270m-it"  # the gpu profile's model: what ex04-ex06 download on Databricks
TIMEOUT_S = 10  # one request's limit
RETRY_S = 3  # the SDK's retries of a connection that fails: a preflight answers quickly, the exercise retries later


class Status(str, Enum):
    OK = "OK"
    WARN = "注意"
    FAIL = "NG"


@dataclass(frozen=True)
class Finding:
    topic: str
    status: Status
    message: str  # what was found, in Japanese
    next_step: str = ""  # what to do about it, in Japanese

    def line(self) -> str:
        return f"[{self.status.value}] {self.topic}: {self.message}" + (f" → {self.next_step}" if self.next_step else "")


# -- where the notebook runs --------------------------------------------------------------------------------------

def platform(env=os.environ) -> Finding:
    runtime = env.get("DATABRICKS_RUNTIME_VERSION")
    if not runtime:
        return Finding("実行環境", Status.OK, "ローカルの Jupyter（Databricks の外）です。",
                       "Foundation Model API には DATABRICKS_HOST と DATABRICKS_TOKEN の設定が必要です。")
    if env.get("IS_SERVERLESS", "").upper() == "TRUE" or runtime.startswith("client."):
        return Finding("実行環境", Status.OK, f"Databricks のサーバーレス（{runtime}）です。Free Edition もこれです。",
                       "Free Edition には GPU がなく、インターネット接続と 1 日の利用量に制限があります（README の Free Edition の節）。")
    return Finding("実行環境", Status.OK, f"Databricks のクラスター（Runtime {runtime}）です。")


# -- GPU and precision ------------------------------------------------------------------------------------------

def gpu(needs_model: bool, bf16_min_capability: tuple[int, int]) -> Finding:
    try:
        import torch
    except ImportError:
        return Finding("GPU", Status.FAIL, "torch がインストールされていません。", "ノートブック先頭の %pip のセルを実行してください。")
    if not torch.cuda.is_available():
        status = Status.WARN if needs_model else Status.OK
        return Finding("GPU", status, "GPU はありません。CPU・float32 で動きます。",
                       "CPU ではモデルの実行と学習に時間がかかります。GPU のあるクラスターが使えるなら切り替えてください。"
                       if needs_model else "")
    capability = tuple(torch.cuda.get_device_capability())
    chosen = precision_for(capability, bf16_min_capability)
    name = torch.cuda.get_device_name()
    why = "" if chosen is Precision.BF16 else "（bf16 は計算能力 8.0 以上の GPU だけで使います。T4 などでは float32 です）"
    return Finding("GPU", Status.OK, f"{name}（計算能力 {capability[0]}.{capability[1]}）: {chosen.value} で動きます{why}。")


# -- Hugging Face ---------------------------------------------------------------------------------------------

def hub_token(env=os.environ) -> str | None:
    """HF_TOKEN, else what `hf auth login` saved (huggingface_hub's own lookup, where it is installed)."""
    if env.get("HF_TOKEN"):
        return env["HF_TOKEN"]
    try:
        from huggingface_hub import get_token
    except ImportError:
        return None
    return get_token()


def hub(env=os.environ, model: str = HUB_MODEL) -> Finding:
    """A file of the gated model, asked for as the download will ask: 200 with access, 401 without a valid
    token, 403 until the licence is accepted, no answer where the network does not reach the Hub."""
    endpoint = env.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    token = hub_token(env)
    request = urllib.request.Request(f"{endpoint}/{model}/resolve/main/config.json", method="HEAD")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S):
            return Finding("Hugging Face", Status.OK, f"{model} をダウンロードできます。")
    except urllib.error.HTTPError as err:
        if err.code == 401:
            return Finding("Hugging Face", Status.FAIL,
                           "トークンがないか無効です（401）。" if token else "トークンが設定されていません（401）。",
                           "Hugging Face でアクセストークン（Read）を作り、Databricks のシークレットに保存して HF_TOKEN に設定してください（README の Hugging Face の節）。")
        if err.code == 403:
            return Finding("Hugging Face", Status.FAIL, f"{model} の利用規約に同意していません（403）。",
                           f"https://huggingface.co/{model} を開き、ログインして Gemma のライセンスに同意してください。")
        return Finding("Hugging Face", Status.FAIL, f"Hub が HTTP {err.code} を返しました。", "しばらく待ってから再実行してください。")
    except (urllib.error.URLError, OSError) as err:
        return Finding("Hugging Face", Status.FAIL, f"Hub に接続できません（{_reason(err)}）。",
                       "Free Edition などインターネットが制限された環境では、講師が Volume に用意したモデルを使います（README の Free Edition の節）。")


def mirror(root: str, model: str = HUB_MODEL) -> Finding:
    """The instructor's copy of the Hub repositories (course.toml [hub_mirror]), which the notebooks read instead
    of the Hub: the model's config must be readable there."""
    try:
        if (Path(root) / model / "config.json").is_file():
            return Finding("モデルの置き場所", Status.OK, f"{model} を {root} から読みます（Hugging Face には接続しません）。")
        found = Path(root).is_dir()
    except OSError as err:
        return Finding("モデルの置き場所", Status.FAIL, f"{root} を読めません（{_reason(err)}）。",
                       "Volume の読み取り権限（READ VOLUME）があるか、講師に確認してください。")
    if not found:
        return Finding("モデルの置き場所", Status.FAIL, f"講師が用意したフォルダ {root} が見つからないか、読めません。",
                       "Volume の読み取り権限（READ VOLUME）とパスを講師に確認してください。")
    return Finding("モデルの置き場所", Status.FAIL, f"{root} に {model} がありません。",
                   "講師に連絡してください（フォルダの作り方: python -m autograder mirror）。")


# -- the Foundation Model endpoint ----------------------------------------------------------------------------

def endpoint(name: str) -> Finding:
    """The serving endpoint (course.toml's chat_model), through the Databricks SDK as the exercises reach it."""
    try:
        from databricks.sdk import WorkspaceClient
        from databricks.sdk.errors import NotFound, PermissionDenied, Unauthenticated
    except ImportError:
        return Finding("Foundation Model API", Status.FAIL, "databricks-sdk がインストールされていません。",
                       "ノートブック先頭の %pip のセルを実行してください。")
    try:
        from databricks.sdk.config import Config

        client = WorkspaceClient(config=Config(http_timeout_seconds=TIMEOUT_S, retry_timeout_seconds=RETRY_S))
        state = client.serving_endpoints.get(name).state
    except NotFound:
        return Finding("Foundation Model API", Status.FAIL, f"エンドポイント {name} が見つかりません（404）。",
                       "廃止された可能性があります。講師に連絡してください（README の「エンドポイントが使えないとき」）。")
    except (PermissionDenied, Unauthenticated) as err:
        return Finding("Foundation Model API", Status.FAIL, f"エンドポイント {name} に権限がありません（{type(err).__name__}）。",
                       "ワークスペースの管理者に Foundation Model API の利用権限を確認してください。")
    except Exception as err:  # noqa: BLE001 - the SDK's config, network and server errors: each says its own reason
        return Finding("Foundation Model API", Status.FAIL, f"エンドポイントに接続できません（{_reason(err)}）。",
                       "Databricks 上で実行しているか、ローカルなら DATABRICKS_HOST と DATABRICKS_TOKEN を確認してください。")
    ready = state.ready.value if state is not None and state.ready is not None else None
    if ready not in ("READY", None):
        return Finding("Foundation Model API", Status.WARN, f"エンドポイント {name} は {ready} です。", "数分待ってから再実行してください。")
    return Finding("Foundation Model API", Status.OK, f"エンドポイント {name} が使えます。")


def _reason(err: BaseException) -> str:
    reason = getattr(err, "reason", None) or err
    return f"{type(reason).__name__}: {reason}"[:160]


# -- the cell -------------------------------------------------------------------------------------------------

def findings(exercise_id: str, course: Course, env=os.environ) -> list[Finding]:
    """What this exercise needs: the endpoint (an exercise with a cassette calls the API), the GPU and the Hub
    (an exercise that runs the local model)."""
    exercise = course.exercises[exercise_id]
    found = [platform(env)]
    if exercise.local_model:
        root = env.get(course.profile_env["hub_mirror"], course.hub_mirror)  # as the profile cell reads it
        found += [gpu(True, course.bf16_min_capability), mirror(root) if root else hub(env)]
    if exercise.cassette:
        found.append(endpoint(course.chat_model))
    return found


def preflight(exercise_id: str) -> list[Finding]:
    """Print what works here for this exercise; never raises. (The notebook's entry point: it reads course.toml.)"""
    try:
        found = findings(exercise_id, load_course())
    except Exception as err:  # noqa: BLE001 - a check that broke must not stop the notebook
        found = [Finding("環境の確認", Status.WARN, f"確認できませんでした（{type(err).__name__}: {err}）。")]
    print(f"{exercise_id} の環境の確認:")
    for finding in found:
        print("  " + finding.line())
    return found
