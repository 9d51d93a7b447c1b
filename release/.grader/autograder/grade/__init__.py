"""grade: autograde a submission and check it from outside the kernel."""
from .pipeline import grade_submission

__all__ = ["grade_submission"]
