"""Feedback preprocessors: what a student may see of the graded notebook."""
from __future__ import annotations

from nbgrader.preprocessors import ClearHiddenTests


class RedactHiddenTests(ClearHiddenTests):
    """Drop hidden-test code from feedback, and the tracebacks that would quote it."""

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type == "code" and self._remove_hidden_test_region(cell):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    output["traceback"] = [f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"]
        return cell, resources
