"""Problems with a submission, each named in Japanese and English (one place for the wording)."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from ..config import REPO_ROOT, load_course


@dataclass(frozen=True)
class Problem:
    code: str
    message_ja: str
    message_en: str
    fatal: bool  # True: the exercise could not be graded (score 0)

    def to_json(self) -> dict:
        return asdict(self)


_TEXT = {
    "notebook_missing": (True, "ノートブック {path} が見つかりません。ファイル名と場所を変えずに提出してください。",
                         "Notebook {path} is missing. Submit it under its original name and folder."),
    "notebook_malformed": (True, "ノートブック {path} を読み込めません（壊れた .ipynb です）: {detail}",
                           "Notebook {path} could not be read (malformed .ipynb): {detail}"),
    "cell_restored": (False, "削除されていた保護セル {cells} を元に戻して採点しました。",
                      "Deleted protected cells {cells} were restored before grading."),
    "cell_edited": (False, "編集されていた保護セル {cells} を元の内容に戻して採点しました（編集による得点はありません）。",
                    "Edited protected cells {cells} were reset to their original content before grading."),
    "cell_timeout": (False, "セル {cells} が制限時間（{seconds} 秒）内に終わらなかったため中断しました。無限ループがないか確認してください。",
                     "Cells {cells} did not finish within {seconds} s and were interrupted. Look for an infinite loop."),
    "kernel_died": (False, "実行中にカーネルが停止しました（セル {cell}）。それ以降のセルは実行されず 0 点です。",
                    "The kernel died while running cell {cell}; the cells after it did not run and score 0."),
    "tests_unconfirmed": (False, "カーネル内のテストは通りましたが、API の記録などで裏付けられなかったため得点にならないセルがあります: {cells}",
                          "Tests passed inside the kernel but were not confirmed from outside it, so they score 0: {cells}"),
    "adapter_missing": (False, "LoRA アダプタが保存されていません。", "The LoRA adapter was not saved."),
    "adapter_mismatch": (False, "保存された LoRA アダプタが別のベースモデル用です（形が合いません）。",
                         "The saved LoRA adapter was trained on another base model (shape mismatch)."),
    "adapter_invalid": (False, "保存された LoRA アダプタを読み込めません。", "The saved LoRA adapter cannot be loaded."),
    "target_modules_missing": (False, "LoraConfig の target_modules にモデルに無い層が指定されています。",
                               "LoraConfig.target_modules names layers the model does not have."),
    "loss_nan": (False, "学習の損失が NaN / inf になりました。", "The training loss became NaN or inf."),
    "reference_adapter_used": (False, "Exercise 5 のアダプタを使えなかった（同時に採点していない・保存されていない・不正）ため、Exercise 6 は参照用アダプタで採点しました（Exercise 6 の得点には影響しません）。",
                               "No usable Exercise 5 adapter (not graded together, not saved, or invalid): Exercise 6 was graded with the reference adapter."),
    "mlflow_store_missing": (False, "MLflow の記録（トラッキングストア）が見つかりません。",
                             "No MLflow tracking store was found."),
    "mlflow_no_runs": (False, "MLflow に run が 1 つも記録されていません。", "No MLflow runs were logged."),
    "mlflow_wrong_experiment": (False, "指定の MLflow 実験に run がなく、別の実験に記録されています（EXPERIMENT_NAME を使ってください）。",
                                "No runs in the expected MLflow experiment; they were logged to another one."),
    "mlflow_invalid_metric": (False, "MLflow のメトリクスに欠け・NaN・範囲外の値があります。",
                              "MLflow metrics are missing, NaN or out of range."),
    "registry_failed": (False, "モデルレジストリへの登録、エイリアス champion の設定、またはモデルの読み込みができていません。",
                        "Registering the model, setting the champion alias or loading the model failed."),
    "submission_link": (True, "提出物に、シンボリックリンク・ハードリンク・FIFO・デバイスなど通常のファイルでないものがあります（{entries}）。採点できないため 0 点です。通常のファイルとして提出してください。",
                        "The submission contains links or special files ({entries}); they are refused and this exercise scores 0. Submit plain files."),
    "work_link": (False, "ノートブックが作ったリンクや特殊ファイル（{entries}）は、採点では読みませんでした。",
                  "Links or special files the notebook created ({entries}) were not read by the grader."),
    "memory_limit": (False, "セル {cells} がメモリの上限（{memory_mb} MB）を超えました。",
                     "Cells {cells} exceeded the memory limit ({memory_mb} MB)."),
    "process_limit": (False, "セル {cells} がプロセス・スレッド数の上限（{processes}）に達しました。",
                      "Cells {cells} reached the limit on processes and threads ({processes})."),
    "file_size_limit": (False, "セル {cells} がファイルサイズの上限（{file_size_mb} MB）を超えて書き込もうとしました。",
                        "Cells {cells} tried to write a file larger than the limit ({file_size_mb} MB)."),
    "network_blocked": (False, "セル {cells} が採点用 API サーバー以外へ接続しようとしました。採点環境では外部に接続できません。",
                        "Cells {cells} tried to reach the network beyond the grading API server, which the grader does not allow."),
    "sandbox_denied": (False, "セル {cells} が、採点環境で許されていない場所（作業フォルダの外）へのアクセスや操作をしようとしました。",
                       "Cells {cells} tried to access or change something outside their work folder, which the grader does not allow."),
    "grading_timeout": (True, "この演習の採点が制限時間（{seconds} 秒）を超えたため打ち切りました。",
                        "Grading this exercise exceeded {seconds} s and was stopped."),
    "autograde_failed": (True, "採点ツール（nbgrader）がこのノートブックを採点できませんでした: {detail}",
                         "nbgrader could not autograde this notebook: {detail}"),
    "grader_error": (True, "採点システム内部のエラーです。TA に連絡してください: {detail}",
                     "Internal grader error; please contact a TA: {detail}"),
}


def problem(code: str, **fields) -> Problem:
    fatal, ja, en = _TEXT[code]
    return Problem(code, ja.format(**fields), en.format(**fields), fatal)


# A cell error that shows which limit of the sandbox it hit: (problem code, texts any of which identify it).
LIMIT_ERRORS = (
    ("memory_limit", ("MemoryError", "can't allocate memory", "Cannot allocate memory", "[Errno 12]")),
    ("process_limit", ("[Errno 11] Resource temporarily unavailable", "can't start new thread")),
    ("file_size_limit", ("[Errno 27]", "File too large")),
    ("network_blocked", ("[Errno 101]", "Network is unreachable", "[Errno 111]", "Temporary failure in name resolution",
                         "Name or service not known")),
    ("sandbox_denied", ("[Errno 30]", "Read-only file system", "[Errno 13]", "[Errno 1] Operation not permitted")),
)


def _names_the_checkout(text: str) -> bool:
    """An error about a path of the grader's checkout (invisible in the sandbox), other than the runtime it sees."""
    return any(str(REPO_ROOT / part) in text for part in ("source", "autograder", "release", ".git", "nbgrader_config.py"))


def limit_problems(errors_by_cell: dict[str, list[tuple[str, str]]]) -> list[Problem]:
    """One problem per limit that cell errors name, listing the cells."""
    found: dict[str, list[str]] = {}
    for cell, errors in errors_by_cell.items():
        for ename, evalue in errors:
            text = f"{ename}: {evalue}"
            code = next((c for c, marks in LIMIT_ERRORS if any(m in text for m in marks)), None)
            if code is None and _names_the_checkout(text):
                code = "sandbox_denied"
            if code and cell not in found.setdefault(code, []):
                found[code].append(cell)
    limits = load_course().sandbox
    return [problem(code, cells=", ".join(cells), **limits) for code, cells in found.items()]
