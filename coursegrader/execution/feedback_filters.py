"""Feedback preprocessors: what a student may see of the graded notebook."""
from __future__ import annotations

import re

from nbgrader.preprocessors import ClearHiddenTests

# Generated pages run no script and load nothing: student outputs are sanitized, and this blocks the rest.
CONTENT_SECURITY_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; "
                           "form-action 'none'; base-uri 'none'")
CSP_META = f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'


def with_csp(html: str) -> str:
    """The page with the policy as the first element of <head> (a page without one gets a head); idempotent."""
    if CSP_META in html:
        return html
    found = re.search(r"<head[^>]*>", html, flags=re.IGNORECASE)
    if found:
        return html[:found.end()] + CSP_META + html[found.end():]
    return f"<head>{CSP_META}</head>" + html


class RedactHiddenTests(ClearHiddenTests):
    """Drop hidden-test code from feedback, and the tracebacks that would quote it."""

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type == "code" and self._remove_hidden_test_region(cell):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    output["traceback"] = [f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"]
        return cell, resources
