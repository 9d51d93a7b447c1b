"""Units of the outside-the-kernel machinery: claims, literals, restoring protected cells."""
import nbformat

from coursegrader.config import RELEASE_DIR
from autograder.evidence import CLAIM_MIMETYPE, Evidence, claim_matches, claims_in
from coursegrader.notebook import literals_in
from coursegrader.grading.submission import restore_protected_cells


def test_literals_are_read_without_running_code():
    found = literals_in('A = [1, "x"]\nB = {"k": 2.5}\nC = os.system("rm -rf /")\n')
    assert found == {"A": [1, "x"], "B": {"k": 2.5}}


def test_claims_are_read_per_cell_and_compared_with_trusted_values():
    cell = nbformat.v4.new_code_cell("report(...)", metadata={"nbgrader": {"grade_id": "c1"}})
    cell.outputs = [nbformat.v4.new_output("display_data", data={CLAIM_MIMETYPE: {"name": "total", "value": {"n": 3}}})]
    nb = nbformat.v4.new_notebook(cells=[cell])
    ev = Evidence(log=[], inputs={}, source_literals={}, claims=claims_in(nb))
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
    restored, problems = restore_protected_cells(student, release)
    assert [p.code for p in problems] == ["cell_restored", "cell_edited"]
    restored_ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in restored.cells]
    assert [i for i in restored_ids if i] == ids, "protected cells back, in their original order"
    assert any(c.source == "scratch = 1" for c in restored.cells)
    usage = next(c for c in restored.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "ex01_usage")
    assert usage.source != "pass"
