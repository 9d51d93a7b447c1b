"""Units of the outside-the-kernel machinery: claims, literals, restoring protected cells."""
import nbformat

from coursegrader.config import RELEASE_DIR, load_course
from autograder.evidence import CLAIM_MIMETYPE, Evidence, claim_matches, claims_in
from coursegrader.notebook import literals_in
from coursegrader.grading.submission import align_with_release


def test_literals_are_read_without_running_code():
    found = literals_in('A = [1, "x"]\nB = {"k": 2.5}\nC = os.system("rm -rf /")\n')
    assert found == {"A": [1, "x"], "B": {"k": 2.5}}


def test_claims_are_read_per_cell_and_compared_with_trusted_values():
    cell = nbformat.v4.new_code_cell("report(...)", metadata={"nbgrader": {"grade_id": "c1"}})
    cell.outputs = [nbformat.v4.new_output("display_data", data={CLAIM_MIMETYPE: {"name": "total", "value": {"n": 3}}})]
    nb = nbformat.v4.new_notebook(cells=[cell])
    ev = Evidence(log=[], inputs={}, source_literals={}, course=load_course(), claims=claims_in(nb))
    assert claim_matches(ev, "c1", "total", {"n": 3}).passed
    assert not claim_matches(ev, "c1", "total", {"n": 4}).passed
    assert not claim_matches(ev, "other_cell", "total", {"n": 3}).passed, "a claim counts only from its own cell"


def test_deleted_and_edited_protected_cells_are_restored_and_extra_cells_kept():
    release = nbformat.read(RELEASE_DIR / "ex01" / "ex01.ipynb", as_version=4)
    student = nbformat.from_dict(nbformat.from_dict(release))
    ids = [c.metadata["nbgrader"]["grade_id"] for c in student.cells]
    student.cells = [c for c in student.cells if c.metadata["nbgrader"]["grade_id"] != "ex01_qa"]
    edited = next(c for c in student.cells if c.metadata["nbgrader"]["grade_id"] == "ex01_usage")
    edited.source = "pass"
    student.cells.insert(3, nbformat.v4.new_code_cell("scratch = 1"))
    restored, problems = align_with_release(student, release, RELEASE_DIR / "ex01" / "ex01.ipynb")
    assert [p.code for p in problems] == ["cell_restored", "cell_edited"]
    restored_ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in restored.cells]
    assert [i for i in restored_ids if i] == ids, "protected cells back, in their original order"
    assert any(c.source == "scratch = 1" for c in restored.cells)
    nbformat.validate(restored)
    usage = next(c for c in restored.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "ex01_usage")
    assert usage.source != "pass"


def test_an_answer_split_over_cells_claims_for_its_solution_cell_only():
    """The student's cells beside a solution cell are its answer (align.py keeps them together): their claims
    count for it; a student cell beside a locked cell claims nothing for that cell."""
    def claiming(name, **meta):
        cell = nbformat.v4.new_code_cell("report(...)", metadata={"nbgrader": meta} if meta else {})
        cell.outputs = [nbformat.v4.new_output("display_data", data={CLAIM_MIMETYPE: {"name": name, "value": 1}})]
        return cell

    nb = nbformat.v4.new_notebook(cells=[
        claiming("before", grade_id="md", locked=True),
        claiming("part1"), claiming("own", grade_id="s1", solution=True), claiming("part2"),
        claiming("locked", grade_id="l1", locked=True), claiming("beside_locked"),
        claiming("test", grade_id="t1", grade=True),
    ])
    claims = claims_in(nb)
    assert claims["s1"] == {"part1": 1, "own": 1, "part2": 1}
    assert claims["l1"] == {"locked": 1} and claims["t1"] == {"test": 1}
