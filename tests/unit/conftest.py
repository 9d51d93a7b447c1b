"""Fixtures shared by the checks' unit tests (tests/unit/test_checks_exNN.py); the data builders are in builders.py."""
from __future__ import annotations

import copy
import json

import pytest

import builders


@pytest.fixture(scope="session")
def profile():
    """The offline (cpu) profile: the tiny Gemma-3 stand-in and the repository's dataset."""
    return builders.cpu_profile()


@pytest.fixture(scope="session")
def reference_lm(profile):
    """The grader's own model (tiny-gemma3-ja), loaded once: ReferenceLM's loads are lru_cached, so the checks share it."""
    from autograder.reference_lm import ReferenceLM

    return ReferenceLM(profile.resolve(profile.model_id), precision=builders.machine_precision())


@pytest.fixture(scope="module")
def memoized_generation():
    """Remember ReferenceLM.generate per (model, messages, max_new_tokens) for one test module.

    Greedy generation is deterministic, so a pass and a fail case of the same check (and checks that
    share a prompt) generate each answer once. The cache holds the model itself, so a model id is never
    reused while its answers are remembered."""
    from autograder.reference_lm import ReferenceLM

    original = ReferenceLM.generate
    cache: dict = {}

    def generate(self, messages, max_new_tokens):
        key = (id(self.model), json.dumps(messages, ensure_ascii=False, sort_keys=True), max_new_tokens)
        if key not in cache:
            cache[key] = (self.model, original(self, messages, max_new_tokens))
        return cache[key][1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ReferenceLM, "generate", generate)
        yield cache


@pytest.fixture
def claims(solution):
    """For modules whose `solution` fixture is (claims, mistakes): a fresh copy of the solution's claims."""
    return copy.deepcopy(solution[0])


@pytest.fixture
def mistakes(solution):
    return solution[1]
