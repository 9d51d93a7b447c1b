"""One precision rule (coursegrader/precision.py): bf16 from compute capability 8.0, fp32 below it and on a CPU.
The notebooks' profile cells compute the same, from the same number as course.toml; both are run here against
faked devices (a T4, an A10, an H100, none)."""
from __future__ import annotations

import ast
from types import SimpleNamespace

import nbformat
import pytest

from coursegrader.config import SOURCE_DIR, load_course
from coursegrader.notebook import grade_id
from coursegrader.precision import Precision, precision_for

DEVICES = {"T4": (7, 5), "A10": (8, 6), "H100": (9, 0), "none": None}
EXPECTED = {"T4": Precision.FP32, "A10": Precision.BF16, "H100": Precision.BF16, "none": Precision.FP32}
LOCAL_MODEL_EXERCISES = [e for e, ex in load_course().exercises.items() if ex.local_model]


@pytest.mark.parametrize("device", DEVICES)
def test_the_rule_follows_compute_capability_not_emulation(device):
    assert precision_for(DEVICES[device], load_course().bf16_min_capability) is EXPECTED[device]


def test_the_threshold_is_course_tomls():
    assert load_course().bf16_min_capability == (8, 0)
    assert precision_for((7, 5), minimum=(7, 0)) is Precision.BF16  # the number, not a constant, decides


def fake_torch(capability):
    """What the profile cell asks of torch, on a machine with this device (None: no GPU)."""
    cuda = SimpleNamespace(is_available=lambda: capability is not None,
                           get_device_capability=lambda: capability,
                           is_bf16_supported=lambda: True)  # emulation counts: a T4 says yes
    return SimpleNamespace(cuda=cuda, bfloat16="bfloat16", float32="float32", float16="float16")


def _rule_lines(exercise_id: str) -> str:
    """The profile cell's USE_CUDA / USE_BF16 / DTYPE assignments, as the notebook has them."""
    nb = nbformat.read(SOURCE_DIR / exercise_id / f"{exercise_id}.ipynb", as_version=4)
    cell = next(c for c in nb.cells if grade_id(c) == f"{exercise_id}_profile")
    wanted = {"USE_CUDA", "USE_BF16", "DTYPE"}
    found = [node for node in ast.parse(cell.source).body
             if isinstance(node, ast.Assign) and {getattr(t, "id", None) for t in node.targets} & wanted]
    assert {t.id for node in found for t in node.targets} == wanted, exercise_id
    return "\n".join(ast.unparse(node) for node in found)


@pytest.mark.parametrize("exercise_id", LOCAL_MODEL_EXERCISES)
@pytest.mark.parametrize("device", DEVICES)
def test_each_notebook_chooses_what_the_rule_chooses(exercise_id, device):
    namespace = {"torch": fake_torch(DEVICES[device])}
    exec(_rule_lines(exercise_id), namespace)
    assert namespace["DTYPE"] == EXPECTED[device].value
    assert namespace["USE_BF16"] is (EXPECTED[device] is Precision.BF16)


@pytest.mark.parametrize("exercise_id", LOCAL_MODEL_EXERCISES)
def test_each_notebook_holds_course_tomls_threshold(exercise_id):
    compared = [node for node in ast.walk(ast.parse(_rule_lines(exercise_id))) if isinstance(node, ast.Compare)]
    assert [ast.literal_eval(node.comparators[0]) for node in compared] == [load_course().bf16_min_capability]


def test_training_and_the_4bit_compute_dtype_follow_the_rule():
    nb = nbformat.read(SOURCE_DIR / "ex05" / "ex05.ipynb", as_version=4)
    cells = {grade_id(c): c.source for c in nb.cells}
    assert "bf16=USE_BF16," in cells["ex05_train_impl"]
    assert "bnb_4bit_compute_dtype=DTYPE," in cells["ex05_quantization_impl"]
    assert "bfloat16" not in cells["ex05_train_impl"] + cells["ex05_quantization_impl"]
