"""export: grade.json to what other tools read (GitHub Classroom, TA reports)."""
