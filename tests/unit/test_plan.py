"""The course plan (autograder/plan.py): in-class sections fit the class, and the notebooks say which are which."""
import dataclasses
import shutil

import nbformat
import pytest

from autograder.plan import PlanError, check_plan_fits, class_timetable, plan_summary, sections, sync_plan_labels
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


def with_cells(course, ex_id, **changes):
    return with_exercise(course, ex_id, cells=tuple(dataclasses.replace(c, **changes) for c in course.exercises[ex_id].cells))


def test_the_course_plan_fits_its_90_minutes_with_its_set_up():
    course = load_course()
    nbs = notebooks()
    check_plan_fits(course, nbs)
    fill_ins = {e: sum(s.fill_ins for s in sections(nb)) for e, nb in nbs.items()}
    assert sum(fill_ins.values()) == 41
    rows = class_timetable(course, nbs)
    assert sum(minutes for _, minutes in rows) == course.schedule.setup_minutes + sum(
        e.class_minutes for e in course.exercises.values()) <= course.schedule.class_minutes
    assert course.schedule.setup_minutes > 0  # the Git folder, the token and the reinstalls take class time too
    # every graded cell has its estimate; 0 only for a second test of a section another cell already times
    assert [c.grade_id for e in course.exercises.values() for c in e.cells if not c.minutes] == ["ex05_adapter", "ex06_criteria"]


def test_the_timetable_puts_each_set_up_step_before_its_exercise():
    course = load_course()
    rows = [what for what, _ in class_timetable(course, notebooks())]
    hub = next(i for i, what in enumerate(rows) if "Hugging Face" in what)
    assert rows[0].startswith("リポジトリを Databricks の Git フォルダ")
    assert rows.index(next(r for r in rows if r.startswith("ex03 "))) < hub < rows.index(next(r for r in rows if r.startswith("ex04 ")))
    assert rows[-1].startswith("ex05 5.1〜5.4")  # training begins in class, as the course plan has it


def test_minutes_beyond_the_class_are_refused():
    course = with_cells(load_course(), "ex06", plan="in-class")
    with pytest.raises(PlanError, match="add up to 142 min, the class has 90"):
        check_plan_fits(course, notebooks())


def test_an_in_class_section_without_minutes_is_refused():
    course = load_course()
    cells = tuple(dataclasses.replace(c, minutes=0) if c.grade_id == "ex04_pipeline" else c for c in course.exercises["ex04"].cells)
    with pytest.raises(PlanError, match="ex04 4.4 is in-class with no minutes"):
        check_plan_fits(with_exercise(course, "ex04", cells=cells), notebooks())


def test_a_set_up_step_before_an_unknown_exercise_is_refused():
    course = load_course()
    step = dataclasses.replace(course.schedule.setup[0], before="ex09")
    course = dataclasses.replace(course, schedule=dataclasses.replace(course.schedule, setup=(step,)))
    with pytest.raises(PlanError, match="ex09"):
        class_timetable(course, notebooks())


def test_an_in_class_section_after_homework_is_refused():
    with pytest.raises(PlanError, match="1.6 is in-class after homework 1.5"):
        check_plan_fits(with_cell_in_class(load_course(), "ex01", "ex01_usage"), notebooks())


def test_one_section_needs_one_plan():
    with pytest.raises(PlanError, match="6.5"):
        check_plan_fits(with_cell_in_class(load_course(), "ex06", "ex06_criteria"), notebooks())


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
    assert headings[3].endswith("5.4 SFTTrainer で学習し、アダプタを保存する 【授業中】")
    assert headings[4].endswith(" 【宿題】") and "【授業中】" not in headings[4]
    assert stamped.cells[0].source.count("> 予定：") == 1
    assert plan_summary(exercise, stamped) == "授業中（5.1〜5.4、約 16 分）・宿題（5.5〜5.6、約 10 分）"
    assert sync_plan_labels(exercise, tmp_path) is False


def test_every_section_heading_carries_exactly_one_plan_label():
    """A label typed into a heading by hand is replaced by the stamped one, never doubled."""
    for exercise_id, nb in notebooks().items():
        for cell in nb.cells:
            first = cell.source.split("\n")[0]
            if cell.cell_type == "markdown" and first.startswith("## ") and first[3:4].isdigit():
                assert first.count("【") == 1 and first.endswith(("【授業中】", "【宿題】")), (exercise_id, first)
