"""course.toml's thresholds and budgets held to what `python -m autograder calibrate` measured
(fixtures/calibration/<profile>.json): the solution passes them with a margin, the ex05 mistakes fail
them. The files are read, not re-measured, so no outcome here depends on this machine's speed."""
from __future__ import annotations

import json

import pytest

from autograder.calibrate import CALIBRATION_MISTAKES, SOLUTION_EXERCISES, calibration_path
from coursegrader.config import COURSE_TOML, load_course

RATE_MARGIN = 0.1  # the solution clears each gozaru threshold, and each mistake misses it, by this much
TRAIN_SHARE = 0.5  # training takes at most this share of its cell's limit (the limit guards infinite loops)
PROFILES = ["cpu", "cpu-real-tiny", "cpu-real", "gpu"]


def calibration(name: str) -> dict:
    path = calibration_path(name)
    if not path.is_file():
        pytest.skip(f"{path.name}: not measured (the gpu and cpu-real files need the real model, from the Hub)")
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", PROFILES)
def test_calibration_measured_the_settings_in_force(name):
    """A changed budget or threshold needs a new calibration."""
    seen, profile = calibration(name), load_course().profile(name)
    assert seen["settings"] == {k: getattr(profile, k) for k in seen["settings"]}, "re-run calibrate"


@pytest.mark.parametrize("name", PROFILES)
def test_the_solution_passes_every_threshold_with_a_margin(name):
    seen, profile = calibration(name), load_course().profile(name)
    solution = seen["runs"]["solution"]["exercises"]
    assert sorted(solution) == sorted(SOLUTION_EXERCISES)
    assert all(row["score"] == row["max_score"] and not row["failed"] for row in solution.values()), solution
    tuned, base = solution["ex05"]["tuned_gozaru_rate"], seen["base_gozaru_rate"]
    assert tuned >= profile.min_gozaru_rate + RATE_MARGIN
    assert tuned - base >= profile.min_gozaru_lift + RATE_MARGIN


@pytest.mark.parametrize("name", PROFILES)
def test_the_ex05_mistakes_fail_the_gozaru_check(name):
    seen, profile = calibration(name), load_course().profile(name)
    for mistake in CALIBRATION_MISTAKES:
        ex05 = seen["runs"][mistake]["exercises"]["ex05"]
        assert "ex05_gozaru" in ex05["failed"], mistake
        tuned = ex05["tuned_gozaru_rate"]
        if tuned is not None:  # it saved an adapter: the threshold, not a missing file, must fail it
            assert (tuned <= profile.min_gozaru_rate - RATE_MARGIN
                    or tuned - seen["base_gozaru_rate"] <= profile.min_gozaru_lift - RATE_MARGIN), (mistake, tuned)


@pytest.mark.parametrize("name", PROFILES)
def test_training_stays_well_inside_its_cell_limit(name):
    ex05 = calibration(name)["runs"]["solution"]["exercises"]["ex05"]
    assert ex05["train_s"] is not None and ex05["train_s"] <= TRAIN_SHARE * ex05["train_cell_limit_s"], ex05


def test_course_toml_cites_the_calibration_files():
    text = COURSE_TOML.read_text(encoding="utf-8")
    for name in PROFILES:
        assert f"fixtures/calibration/{name}.json" in text
