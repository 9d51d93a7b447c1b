"""The course plan (autograder/plan.py): in-class sections fit the class, and the notebooks say which are which."""
import dataclasses
import shutil

import nbformat
import pytest

from autograder.plan import PlanError, check_plan_fits, plan_summary, sections, sync_plan_labels
from coursegrader.config import SOURCE_DIR, load_course


def notebooks():
    course = load_course()
    return {e: nbformat.read(SOURCE_DIR / e / course.exercises[e].notebook, as_version=4) for e in course.exercises}


def with_exercise(course, ex_id, **changes):
    exercise = dataclasses.replace(course.exercises[ex_id], **changes)
    return dataclasses.replace(course, exercises={**course.exercises, ex_id: exercise})


def with_cell_in_class(course, ex_id, grade_id):
    cells = tuple(dataclasses.replace(c, plan="in-class") if c.grade_id == grade_id else c
                  for c in course.exercises[ex_id].cells)
    return with_exercise(course, ex_id, cells=cells)


def test_the_course_plan_fits_its_90_minutes():
    course = load_course()
    nbs = notebooks()
    check_plan_fits(course, nbs)
    fill_ins = {e: sum(s.fill_ins for s in sections(nb)) for e, nb in nbs.items()}
    assert sum(fill_ins.values()) == 36
    assert sum(e.class_minutes for e in course.exercises.values()) <= course.schedule.class_minutes


def test_a_plan_whose_in_class_cells_need_more_minutes_is_refused():
    course = with_exercise(load_course(), "ex04", class_minutes=12)  # 5 in-class fill-ins need 15
    with pytest.raises(PlanError, match="ex04: its in-class cells need 15 min"):
        check_plan_fits(course, notebooks())


def test_minutes_beyond_the_class_are_refused():
    course = with_exercise(load_course(), "ex06", class_minutes=60)
    with pytest.raises(PlanError, match="add up to 114"):
        check_plan_fits(course, notebooks())


def test_an_in_class_section_after_homework_is_refused():
    with pytest.raises(PlanError, match="1.6 is in-class after homework 1.5"):
        check_plan_fits(with_cell_in_class(load_course(), "ex01", "ex01_usage"), notebooks())


def test_one_section_needs_one_plan():
    with pytest.raises(PlanError, match="5.4"):
        check_plan_fits(with_cell_in_class(load_course(), "ex05", "ex05_adapter"), notebooks())


def test_labels_are_stamped_once_and_follow_the_plan(tmp_path):
    exercise = load_course().exercises["ex05"]
    shutil.copytree(SOURCE_DIR / "ex05", tmp_path / "ex05", ignore=shutil.ignore_patterns("*.db", "outputs"))
    path = tmp_path / "ex05" / "ex05.ipynb"
    assert sync_plan_labels(exercise, tmp_path) is False  # source/ is already stamped
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        cell.source = cell.source.replace(" 【授業中】", "").replace(" 【宿題】", " 【授業中】")
    nbformat.write(nb, path)
    assert sync_plan_labels(exercise, tmp_path) is True
    stamped = nbformat.read(path, as_version=4)
    headings = [c.source.split("\n")[0] for c in stamped.cells if c.source.startswith("## 5.")]
    assert headings[2].endswith("5.3 LoRA の設定と学習可能パラメータ数 【授業中】")
    assert headings[3].endswith(" 【宿題】") and "【授業中】" not in headings[3]
    assert stamped.cells[0].source.count("> 予定：") == 1
    assert plan_summary(exercise, stamped) == "授業中（5.1〜5.3、約 9 分）・宿題（5.4〜5.5）"
    assert sync_plan_labels(exercise, tmp_path) is False
