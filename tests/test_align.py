"""A submission's cells are found by content and order (coursegrader/grading/align.py): every shape an editor
saves (tests/shapes.py) hands nbgrader the same notebook, with the same problems but one informational code,
and nothing a student writes takes the place of a protected cell."""
import copy
import json
import time

import nbformat
import pytest

from autograder.samples import build_sample, load_catalog, solution_notebook
from coursegrader.config import RELEASE_DIR, load_course
from coursegrader.grading.align import align, normalized
from coursegrader.grading.submission import align_with_release, find_notebook, load_notebook
from coursegrader.notebook import grade_id, is_solution, solution_cells

from shapes import PRINT_CELL, SHAPES, databricks_source, reshape_submission, write_shape

COURSE = load_course()
EXERCISES = list(COURSE.exercises)
INFO = "cells_matched_by_content"
CATALOG = load_catalog(COURSE)
EARLY = [name for name, s in CATALOG.items() if set(s.exercises) <= {"ex01", "ex02", "ex03"}]


def release_nb(ex):
    return nbformat.read(RELEASE_DIR / ex / f"{ex}.ipynb", as_version=4)


def aligned(nb_dir, ex):
    """(aligned notebook, problem codes) of <nb_dir>/<ex>, read as the grader reads it."""
    path = find_notebook(nb_dir, ex, f"{ex}.ipynb")
    nb, found = load_notebook(path)
    if found:
        return None, [found.code]
    out, problems = align_with_release(nb, release_nb(ex), path)
    if out is not None:
        nbformat.validate(out)
    return out, [p.code for p in problems]


def as_graded(nb):
    """What nbgrader acts on: each cell's kind, source (the Source format keeps no trailing newline) and nbgrader
    metadata, in order."""
    return [(c.cell_type, c.source.rstrip("\n"), json.dumps(c.metadata.get("nbgrader"), sort_keys=True)) for c in nb.cells]


def protected(nb):
    return [(grade_id(c), c.source, c.cell_type) for c in nb.cells if grade_id(c) and not is_solution(c)]


def regions(nb):
    """grade_id of each solution cell -> the code of its answer's cells."""
    return {grade_id(c): [x.source for x in solution_cells(nb, grade_id(c)) if x.cell_type == "code"]
            for c in nb.cells if is_solution(c)}


def _answers(nb):
    """Each answer's code, whitespace and the split shape's print cell left out."""
    return {k: "".join("".join(x for x in v if x != PRINT_CELL).split()) for k, v in regions(nb).items()}


@pytest.mark.parametrize("name", EARLY)
def test_every_early_catalog_sample_aligns_alike_in_every_shape(name, tmp_path):
    """(a)-(f): the same notebook for nbgrader as the release shape (the split-answer shape: the same protected
    cells and answers), the same problem codes, plus `cells_matched_by_content` where the metadata was lost."""
    sample = CATALOG[name]
    base = build_sample(sample, tmp_path / "release", COURSE)
    for ex in sample.exercises:
        expected_nb, expected_codes = aligned(base, ex)
        for shape in SHAPES[1:]:
            dest = tmp_path / shape
            if (base / ex).is_dir() and (base / ex / f"{ex}.ipynb").is_file() and not (base / ex / f"{ex}.ipynb").is_symlink():
                try:
                    nb = nbformat.read(base / ex / f"{ex}.ipynb", as_version=4)
                except Exception:  # noqa: BLE001 - a malformed sample stays as it is in every shape
                    continue
                write_shape(nb, dest / ex / f"{ex}.ipynb", shape)
            else:
                continue
            got_nb, codes = aligned(dest, ex)
            extra = [] if shape == "jupyterlab" else [INFO]
            assert sorted(codes) == sorted(expected_codes + extra), (shape, codes, expected_codes)
            if expected_nb is None:
                assert got_nb is None
            elif shape == "extra_cells":
                assert protected(got_nb) == protected(expected_nb), shape
                assert _answers(got_nb) == _answers(expected_nb), shape
                assert sum(1 for c in got_nb.cells if grade_id(c)) == sum(1 for c in expected_nb.cells if grade_id(c))
            else:
                assert as_graded(got_nb) == as_graded(expected_nb), shape


@pytest.mark.parametrize("ex", EXERCISES)
def test_solution_and_blank_of_every_exercise_align_alike_in_every_shape(ex, tmp_path):
    for label, nb in (("solution", solution_notebook(COURSE.exercises[ex])), ("blank", release_nb(ex))):
        expected = None
        for shape in SHAPES:
            write_shape(nb, tmp_path / label / shape / ex / f"{ex}.ipynb", shape)
            got, codes = aligned(tmp_path / label / shape, ex)
            assert codes == ([] if shape in ("release", "jupyterlab") else [INFO]), (label, shape)
            if shape == "release":
                expected = got
                assert as_graded(got)[0][2] == as_graded(release_nb(ex))[0][2]
            elif shape != "extra_cells":
                assert as_graded(got) == as_graded(expected), (label, shape)
            else:
                assert protected(got) == protected(expected)


def test_the_aligned_notebook_is_release_shaped_and_valid():
    """Databricks's nbformat 4.0 without ids comes out as the release's 4.5 with ids, release metadata on every
    release cell, and ids unique."""
    ex = "ex01"
    data = json.loads(json.dumps(_databricks(solution_notebook(COURSE.exercises[ex]))))
    out = align(nbformat.from_dict(data), release_nb(ex)).notebook
    nbformat.validate(out)
    assert (out.nbformat, out.nbformat_minor) == (4, 5)
    assert out.metadata == release_nb(ex).metadata
    ids = [c.id for c in out.cells]
    assert len(ids) == len(set(ids))
    assert [c.id for c in out.cells] == [c.id for c in release_nb(ex).cells]


def _databricks(nb):
    from shapes import databricks_dict

    return databricks_dict(nb, "ex01")


def _student(cells):
    return nbformat.v4.new_notebook(cells=cells)


def _md(text):
    return nbformat.v4.new_markdown_cell(text)


def _code(text, gid=None):
    cell = nbformat.v4.new_code_cell(text)
    if gid:
        cell.metadata["nbgrader"] = {"grade_id": gid}
    return cell


def _plain(nb):
    """The release notebook as a metadata-free student copy of it, cells by grade_id."""
    return {grade_id(c): (_md(c.source) if c.cell_type == "markdown" else _code(c.source)) for c in nb.cells}


def test_a_copy_of_a_test_cell_never_replaces_it_nor_cuts_the_answer_short():
    """Above the real test, a copy of it (as plain student code) stays part of the answer; the release's test
    (with its hidden part restored by nbgrader) is the one graded, once."""
    release = release_nb("ex01")
    cells = _plain(solution_notebook(COURSE.exercises["ex01"]))
    order = [grade_id(c) for c in release.cells]
    student = []
    for gid in order:
        if gid == "ex01_qa_impl":
            student += [_code("answer_part = 1"), copy.deepcopy(cells["ex01_qa"]), cells[gid]]
        else:
            student.append(cells[gid])
    result = align(_student(student), release)
    assert protected(result.notebook) == protected(release)
    assert not result.deleted and not result.edited
    region = regions(result.notebook)["ex01_qa_impl"]
    assert region[0] == "answer_part = 1" and region[1] == cells["ex01_qa"].source
    assert region[2] == cells["ex01_qa_impl"].source


def test_cells_moved_out_of_order_run_where_the_student_put_them():
    """An answer moved below its test is the student's own cell after the test (the release order is graded);
    the empty slot gets the release's blank, and nothing is called deleted."""
    release = release_nb("ex01")
    cells = _plain(solution_notebook(COURSE.exercises["ex01"]))
    order = [grade_id(c) for c in release.cells]
    i = order.index("ex01_client_impl")
    order[i], order[i + 1] = order[i + 1], order[i]
    result = align(_student([cells[g] for g in order]), release)
    assert not result.deleted and not result.edited
    out = result.notebook
    test_at = next(k for k, c in enumerate(out.cells) if grade_id(c) == "ex01_client")
    blank = next(c for c in release.cells if grade_id(c) == "ex01_client_impl")
    assert out.cells[test_at - 1].source == blank.source, "the slot holds the release's blank"
    assert out.cells[test_at + 1].source == cells["ex01_client_impl"].source and not grade_id(out.cells[test_at + 1])


def test_metadata_is_one_signal_and_content_wins():
    """A student cell claiming a test's grade_id is graded as what its content is (the report says so); a lost
    claim never drops the real test."""
    release = release_nb("ex01")
    cells = _plain(solution_notebook(COURSE.exercises["ex01"]))
    student = []
    for c in release.cells:
        cell = copy.deepcopy(cells[grade_id(c)])
        if grade_id(c) == "ex01_qa_impl":
            cell.metadata["nbgrader"] = {"grade_id": "ex01_qa", "grade": True, "points": 100}
        student.append(cell)
    result = align(_student(student), release)
    assert result.metadata_ignored == ["ex01_qa"]
    assert protected(result.notebook) == protected(release)
    qa = [c for c in result.notebook.cells if grade_id(c) == "ex01_qa"]
    assert len(qa) == 1 and qa[0].metadata == next(c for c in release.cells if grade_id(c) == "ex01_qa").metadata


def test_an_edited_test_is_reset_and_a_deleted_one_put_back_without_metadata():
    release = release_nb("ex01")
    cells = _plain(solution_notebook(COURSE.exercises["ex01"]))
    student = []
    for c in release.cells:
        gid = grade_id(c)
        if gid == "ex01_qa":
            continue  # deleted
        cell = copy.deepcopy(cells[gid])
        if gid == "ex01_system_prompt":
            cell.source = cell.source.replace("assert", "# assert", 1)  # edited, still much alike
        if gid == "ex01_usage":
            cell.source = "pass"  # edited beyond recognition, in its place
        student.append(cell)
    result = align(_student(student), release)
    assert result.deleted == ["ex01_qa"]
    assert result.edited == ["ex01_system_prompt", "ex01_usage"]
    assert protected(result.notebook) == protected(release)


def test_a_notebook_too_mangled_to_align_names_what_it_could_not_place(tmp_path):
    """Everything pasted into one cell: no anchor left, so no guessing: a fatal problem that names the cells."""
    sol = solution_notebook(COURSE.exercises["ex01"])
    merged = _student([_code("\n\n".join(c.source for c in sol.cells if c.cell_type == "code"))])
    path = tmp_path / "ex01" / "ex01.ipynb"
    path.parent.mkdir()
    nbformat.write(merged, path)
    out, problems = align_with_release(merged, release_nb("ex01"), path)
    assert out is None and [p.code for p in problems] == ["notebook_unaligned"] and problems[0].fatal
    assert "ex01_setup" in problems[0].message_en and "ex01/ex01.ipynb" in problems[0].message_ja


def test_an_empty_notebook_is_graded_with_every_cell_put_back():
    result = align(_student([]), release_nb("ex01"))
    assert result.notebook is not None
    assert protected(result.notebook) == protected(release_nb("ex01"))
    assert "ex01_qa" in result.deleted


@pytest.mark.parametrize("make", [lambda test, n: test.source, lambda test, n: f"# {n}\n" + test.source[::-1]],
                         ids=["copies_of_a_test", "cells_alike_in_length"])
def test_thousands_of_cells_cost_little_and_place_nothing(make):
    """A notebook of 20,000 copies of a test (every one a candidate anchor), or of cells as long as the tests
    (every one worth a similarity look), is refused before any search: under a second, nothing placed."""
    release = release_nb("ex01")
    test = next(c for c in release.cells if grade_id(c) == "ex01_qa")
    student = [_code(make(test, n)) for n in range(20000)]
    started = time.process_time()
    result = align(_student(student), release)
    assert time.process_time() - started < 1
    assert result.notebook is None and "ex01_setup" in result.unplaced


def test_databricks_source_format_is_read_with_magic_and_title_lines(tmp_path):
    nb = solution_notebook(COURSE.exercises["ex01"])
    text = databricks_source(nb).replace("# COMMAND ----------\n\n", "# COMMAND ----------\n\n# DBTITLE 1,タイトル\n", 1)
    path = tmp_path / "ex01" / "ex01.py"
    path.parent.mkdir()
    path.write_text(text.replace("\n", "\r\n"), encoding="utf-8")
    assert find_notebook(tmp_path, "ex01", "ex01.ipynb") == path
    read, found = load_notebook(path)
    assert found is None
    assert [normalized(c) for c in read.cells] == [normalized(c) for c in nb.cells]


def test_a_py_file_that_is_not_a_databricks_notebook_is_malformed(tmp_path):
    path = tmp_path / "ex01" / "ex01.py"
    path.parent.mkdir()
    path.write_text("print('hello')\n", encoding="utf-8")
    _, found = load_notebook(find_notebook(tmp_path, "ex01", "ex01.ipynb"))
    assert found.code == "notebook_malformed"


def test_an_ipynb_beside_a_py_is_the_one_read(tmp_path):
    write_shape(solution_notebook(COURSE.exercises["ex01"]), tmp_path / "ex01" / "ex01.ipynb", "source_py")
    write_shape(release_nb("ex01"), tmp_path / "ex01" / "ex01.ipynb", "release")
    assert find_notebook(tmp_path, "ex01", "ex01.ipynb").suffix == ".ipynb"


def test_reshape_rewrites_a_built_submission(tmp_path):
    built = build_sample(CATALOG["deleted_test_cell"], tmp_path / "s", COURSE)
    reshape_submission(built, "databricks")
    data = json.loads((built / "ex01" / "ex01.ipynb").read_text(encoding="utf-8"))
    assert data["nbformat_minor"] == 0 and all("id" not in c for c in data["cells"])
    assert all(list(c["metadata"]) == ["application/vnd.databricks.v1+cell"] for c in data["cells"])
