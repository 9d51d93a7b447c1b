"""nbgrader configuration for this course (one assignment per exercise: ex01 ... ex06).

The gradebook holds hidden tests, so it must never be committed or published:
`python -m autograder release` and `grade` always use a throwaway gradebook (for `grade`, a copy of
the one generated before for the same source, kept in the grader's own cache, ~/.cache/coursegrader,
which no sandbox can read).
"""
import os

c = get_config()  # noqa: F821 - provided by nbgrader

c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.source_directory = "source"
c.CourseDirectory.release_directory = "release"
c.CourseDirectory.course_id = "llm-databricks-handson"

c.ClearSolutions.code_stub = {"python": "# ここにコードを書いてください\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "ここに回答を書いてください"
c.ClearSolutions.enforce_metadata = True
c.ClearHiddenTests.enforce_metadata = True
