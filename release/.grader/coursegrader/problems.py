"""Problems with a submission and failures of evidence checks, each named by a code and worded in
Japanese and English: the one place for the wording.

`_TEXT` holds the exercise-level problems (listed in the report, see `problem`); `CHECK_FAILURES`
holds the reasons an evidence check fails a cell that are not listed as problems. A check's
`fail(code, **fields)` takes its code from either table (`wording`); `docs/problem-codes.md` is
generated from both (`render_problem_codes_doc`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from .config import REPO_ROOT


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
    "exercise_not_a_folder": (True, "{path} がフォルダではなくファイルになっています。配布版と同じく {path}/ フォルダの中にノートブックを置いて提出してください。",
                              "{path} is a file, not a folder. Submit the notebook inside the {path}/ folder, as released."),
    "notebook_malformed": (True, "ノートブック {path} を読み込めません（壊れた .ipynb です）: {detail}",
                           "Notebook {path} could not be read (malformed .ipynb): {detail}"),
    "notebook_unaligned": (True, "ノートブック {path} のセルを配布版のセルと対応づけられませんでした（見つからないセル: {cells}）。"
                                 "配布版のノートブックから始め、解答のセルだけを書き換えて提出し直してください。",
                           "The cells of {path} could not be matched with the release's cells (not found: {cells}). "
                           "Start from the release notebook, change only the answer cells, and submit again."),
    "exercise_not_started": (True, "未着手: コードのセルが配布版のままなので、実行せずに 0 点としました。解答を書いて保存し、commit すると採点されます。",
                             "Not started: every code cell is as released, so the exercise was not run and scores 0. "
                             "Write your answers, save and commit to have it graded."),
    "cells_matched_by_content": (False, "保存した環境: {saved_by}。nbgrader のセル情報（メタデータ）が残らない保存形式のため、"
                                        "セルは配布版と内容と順番で照合して採点しました。対応は不要です。",
                                 "The notebook was saved by {saved_by}, without nbgrader's cell metadata: its cells "
                                 "were matched with the release by their content and order. Nothing for you to do."),
    "cell_metadata_ignored": (False, "セル {cells} の nbgrader メタデータは、内容と位置から分かるセルと食い違っていました。"
                                     "内容と位置に従って採点しました。",
                              "The nbgrader metadata of cells {cells} disagrees with what their content and position "
                              "show: they were graded by content and position."),
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
    # No fields: the ex05 -> ex06 handoff names it too (grading/handoff.py).
    "adapter_missing": (False, "LoRA アダプタが保存されていません（ADAPTER_DIR のフォルダに adapter_config.json がありません）。",
                        "The LoRA adapter was not saved (there is no adapter_config.json in the ADAPTER_DIR folder)."),
    "adapter_mismatch": (False, "保存された LoRA アダプタが別のベースモデル用です（形が合いません）: {error}",
                         "The saved LoRA adapter was trained on another base model (shape mismatch): {error}"),
    "adapter_invalid": (False, "保存された LoRA アダプタをベースモデルに読み込めません（別のモデルで学習したアダプタではありませんか）: {error}",
                        "The saved LoRA adapter cannot be loaded on the base model (was it trained on another model?): {error}"),
    "adapter_over_limit": (False, "保存された LoRA アダプタが採点の上限を超えているため、読み込みませんでした: {detail}",
                           "The saved LoRA adapter is over the grader's limits and was not loaded: {detail}"),
    "adapter_not_safetensors": (False, "アダプタの重みが adapter_model.safetensors として保存されていません（save_pretrained の既定の形式で保存してください）。",
                                "The adapter weights were not saved as adapter_model.safetensors (save them in save_pretrained's default format)."),
    "target_modules_missing": (False, "LoraConfig の target_modules に、モデルに存在しない層の名前が指定されています（Gemma 3 では q_proj, v_proj など）。",
                               "LoraConfig.target_modules names layers the model does not have (for Gemma 3: q_proj, v_proj, ...)."),
    "loss_nan": (False, "学習の損失が NaN / inf になりました（損失か保存されたアダプタの重みに NaN / inf があります）。学習率などを確認してください。",
                 "The training loss became NaN or inf (the loss or the saved adapter weights are not finite). Check the learning rate and other settings."),
    "reference_adapter_used": (False, "Exercise 5 のアダプタを使えなかった（同時に採点していない・保存されていない・不正）ため、Exercise 6 は参照用アダプタで採点しました（Exercise 6 の得点には影響しません）。",
                               "No usable Exercise 5 adapter (not graded together, not saved, or invalid): Exercise 6 was graded with the reference adapter."),
    "reference_adapter_unavailable": (False, "Exercise 5 のアダプタを使えず、この採点環境（プロファイル {profile}）には参照用アダプタもまだありません。Exercise 6 の評価セルはアダプタなしで実行されたため、失った点は担当者が再採点します。",
                                      "No usable Exercise 5 adapter, and this grader (profile {profile}) has no reference adapter yet: Exercise 6 ran without an adapter, so the points it lost will be regraded by staff."),
    "fixture_scripted": (False, "API の応答のうち {count} 件は録画ではなく、決まった規則で作った代替の応答です（{ids}。例: LLM-as-a-judge はござる口調なら 4〜5 点、それ以外は 1〜3 点）。点数の計算には影響しません。",
                         "{count} API answers were not recordings but scripted by a fixed rule ({ids}; e.g. the LLM judge gives 4-5 to ござる-style answers, else 1-3). Scoring is unaffected."),
    "mlflow_store_missing": (False, "MLflow の記録（トラッキングストア {store}）が見つかりません。run を記録してください。",
                             "No MLflow tracking store ({store}) was found. Log the runs."),
    "mlflow_store_unusable": (False, "ノートブックのフォルダの MLflow ストア {store} は安全に開けない（SQLite でない・壊れている・時間がかかりすぎる）ため、読みませんでした: {detail}",
                              "The MLflow store {store} in the notebook's folder could not be opened safely (not SQLite, damaged, or too slow) and was not read: {detail}"),
    "mlflow_no_runs": (False, "MLflow に run が 1 つも記録されていません。", "No MLflow runs were logged."),
    "mlflow_wrong_experiment": (False, "指定の MLflow 実験 {experiment} に run がなく、別の実験（{found}）に記録されています（EXPERIMENT_NAME を使ってください）。",
                                "No runs in the expected MLflow experiment {experiment}; they were logged to another one ({found}). Use EXPERIMENT_NAME."),
    "mlflow_invalid_metric": (False, "MLflow のメトリクスに欠け・NaN・範囲外の値があります: {metrics}",
                              "MLflow metrics are missing, NaN or out of range: {metrics}"),
    "registry_failed": (False, "モデルレジストリへの登録、エイリアス champion の設定、またはモデルの読み込みができていません"
                               "（登録モデル {model}。ステージではなくエイリアスを使います）: {detail}",
                        "Registering the model, setting the champion alias or loading the model failed "
                        "(registered model {model}; use an alias, not a stage): {detail}"),
    "submission_link": (True, "提出物に、シンボリックリンク・ハードリンク・FIFO・デバイスなど通常のファイルでないものがあります（{entries}）。採点できないため 0 点です。通常のファイルとして提出してください。",
                        "The submission contains links or special files ({entries}); they are refused and this exercise scores 0. Submit plain files."),
    "work_link": (False, "ノートブックが作ったリンクや特殊ファイル、作業フォルダの外を指す保存先（{entries}）は、採点では読みませんでした。",
                  "Links, special files or storage locations outside the work folder that the notebook created ({entries}) "
                  "were not read by the grader."),
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




# Why an evidence check failed a cell, when that is not an exercise-level problem: code -> (ja, en).
# A check returns `fail(code, **fields)` (autograder/evidence.py); a code is in this table or in `_TEXT`, never both.
CHECK_FAILURES: dict[str, tuple[str, str]] = {
    # shared
    "claim_missing": ("{name} が記録されていません（セル {grade_id} まで実行されたか確認してください）。",
                      "{name} was not reported (check that the notebook ran up to cell {grade_id})."),
    "claim_mismatch": ("{name} が API の記録から計算した値と一致しません。期待値: {expected}",
                       "{name} does not match the value computed from the API log. Expected: {expected}"),
    "check_crashed": ("記録を検証できませんでした（{error_type}: {error}）",
                      "The evidence could not be checked ({error_type}: {error})"),
    # ex01 Chat Completion
    "ex01_no_authorized_request": (
        "Foundation Model API への認証済みリクエストが記録されていません。"
        "WorkspaceClient().serving_endpoints.get_open_ai_client() で作成した client を使ってください。",
        "No authenticated request to the Foundation Model API was logged. "
        "Use the client created with WorkspaceClient().serving_endpoints.get_open_ai_client()."),
    "ex01_qa_request_missing": ("QA_QUESTION だけを user メッセージとして送ったリクエストが見つかりません。",
                                "No request was found that sent QA_QUESTION alone as the user message."),
    "ex01_wrong_model": ("model には MODEL_NAME（{model}）を指定してください。",
                         "Set model to MODEL_NAME ({model})."),
    "ex01_request_settings": ("リクエストの {setting} が {sent} でした。課題の指定どおり {expected} を指定してください。",
                              "A request was sent with {setting}={sent}; the exercise asks for {expected}."),
    "ex01_system_prompt_missing": ("先頭に SYSTEM_PROMPT の system メッセージを置いたリクエストが見つかりません。",
                                   "No request was found that starts with SYSTEM_PROMPT as a system message."),
    "ex01_baseline_request_missing": ("比較用の、システムプロンプトなしのリクエストが見つかりません。",
                                      "The request without a system prompt, for comparison, was not found."),
    "ex01_temperature_trials": ("temperature={temperature} のリクエストが {count} 回しか記録されていません（{trials} 回必要）。",
                                "Only {count} requests with temperature={temperature} were logged ({trials} needed)."),
    "ex01_history_missing": ("{turn} ターン目のリクエストに、それまでの会話履歴（system と過去の user / assistant）が含まれていません。",
                             "The request of turn {turn} does not contain the conversation so far "
                             "(the system message and the earlier user / assistant messages)."),
    "ex01_usage_requests_missing": ("USAGE_QUESTIONS の各質問を送ったリクエストが揃っていません。",
                                    "Not every question in USAGE_QUESTIONS was sent in a request."),
    # ex02 Structured Outputs
    "ex02_schema_not_sent": ("スキーマ名 {schema}・strict: true のリクエストが成功していません。",
                             "No request with schema name {schema} and strict: true succeeded."),
    "ex02_single_request_missing": ("2.2 のリクエスト（system に EXTRACTION_SYSTEM_PROMPT、user に REVIEW_SINGLE、"
                                    "スキーマ名 review_analysis・strict: true）が成功していません。",
                                    "2.2's request (EXTRACTION_SYSTEM_PROMPT as system, REVIEW_SINGLE as user, schema "
                                    "review_analysis with strict: true) did not succeed."),
    "ex02_single_settings": ("2.2 のリクエストは model={model}、temperature=0.0 で送ってください。",
                             "Send 2.2's request with model={model} and temperature=0.0."),
    "ex02_rating_not_integer": ("送信したスキーマの rating が integer ではありません。",
                                "In the schema you sent, rating is not an integer."),
    "ex02_product_name_not_string": ("送信したスキーマの product_name が string ではありません。",
                                     "In the schema you sent, product_name is not a string."),
    "ex02_sentiment_not_enum": ("送信したスキーマの sentiment が positive / negative / neutral の enum ではありません。",
                                "In the schema you sent, sentiment is not the enum positive / negative / neutral."),
    "ex02_fields_not_required": ("送信したスキーマで3つのフィールドが required になっていません。",
                                 "The schema you sent does not list the three fields as required."),
    "ex02_detailed_features": ("送信した detailed_review スキーマが仕様と違います: features は name と opinion を持つオブジェクトのリスト",
                               "The detailed_review schema you sent does not match the specification: "
                               "features is a list of objects with name and opinion"),
    "ex02_detailed_would_recommend": ("送信した detailed_review スキーマが仕様と違います: would_recommend は boolean",
                                      "The detailed_review schema you sent does not match the specification: "
                                      "would_recommend is a boolean"),
    "ex02_detailed_category": ("送信した detailed_review スキーマが仕様と違います: category は5値の enum",
                               "The detailed_review schema you sent does not match the specification: "
                               "category is an enum of five values"),
    "ex02_field_description_missing": ("送信した {schema} スキーマの {field} に description がありません。"
                                       "Field(description=...) で項目の意味をモデルに伝えてください（2.1）。",
                                       "{field} in the {schema} schema you sent has no description. Give each field "
                                       "its meaning with Field(description=...) (2.1)."),
    "ex02_rating_range_not_described": ("送信した {schema} スキーマの rating の description に範囲（1〜5）が書かれていません（2.1）。",
                                        "The description of rating in the {schema} schema you sent does not state its "
                                        "range (1-5) (2.1)."),
    "ex02_detailed_string_list": ("送信した detailed_review スキーマが仕様と違います: {key} は文字列のリスト",
                                  "The detailed_review schema you sent does not match the specification: "
                                  "{key} is a list of strings"),
    "ex02_batch_requests_missing": ("REVIEWS のすべてのレビューについて detailed_review のリクエストが成功していません。",
                                    "The detailed_review request did not succeed for every review in REVIEWS."),
    "ex02_batch_incomplete": ("集計の元になる一括分析のリクエストが揃っていません。",
                              "The batch analysis requests that the summary is built from are incomplete."),
    "ex02_validation_mismatch": ("validate_review の結果が、隠しテストの {count} 件のルール判定と一致しません。",
                                 "The results of validate_review do not match the rule decisions of the {count} hidden test cases."),
    "ex02_rating_description": ("rating の description に、取り除いた制約（minimum=1, maximum=5）が書かれていません。",
                                "The description of rating does not state the removed constraints (minimum=1, maximum=5)."),
    # ex02_spark, the Spark bonus
    "ex02_spark_request_missing": ("レビュー {review_id} について、review_triage のリクエストが成功していません。",
                                   "No review_triage request succeeded for review {review_id}."),
    "ex02_spark_request_settings": ("レビュー {review_id} のリクエストは、TRIAGE_SYSTEM_PROMPT の system メッセージと"
                                    "レビュー本文の user メッセージを、response_format=TRIAGE_FORMAT（strict: true）、"
                                    "model={model}、temperature=0.0 で送ってください。",
                                    "Send review {review_id}'s request as TRIAGE_SYSTEM_PROMPT's system message and the "
                                    "review's user message, with response_format=TRIAGE_FORMAT (strict: true), "
                                    "model={model} and temperature=0.0."),
    "ex02_spark_udf_results": ("batch_results が、UDF のリクエストにモデルが返した答えと一致しません。",
                               "batch_results does not match what the model answered to the UDF's requests."),
    "ex02_spark_results_missing": ("RESULTS_DIR に結果のファイルがありません（write_batch が書いていません）。",
                                   "RESULTS_DIR holds no result files (write_batch wrote none)."),
    "ex02_spark_results_unreadable": ("RESULTS_DIR の結果を読めません。Spark が書く JSON 行のファイルだけを置いてください"
                                      "（リンク、JSON のオブジェクトでない行、1 MB を超える出力は読みません）。",
                                      "The results in RESULTS_DIR cannot be read. Leave only the JSON-lines files Spark "
                                      "writes there (links, lines that are not JSON objects and output over 1 MB are "
                                      "not read)."),
    "ex02_spark_stream_rows": ("RESULTS_DIR にレビュー {review_id} の行が {count} 回あります。各レビューを 1 回ずつ書いてください"
                               "（追記の mode と、2 回目の実行が同じファイルを処理し直さないためのチェックポイントを確かめてください）。",
                               "RESULTS_DIR holds review {review_id} {count} times. Write each review once (check the "
                               "append mode, and the checkpoint that keeps the second run from processing the same "
                               "file again)."),
    "ex02_spark_stream_extra_rows": ("RESULTS_DIR の行が {count} 行あります。届いたレビューは {expected} 件です。",
                                     "RESULTS_DIR holds {count} rows; {expected} reviews arrived."),
    "ex02_spark_stream_answer": ("RESULTS_DIR のレビュー {review_id} の分類が、モデルの答えと一致しません。",
                                 "The classification of review {review_id} in RESULTS_DIR does not match the "
                                 "model's answer."),
    "ex02_spark_stream_batches": ("{files} つのファイルで届いたレビューが、ファイルごとのマイクロバッチ（batch_id）で"
                                  "書かれていません。",
                                  "The reviews of the {files} delivered files were not written one micro-batch "
                                  "(batch_id) per file."),
    # ex03 Function Calling
    "ex03_description_missing": ("ツール定義 {tool} に description がありません。モデルは description を読んで、"
                                 "どのツールをどの引数で呼ぶかを決めます。",
                                 "The tool definition {tool} has no description. The model reads the descriptions "
                                 "to choose a tool and its arguments."),
    "ex03_no_tool_request": ("「{question}」について、tools 付きの最初のリクエストが成功していません。",
                             "For “{question}”, the first request with tools did not succeed."),
    "ex03_no_tool_result": ("「{question}」について、ツールの実行結果（tool メッセージ）を送り返したリクエストがありません。",
                            "For “{question}”, no request sent the tool results (tool messages) back."),
    "ex03_assistant_tool_calls_missing": (
        "tool メッセージの前に、モデルが返した tool_calls をそのまま含む assistant メッセージを送ってください。",
        "Before the tool messages, send an assistant message that contains the tool_calls the model returned, unchanged."),
    "ex03_tool_call_id_mismatch": ("各 tool_call に対して、同じ id を tool_call_id に持つ tool メッセージを1つずつ送ってください。",
                                   "For each tool_call, send one tool message whose tool_call_id is that call's id."),
    "ex03_tool_content_not_json": ("tool メッセージの content は JSON 文字列にしてください（json.dumps）。",
                                   "Make the content of a tool message a JSON string (json.dumps)."),
    "ex03_no_final_answer": ("ツール結果を送った後の最終回答が得られていません。",
                             "No final answer was received after sending the tool results."),
    "ex03_no_tools_sent": ("tools を付けたリクエストが成功していません。",
                           "No request with tools succeeded."),
    "ex03_tool_names": ("送信したツール名が仕様と違います: {names}",
                        "The tool names you sent do not match the specification: {names}"),
    "ex03_tool_parameters": ("{tool} の parameters（type: object / required）が仕様と違います。",
                             "The parameters of {tool} (type: object / required) do not match the specification."),
    "ex03_argument_type": ("{tool} の引数 {argument} の型は {type} にしてください。",
                           "Make the type of argument {argument} of {tool} {type}."),
    "ex03_argument_enum": ("{tool} の引数 {argument} の enum は {values} にしてください。",
                           "Make the enum of argument {argument} of {tool} {values}."),
    "ex03_tool_result_wrong": ("{tool} の実行結果が正しくありません。期待値: {expected}",
                               "The result of {tool} is wrong. Expected: {expected}"),
    "ex03_no_tool_results": ("ツールの実行結果を送ったリクエストが記録されていません。",
                             "No request that sent tool results was logged."),
    "ex03_tools_not_distinct": ("3つの質問で、それぞれ別のツールが使われていません。",
                                "The three questions did not each use a different tool."),
    "ex03_tool_choice_missing": ("tool_choice={tool_choice} のリクエストが成功していません。",
                                 "No request with tool_choice={tool_choice} succeeded."),
    # ex04 local inference
    "ex04_model_mismatch": ("読み込んだモデルが MODEL_ID のモデルと一致しません（期待: {expected}）。",
                            "The loaded model is not the model of MODEL_ID (expected: {expected})."),
    "ex04_prompt_mismatch": ("qa_prompt がチャットテンプレート（add_generation_prompt=True）の出力と一致しません。",
                             "qa_prompt does not match the output of the chat template (add_generation_prompt=True)."),
    "ex04_greedy_mismatch": ("qa_answer が、貪欲法で生成して新しいトークンだけをデコードした結果と一致しません。",
                             "qa_answer does not match greedy generation with only the new tokens decoded."),
    "ex04_pipeline_mismatch": ("pipeline_answer が貪欲法の生成結果と一致しません（return_full_text=False を確認）。",
                               "pipeline_answer does not match greedy generation (check return_full_text=False)."),
    "ex04_multi_turn_mismatch": ("followup_answer が、最初の回答を含む会話履歴から生成した結果と一致しません。",
                                 "followup_answer does not match generation from the conversation history including the first answer."),
    "ex04_task_answers_mismatch": ("task_answers がプロンプトごとの貪欲法の生成結果と一致しません。",
                                   "task_answers does not match greedy generation for each prompt."),
    "ex04_speed_missing": ("speed が記録されていないか、必要なキー（new_tokens, seconds, tokens_per_s, memory_mb）がありません。",
                           "speed was not reported or lacks a required key (new_tokens, seconds, tokens_per_s, memory_mb)."),
    "ex04_new_tokens_wrong": ("new_tokens は新しく生成されたトークン数（{expected}）にしてください（記録: {recorded}）。",
                              "new_tokens must be the number of newly generated tokens ({expected}); reported: {recorded}."),
    "ex04_memory_wrong": ("memory_mb が {recorded} でした。CPU では model.get_memory_footprint() を MiB（2**20 バイト）に"
                          "した値（{expected}）になるはずです。",
                          "memory_mb was {recorded}; on a CPU it is model.get_memory_footprint() in MiB (2**20 bytes): {expected}."),
    "ex04_speed_inconsistent": ("tokens_per_s は new_tokens / seconds で計算してください（seconds は generate にかかった"
                                "秒数、memory_mb は正の値）。",
                                "Compute tokens_per_s as new_tokens / seconds (seconds: how long generate took; "
                                "memory_mb is positive)."),
    "ex04_batch_mismatch": ("バッチ生成の結果が1件ずつの生成と一致しません。padding_side='left' にしていますか？",
                            "Batched generation does not match generating one prompt at a time. Did you set padding_side='left'?"),
    # ex05 LoRA fine-tuning
    "ex05_split_mismatch": ("split が、同じ変換と train_test_split(test_size=0.1, seed=42) の結果と一致しません。",
                            "split does not match the same conversion followed by train_test_split(test_size=0.1, seed=42)."),
    "ex05_quantization_mismatch": ("BitsAndBytesConfig は 4bit・nf4・compute_dtype=DTYPE（最初のセルが決める精度）・二重量子化にしてください。",
                                   "Configure BitsAndBytesConfig with 4-bit, nf4, compute_dtype=DTYPE (the precision the first cell chooses) and double quantization."),
    "ex05_lora_params_mismatch": ("学習可能パラメータ数が r(d_in+d_out)×層数 の計算と一致しません（期待: {expected}）。",
                                  "The trainable parameter count does not match r(d_in+d_out) × layers (expected: {expected})."),
    "ex05_train_summary_missing": ("学習の結果（train_summary）が記録されていません。学習セルがエラーか時間切れになっていないか確認してください。",
                                   "The training result (train_summary) was not reported. "
                                   "Check whether the training cell failed or timed out."),
    "ex05_adapter_untrained": ("保存されたアダプタの lora_B がすべて 0 です（LoRA の初期値のまま）。学習した trainer.model を保存してください。",
                               "Every lora_B weight of the saved adapter is zero (LoRA's initial value): the adapter was "
                               "never trained. Save the trained trainer.model."),
    "ex05_comparison_mismatch": ("学習前後の回答（COMPARE_PROMPTS）が、ベースモデルと保存したアダプタで貪欲法により生成した回答と"
                                 "一致しません。add_generation_prompt=True と、学習前は disable_adapter() の中で生成しているかを確かめてください。",
                                 "The before/after answers to COMPARE_PROMPTS are not the greedy answers of the base model "
                                 "and of the saved adapter. Check add_generation_prompt=True, and that \"before\" is "
                                 "generated inside disable_adapter()."),
    "ex05_wrong_max_steps": ("学習ステップ数は MAX_STEPS（{expected}）にしてください（記録: {recorded}）。",
                             "Train for MAX_STEPS ({expected}) steps; reported: {recorded}."),
    "ex05_loss_not_reduced": ("保存されたアダプタで、学習データの損失が下がっていません（採点側で計算: 学習前 {base:.3f}、"
                              "学習後 {tuned:.3f}）。学習したモデルのアダプタを保存しているか確かめてください。",
                              "With the saved adapter, the loss on the training data did not go down (computed by "
                              "the grader: {base:.3f} before, {tuned:.3f} after). Check that you saved the trained "
                              "model's adapter."),
    "ex05_adapter_config_wrong": ("5.3 の LoraConfig（保存された adapter_config.json の設定）が課題と違います: {config}",
                                  "5.3's LoraConfig (as the saved adapter_config.json records it) differs from "
                                  "the assignment: {config}"),
    "ex05_tokenizer_not_saved": ("トークナイザが ADAPTER_DIR に保存されていません（tokenizer.save_pretrained(ADAPTER_DIR)）: {error}",
                                 "The tokenizer was not saved in ADAPTER_DIR (tokenizer.save_pretrained(ADAPTER_DIR)): "
                                 "{error}"),
    "ex05_adapter_params_mismatch": ("保存されたアダプタのパラメータ数 {actual} が計算値 {expected} と一致しません。",
                                     "The saved adapter has {actual} parameters, not the computed {expected}."),
    "ex05_gozaru_rate_low": ("採点用の未知のプロンプトでのござる率が {tuned:.2f}（学習前 {base:.2f}）です。"
                             "{need:.2f} 以上、かつ学習前より {lift:.2f} 以上の向上が必要です。",
                             "The gozaru rate on the grader's unseen prompts is {tuned:.2f} (before training: {base:.2f}). "
                             "It must be at least {need:.2f} and at least {lift:.2f} above the rate before training."),
    # ex06 MLflow
    "ex06_runs_missing": ("run {runs} が記録されていません（run 名は base と finetuned）。",
                          "Run(s) {runs} were not logged (the run names are base and finetuned)."),
    "ex06_table_missing": ("run {run} に {artifact} がありません（mlflow.log_table で記録してください）。",
                           "Run {run} has no {artifact} (log it with mlflow.log_table)."),
    "ex06_eval_input_missing": ("run {run} に評価データ gozaru_eval が記録されていません（mlflow.log_input）。",
                                "Run {run} did not log the evaluation data gozaru_eval (mlflow.log_input)."),
    "ex06_eval_set_mismatch": ("run {run} の評価データが、課題の分割（test 側の先頭 {count} 件）と一致しません。",
                               "The evaluation data of run {run} does not match the assignment's split (the first {count} test rows)."),
    "ex06_params_missing": ("run {run} にパラメータ {params} がありません。",
                            "Run {run} lacks the parameters {params}."),
    "ex06_model_requirements": ("登録したモデルの requirements.txt に {missing} がありません。log_model の pip_requirements で"
                                "torch・transformers・peft の版を固定してください（サービングはこのファイルで環境を作ります）。",
                                "The registered model's requirements.txt lacks {missing}. Pin torch, transformers and "
                                "peft in log_model's pip_requirements (serving builds its environment from it)."),
    "ex06_eval_input_context": ("run「{run}」の評価データ gozaru_eval が context=\"evaluation\" で記録されていません"
                                "（mlflow.log_input(..., context=\"evaluation\")）。",
                                "Run {run} logged the gozaru_eval input without context=\"evaluation\" "
                                "(mlflow.log_input(..., context=\"evaluation\"))."),
    "ex06_model_signature": ("登録したモデルのシグネチャの入力に列 question がありません（入力: {inputs}）。"
                             "infer_signature(eval_df[[\"question\"]], ...) で作ってください。",
                             "The registered model's signature has no input column question (inputs: {inputs}). "
                             "Build it with infer_signature(eval_df[[\"question\"]], ...)."),
    "ex06_param_wrong": ("run {run} の param {param} が {logged} です（課題の値は {expected}）。",
                         "Run {run} logged param {param} = {logged}; the assignment's value is {expected}."),
    "ex06_avg_seconds_mismatch": ("run {run} の avg_inference_seconds が、predictions.json の列 seconds（1 件ごとの生成時間）"
                                  "の平均と一致しません。",
                                  "avg_inference_seconds of run {run} is not the mean of predictions.json's seconds "
                                  "column (each answer's generation time)."),
    "ex06_judge_table_columns": ("judge.json に列 {columns} がありません（列 model, question, answer, score, reason）。",
                                 "judge.json lacks the columns {columns} (model, question, answer, score, reason)."),
    "ex06_judge_table_mismatch": ("judge.json の行（model, question, answer, score）が、審査した {count} 件の回答と"
                                  "審査員が返した点数に一致しません。",
                                  "judge.json's rows (model, question, answer, score) are not the {count} answers "
                                  "judged with the scores the judge returned."),
    "ex06_judge_not_strict": ("LLM-as-a-judge のリクエストの json_schema に \"strict\": True がありません（strict でないと、"
                              "応答がスキーマに従う保証がありません）。",
                              "The LLM judge requests' json_schema lacks \"strict\": True (without it, the answer "
                              "is not guaranteed to follow the schema)."),
    "ex06_judge_not_greedy": ("LLM-as-a-judge のリクエストを temperature={temperature} で送っています（課題は temperature=0.0）。",
                              "The LLM judge requests were sent with temperature={temperature}; the assignment "
                              "asks for temperature=0.0."),
    "ex06_gozaru_mean_mismatch": ("run {run} のカスタム指標 gozaru/mean が gozaru_rate と一致しません。",
                                  "The custom metric gozaru/mean of run {run} does not match gozaru_rate."),
    "ex06_predictions_missing": ("run {run} の predictions.json に prediction / reference 列がありません。",
                                 "predictions.json of run {run} lacks the prediction / reference columns."),
    "ex06_predictions_mismatch": ("run {run} の予測が、採点側で同じモデルから貪欲法で生成した回答と一致しません。",
                                  "The predictions of run {run} do not match the grader's greedy generation from the same model."),
    "ex06_logged_metric_differs": ("run「{run}」に記録した {metric} = {logged} が、6.2 で計算した値 {value} と違います"
                                   "（6.3 では 6.2 の指標をそのまま記録します）。",
                                   "Run {run} logged {metric} = {logged}, not the {value} that 6.2 computed (6.3 logs "
                                   "6.2's metrics as they are)."),
    "ex06_metric_mismatch": ("run {run} の {metric}（6.2 で計算した値 {computed}）が、記録された予測から採点側で計算し直した"
                             "値 {value:.4f} と一致しません。",
                             "{metric} for run {run} (computed in 6.2: {computed}) does not match {value:.4f}, "
                             "recomputed by the grader from the logged predictions."),
    "ex06_judge_not_called": ("LLM-as-a-judge の API 呼び出し（スキーマ名 judge_result）が記録されていません。",
                              "No LLM-as-a-judge API call (schema name judge_result) was logged."),
    "ex06_prediction_not_judged": ("run {run} の予測のうち、審査員に送られていないものがあります。",
                                   "Some predictions of run {run} were not sent to the judge."),
    "ex06_judge_average_mismatch": ("{metric}（記録 {logged}）が、実際に審査員が返した点数の平均 {value:.4f} と一致しません。",
                                    "{metric} (logged: {logged}) does not match {value:.4f}, the average of the scores the judge returned."),
    "ex06_champion_missing": ("finetuned の run に記録された指標は昇格の基準を満たしているのに、エイリアス champion が"
                              "付いていません（promote_if_ready を final_metrics で呼びましたか？ MLflow 3 ではステージ"
                              "ではなく set_registered_model_alias を使います）。",
                              "The finetuned run's logged metrics meet the criteria, but the alias champion is not "
                              "set (was promote_if_ready called with final_metrics? MLflow 3 uses "
                              "set_registered_model_alias, not stages)."),
    "ex06_registered_wrong_run": ("登録した最新のバージョンが finetuned の run から登録されたものではありません。",
                                  "The latest registered version was not registered from the finetuned run."),
    "ex06_champion_wrong_run": ("champion が指すバージョンが finetuned の run から登録されたものではありません。",
                                "The version that champion points to was not registered from the finetuned run."),
    "ex06_not_evaluated": ("run「{run}」に mlflow.models.evaluate の結果（eval_results_table.json の gozaru/score）が"
                           "ありません。ござる率は make_metric で作った指標を extra_metrics に渡して evaluate で計算してください。",
                           "Run \"{run}\" has no mlflow.models.evaluate results (gozaru/score in eval_results_table.json). "
                           "Compute the gozaru rate with evaluate, passing the make_metric metric in extra_metrics."),
    "ex06_promotion_undefined": ("ex06_registry_impl に promote_if_ready(version, metrics) が定義されていません。",
                                 "promote_if_ready(version, metrics) is not defined in ex06_registry_impl."),
    "ex06_promotion_crashed": ("promote_if_ready を新しいバージョンで試したところ、エラーか時間切れになりました。",
                               "promote_if_ready failed or timed out when tried on a new model version."),
    "ex06_promotion_ignores_criteria": ("基準を満たさない指標で promote_if_ready を呼ぶと、champion が動くか True が返りました。"
                                        "基準を満たすときだけ昇格させてください。",
                                        "promote_if_ready moved champion (or returned True) for metrics that fail the "
                                        "criteria. Promote only when they are met."),
    "ex06_promotion_not_applied": ("基準を満たす指標で promote_if_ready を呼んでも、そのバージョンに champion が付きませんでした"
                                   "（set_registered_model_alias を使ってください）。",
                                   "promote_if_ready did not move champion to the version for metrics that meet the "
                                   "criteria (use set_registered_model_alias)."),
    "ex06_criteria_undefined": ("meets_production_criteria が定義されていません。",
                                "meets_production_criteria is not defined."),
    "ex06_criteria_crashed": ("meets_production_criteria を採点用のケースで実行できませんでした（エラーか時間切れ）。",
                              "meets_production_criteria could not be run on the grader's cases (error or timeout)."),
    "ex06_criteria_wrong": ("meets_production_criteria の判定が {wrong}/{total} 件の採点用ケースで基準と違います"
                            "（基準ちょうどの値・欠けた値・NaN の扱いを確認してください）。",
                            "meets_production_criteria decides {wrong} of {total} grading cases against the criteria "
                            "(check values exactly at a threshold, missing values and NaN)."),
    "ex05_reload_mismatch": ("5.6 で読み込み直したモデルの回答（reloaded_answers）が、保存したアダプタで採点側が貪欲法で生成した回答と違います"
                             "（ADAPTER_DIR のアダプタを、学習と同じ設定のベースモデルに重ねてください）。",
                             "5.6's answers from the reloaded model (reloaded_answers) differ from the grader's greedy "
                             "answers with the saved adapter (stack the adapter in ADAPTER_DIR on the base model, loaded "
                             "as for training)."),
    "ex06_not_served": ("登録したモデル {uri} を MLflow のスコアリングサーバーで起動して質問を送りましたが、回答が返りませんでした"
                        "（{detail}）。6.5 の GozaruModel と登録を確認してください。",
                        "The registered model {uri}, started with MLflow's scoring server, did not answer the grader's "
                        "questions ({detail}). Check 6.5's GozaruModel and its registration."),
    "ex06_served_answers_differ": ("スコアリングサーバーが返した {served} 件の回答が、同じ {expected} 件の質問に採点側がファインチューニング後の"
                                   "モデル（ベースモデルとアダプタ）で貪欲法で生成した回答と違います。6.5 で登録したモデルを確認してください。",
                                   "The scoring server's {served} answers differ from the grader's greedy answers of "
                                   "the fine-tuned model (base model and adapter) to the same {expected} questions. "
                                   "Check the model 6.5 registered."),
    "ex06_ask_served_undefined": ("ex06_serving_impl に ask_served(base_url, questions) が定義されていません。",
                                  "ask_served(base_url, questions) is not defined in ex06_serving_impl."),
    "ex06_ask_served_failed": ("ask_served を採点側のスコアリングサーバーで試したところ、エラーか時間切れになりました"
                               "（ノートブックの変数は使えません。base_url に POST してください）。",
                               "ask_served failed or timed out against the grader's scoring server (the notebook's "
                               "variables are not there: POST to base_url)."),
    "ex06_ask_served_wrong": ("ask_served の返した回答が、同じ質問に採点側のスコアリングサーバーが返した回答と違います"
                              "（predictions の回答を、質問の順にリストで返してください）。",
                              "ask_served returned other answers than the grader's scoring server gives for the same "
                              "questions (return the answers in predictions, as a list in question order)."),
    "ex06_report_columns": ("evaluation_report.json に列 {columns} がありません（必要な列は metric, base, finetuned, diff です）。",
                            "evaluation_report.json lacks the columns {columns} (metric, base, finetuned, diff)."),
    "ex06_report_mismatch": ("evaluation_report.json の {metric} の {column}（{logged}）が、run の指標から計算した値 {value} と違います。",
                             "evaluation_report.json's {column} of {metric} ({logged}) differs from the value computed "
                             "from the runs' metrics, {value}."),
    "ex06_report_figure_missing": ("finetuned の run に評価レポートの図（PNG、mlflow.log_figure）がありません。",
                                   "The finetuned run has no figure of the evaluation report (a PNG, "
                                   "mlflow.log_figure)."),
}


def is_listed(code: str) -> bool:
    """True for an exercise-level problem (`_TEXT`): a failing check with this code is listed in the report too."""
    return code in _TEXT


def texts(code: str) -> tuple[str, str]:
    """The unformatted (ja, en) texts of a code of either table."""
    if code in _TEXT:
        return _TEXT[code][1:]
    return CHECK_FAILURES[code]


# Codes that only inform (nothing lost, nothing to do): GitHub shows them as notices, not warnings.
NOTICES = frozenset({"cells_matched_by_content"})


@dataclass(frozen=True)
class Both:
    """A field worded in each language (a plain field is the same in both)."""
    ja: str
    en: str


def wording(code: str, **fields) -> tuple[str, str]:
    """(ja, en) for a code of either table, formatted with `fields`."""
    ja, en = texts(code)
    return (ja.format(**{k: v.ja if isinstance(v, Both) else v for k, v in fields.items()}),
            en.format(**{k: v.en if isinstance(v, Both) else v for k, v in fields.items()}))


def problem(code: str, **fields) -> Problem:
    ja, en = wording(code, **fields)
    return Problem(code, ja, en, _TEXT[code][0])


def markdown_table() -> str:
    """Every code, exercise-level problems first, each table in its order."""
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    rows = ["| code | listed as an exercise problem? | fatal | 日本語 | English |", "| --- | --- | --- | --- | --- |"]
    for code, (fatal, ja, en) in _TEXT.items():
        rows.append(f"| `{code}` | yes | {'yes' if fatal else 'no'} | {cell(ja)} | {cell(en)} |")
    for code, (ja, en) in CHECK_FAILURES.items():
        rows.append(f"| `{code}` | no | no | {cell(ja)} | {cell(en)} |")
    return "\n".join(rows) + "\n"


REGENERATE_DOC = ("python -c \"from coursegrader.problems import render_problem_codes_doc; "
                  "open('docs/problem-codes.md', 'w', encoding='utf-8').write(render_problem_codes_doc())\"")


def render_problem_codes_doc() -> str:
    """The text of docs/problem-codes.md."""
    return ("# Problem codes\n\n"
            "<!-- Generated from coursegrader/problems.py; do not edit. Regenerate with:\n"
            f"     {REGENERATE_DOC} -->\n\n"
            "Listed codes (`_TEXT`) are exercise-level problems: they appear in the report's problem list, and a fatal "
            "one stops grading the exercise (score 0). The others (`CHECK_FAILURES`) only say why an evidence check "
            "failed a cell. Text in `{braces}` is filled in from the failure's fields.\n\n"
            + markdown_table())


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
    return any(str(REPO_ROOT / part) in text for part in ("source", "autograder", "coursegrader", "release", ".git", "nbgrader_config.py"))


def limit_problems(errors_by_cell: dict[str, list[tuple[str, str]]], limits: dict) -> list[Problem]:
    """One problem per limit that cell errors name, listing the cells; `limits` (course.toml's [sandbox]) fill in
    its message."""
    found: dict[str, list[str]] = {}
    for cell, errors in errors_by_cell.items():
        for ename, evalue in errors:
            text = f"{ename}: {evalue}"
            code = next((c for c, marks in LIMIT_ERRORS if any(m in text for m in marks)), None)
            if code is None and _names_the_checkout(text):
                code = "sandbox_denied"
            if code and cell not in found.setdefault(code, []):
                found[code].append(cell)
    return [problem(code, cells=", ".join(cells), **limits) for code, cells in found.items()]
