import nbformat
import pytest

from coursegrader.config import SOURCE_DIR
from coursegrader import course_dataset
from coursegrader.metrics import gozaru
from coursegrader.metrics.gozaru import gozaru_rate, is_gozaru


@pytest.mark.parametrize("text, expected", [
    ("拙者は侍でござる。", True),
    ("でござるよ", True),
    ("そうでござったか…", False),      # ends in か after ござった: a question form we do not count
    ("負けたでござった。", True),
    ("まだでござらぬ！！", True),
    ("参るでござろう", True),
    ("富士山でござる😀", True),          # emoji stripped
    ("富士山でござる。👍🏻\n", True),      # emoji with a skin-tone modifier, then a newline
    ("ござるよ〜", True),                # wave dash is punctuation
    ("  ござる  ", True),
    ("ございます。", False),             # polite Japanese, not samurai speech
    ("ござるが、今は違います。", False),   # the last sentence does not end in ござる
    ("ござる。また、山です。", False),
    ("ござ", False),
    ("我、りんえもんは思う。 2000年に運航を開始しましたでござる。知らんけど。", True),  # the real dataset's sign-off
    ("ありがとうございます。知らんけど。", False),
    ("知らんけど。", False),
    ("", False),
    (None, False),
])
def test_is_gozaru(text, expected):
    assert is_gozaru(text) is expected


def test_rate():
    assert gozaru_rate(["山でござる。", "山です。", "海でござるよ！", "ございます"]) == 0.5
    assert gozaru_rate([]) == 0.0


def test_the_courses_loose_check_would_count_the_base_models_politeness():
    loose = lambda t: "ござる" in t or "ございます" in t
    assert loose("ありがとうございます。") and not is_gozaru("ありがとうございます。")


@pytest.mark.parametrize("exercise_id", ["ex05", "ex06"])
@pytest.mark.parametrize("cell_name, module", [("gozaru_metric", gozaru), ("course_dataset", course_dataset)])
def test_notebook_uses_the_graders_code_verbatim(exercise_id, cell_name, module):
    nb = nbformat.read(SOURCE_DIR / exercise_id / f"{exercise_id}.ipynb", as_version=4)
    cell = next(c for c in nb.cells if c.metadata["nbgrader"]["grade_id"] == f"{exercise_id}_{cell_name}")
    assert cell.source.strip() == open(module.__file__, encoding="utf-8").read().strip()
