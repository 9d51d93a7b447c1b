"""mutate: mutation testing of the grader. Mistakes are made on purpose in the source solutions
(operators.py), one at a time (mutants.py); each mutant is graded officially and must lose points or
be listed in equivalent.toml with a reason (run.py)."""
