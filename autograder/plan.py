"""The course plan: which sections students fill in during the 90-minute class and which at home.

course.toml gives each cell its plan and its minutes, and the class its set-up steps; this module finds the
notebook's sections, checks that the set-up and the in-class cells fit the class, makes the timetable the
student README shows, and stamps the plan into headings and the title.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from coursegrader.config import PLANS, SOURCE_DIR, Course, Exercise
from coursegrader.notebook import grade_id, is_solution, is_test

HEADING = re.compile(r"^## (?P<number>(?:\d+|B)\.\d+) (?P<title>.*?)(?:\s*【[^】]*】)*$")  # the labels: stamped again
PLAN_LINE = "> 予定："


class PlanError(ValueError):
    pass


@dataclass
class Section:
    number: str  # "1.4" (a bonus notebook: "B.1")
    heading_index: int
    fill_ins: int = 0  # solution cells students write
    grade_ids: list[str] = field(default_factory=list)


def sections(nb) -> list[Section]:
    """The numbered `## N.M` sections, each with its fill-in cells and graded test cells."""
    found: list[Section] = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            match = HEADING.match(cell.source.splitlines()[0] if cell.source else "")
            if match:
                found.append(Section(match["number"], index))
        elif found and is_solution(cell) and not is_test(cell):
            found[-1].fill_ins += 1
        elif found and is_test(cell):
            found[-1].grade_ids.append(grade_id(cell))
    return found


def section_plan(exercise: Exercise, section: Section) -> str:
    plans = {exercise.cell(gid).plan for gid in section.grade_ids}
    if len(plans) != 1:
        raise PlanError(f"{exercise.id} {section.number}: its cells {section.grade_ids} need one plan, not {plans}")
    return plans.pop()


def planned(exercise: Exercise, nb) -> dict[str, list[Section]]:
    """in-class and homework sections, in notebook order; in-class ones must come first."""
    by_plan: dict[str, list[Section]] = {"in-class": [], "homework": []}
    for section in sections(nb):
        plan = section_plan(exercise, section)
        if plan == "in-class" and by_plan["homework"]:
            raise PlanError(f"{exercise.id} {section.number} is in-class after homework "
                            f"{by_plan['homework'][0].number}: students work in order")
        by_plan[plan].append(section)
    return by_plan


def check_plan_fits(course: Course, notebooks: dict[str, object]) -> None:
    """Every in-class section has an estimate, and the set-up plus the in-class cells fit the class."""
    for ex_id, nb in notebooks.items():
        exercise = course.exercises[ex_id]
        for section in planned(exercise, nb)["in-class"]:
            if section.fill_ins and not sum(exercise.cell(gid).minutes for gid in section.grade_ids):
                raise PlanError(f"{ex_id} {section.number} is in-class with no minutes: give its cells "
                                f"{section.grade_ids} `minutes` in course.toml")
    total = course.schedule.setup_minutes + sum(e.class_minutes for e in course.exercises.values())
    if total > course.schedule.class_minutes:
        parts = ", ".join(f"{e.id} {e.class_minutes}" for e in course.exercises.values() if e.class_minutes)
        raise PlanError(f"set-up ({course.schedule.setup_minutes} min) and the in-class cells ({parts}) add up to "
                        f"{total} min, the class has {course.schedule.class_minutes}: move cells to homework or "
                        f"lower their minutes")


def class_timetable(course: Course, notebooks: dict[str, object]) -> list[tuple[str, int]]:
    """The class in order, (what, minutes): the set-up steps, then each exercise's in-class sections."""
    def steps(before: str) -> list[tuple[str, int]]:
        return [(step.what, step.minutes) for step in course.schedule.setup if step.before == before]

    unknown = {step.before for step in course.schedule.setup} - {"", *course.exercises}
    if unknown:
        raise PlanError(f"[schedule] setup: `before` names no exercise: {sorted(unknown)}")
    rows = steps("")
    for ex_id, nb in notebooks.items():
        exercise = course.exercises[ex_id]
        rows += steps(ex_id)
        in_class = planned(exercise, nb)["in-class"]
        if in_class:
            rows.append((f"{ex_id} {span([s.number for s in in_class])}（{exercise.title}）", exercise.class_minutes))
    return rows


def span(numbers: list[str]) -> str:
    return numbers[0] if len(numbers) == 1 else f"{numbers[0]}〜{numbers[-1]}"


def plan_summary(exercise: Exercise, nb) -> str:
    """In Japanese, e.g. 授業中（1.1〜1.4、約 12 分）・宿題（1.5〜1.6）."""
    by_plan = planned(exercise, nb)
    parts = []
    if by_plan["in-class"]:
        parts.append(f"{PLANS['in-class']}（{span([s.number for s in by_plan['in-class']])}、"
                     f"約 {exercise.class_minutes} 分）")
    if by_plan["homework"]:
        minutes = f"、約 {exercise.homework_minutes} 分" if exercise.homework_minutes else ""
        parts.append(f"{PLANS['homework']}（{span([s.number for s in by_plan['homework']])}{minutes}）")
    return "・".join(parts)


def sync_plan_labels(exercise: Exercise, source_dir: Path = SOURCE_DIR) -> bool:
    """Stamp the plan into the source notebook: 【授業中】/【宿題】 after each section heading, and a
    `> 予定：` line in the title cell. True if it changed."""
    path = source_dir / exercise.id / exercise.notebook
    nb = nbformat.read(path, as_version=4)
    by_plan = planned(exercise, nb)
    before = [cell.source for cell in nb.cells]
    for plan, found in by_plan.items():
        for section in found:
            cell = nb.cells[section.heading_index]
            first, *rest = cell.source.split("\n")
            match = HEADING.match(first)
            cell.source = "\n".join([f"## {match['number']} {match['title']} 【{PLANS[plan]}】", *rest])
    title = nb.cells[0]
    kept = "\n".join(line for line in title.source.split("\n") if not line.startswith(PLAN_LINE)).rstrip()
    title.source = f"{kept}\n\n{PLAN_LINE}{plan_summary(exercise, nb)}"
    if [cell.source for cell in nb.cells] == before:
        return False
    nbformat.write(nb, path)
    return True
