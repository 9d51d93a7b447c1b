"""What a graded sample must show (fixtures/submissions/*.toml): exactly its lost points, exactly its problems."""


def assert_graded_as_expected(sample, grade) -> None:
    assert [r.exercise.id for r in grade.runs] == sample.exercises
    for run in grade.runs:
        failed = {c.id for c in run.checks if not c.passed}
        assert failed == sample.expected_failed(run.exercise.id), (run.exercise.id, run.checks)
        lost = sum(run.exercise.cell(gid).points for gid in failed)
        assert run.score == run.exercise.max_score - lost
        assert all(c.score in (0, c.max_score) and c.message for c in run.checks)
        codes = {p.code for p in run.problems} - set(sample.optional_problems)
        assert codes == set(sample.expect_problems.get(run.exercise.id, [])) - set(sample.optional_problems), \
            (run.exercise.id, [p.code for p in run.problems])
        for p in run.problems:
            assert p.message_ja and p.message_en and p.message_ja != p.message_en
