"""ex02 (Structured Outputs) evidence checks on synthetic request logs replayed from the ex02 cassette."""
from __future__ import annotations

import ast
import copy

import pandas as pd
import pytest

import builders as b
from autograder.checks import get_check

EX = "ex02"
INPUTS = b.inputs(EX)


def run(name, log, claims=None, **fields):
    return get_check(EX, name)(b.evidence(EX, log, claims, **fields))


def strict_requests(log, name):
    return [e for e in log if b.schema_name(e) == name]


def schema(entry) -> dict:
    return entry.request["response_format"]["json_schema"]["schema"]


def batch(log):
    """The detailed_review requests for REVIEWS, in order."""
    return [b.one(log, user=review, where=lambda e: b.schema_name(e) == "detailed_review") for review in INPUTS["REVIEWS"]]


def hidden_validation_answers() -> list:
    """The expected results the hidden test of ex02_validation asserts (`assert _results == [...]`)."""
    for node in ast.walk(ast.parse(b.cell_source(EX, "ex02_validation"))):
        if isinstance(node, ast.Assert) and isinstance(node.test, ast.Compare) \
                and getattr(node.test.left, "id", None) == "_results":
            return ast.literal_eval(node.test.comparators[0])
    raise AssertionError("no hidden expectation in ex02_validation")


def solution_claims(log) -> dict:
    """What the solution reports: summarize_reviews(build_dataframe(batch_results)) and the hidden validation results."""
    df = pd.DataFrame([b.reply_json(e) for e in batch(log)])
    summary = {
        "count": int(len(df)),
        "avg_rating": round(float(df["rating"].mean()), 2),
        "recommend_rate": round(float(df["would_recommend"].mean()), 2),
        "sentiment_counts": {k: int(v) for k, v in df["sentiment"].value_counts().items()},
        "low_rated_products": df.loc[df["rating"] <= 2, "product_name"].tolist(),
    }
    return {"ex02_dataframe_report": {"review_summary": summary},
            "ex02_validation": {"validation_hidden": hidden_validation_answers()}}


@pytest.fixture
def log():
    return b.cassette_log(EX)


def test_the_solution_claims_agree_with_the_notebooks_hidden_tests(log):
    summary = solution_claims(log)["ex02_dataframe_report"]["review_summary"]
    assert summary["avg_rating"] == 3.57 and summary["low_rated_products"] == ["FitTrack S", "CleanBot Mini"]
    assert summary["recommend_rate"] == 0.57


def test_the_recorded_reviews_tell_plausible_aggregates_apart(log):
    """Skewed ratings: the mean is not the median, and rounding to 2 places is not rounding to 3."""
    df = pd.DataFrame([b.reply_json(e) for e in batch(log)])
    assert round(df["rating"].mean(), 2) not in (df["rating"].median(), round(df["rating"].mean(), 3))
    assert round(df["would_recommend"].mean(), 2) != round(df["would_recommend"].mean(), 3)
    assert len(set(df["sentiment"].value_counts())) == df["sentiment"].nunique()


# -- strict_schema_sent ------------------------------------------------------------------------

def test_strict_schema_sent_passes_on_the_solution_log(log):
    assert run("strict_schema_sent", log).passed


def test_strict_schema_sent_passes_with_the_enum_in_defs(log):
    """pydantic puts an Enum class under $defs and refers to it: the check resolves the $ref."""
    s = schema(strict_requests(log, "review_analysis")[0])
    s["$defs"] = {"Sentiment": s["properties"]["sentiment"]}
    s["properties"]["sentiment"] = {"$ref": "#/$defs/Sentiment"}
    assert run("strict_schema_sent", log).passed


def test_strict_schema_sent_passes_when_2_2_sends_it_under_another_name(log):
    """json_schema_format(ReviewAnalysis, "ReviewAnalysis") in 2.2: the fixture server has no recording for that name
    and refuses it, but the schema is 2.1's correct ReviewAnalysis. The wrong call is 2.2's (single_request) loss only."""
    entry = strict_requests(log, "review_analysis")[0]
    entry.request["response_format"]["json_schema"]["name"] = "ReviewAnalysis"
    log[log.index(entry)] = b.rejected(entry)
    assert run("strict_schema_sent", log).passed
    assert run("single_request", log).code == "ex02_single_request_missing"


def test_strict_schema_sent_passes_when_2_3_sent_nothing(log):
    """DetailedReview is judged once 2.3 sent it: a missing 2.3 is detailed_schema_sent's loss, not 2.1's."""
    log = b.without(log, strict_requests(log, "detailed_review"))
    assert run("strict_schema_sent", log).passed
    assert run("detailed_schema_sent", log).code == "ex02_schema_not_sent"


def test_strict_schema_sent_passes_when_the_service_refuses_the_detailed_schema(log):
    """A DetailedReview with ge/le is refused under strict (ex02_ge_constraint): 2.3 and the cells after it lose
    their points, and no refused schema is judged here."""
    for entry in strict_requests(log, "detailed_review"):
        schema(entry)["properties"]["rating"].update(minimum=1, maximum=5)
        del schema(entry)["properties"]["category"]["enum"]
        log[log.index(entry)] = b.rejected(entry, "INVALID_PARAMETER_VALUE")
    assert run("strict_schema_sent", log).passed


def edit_detailed(log, case):
    """2.1's DetailedReview (or Feature) written wrong: every detailed_review request carries the same schema."""
    for entry in strict_requests(log, "detailed_review"):
        s = schema(entry)
        props, feature = s["properties"], s["$defs"]["Feature"]["properties"]
        if case == "features_strings":
            props["features"]["items"] = {"type": "string"}
        elif case == "feature_opinion_free_text":  # Feature.opinion: str
            feature["opinion"] = {"type": "string", "description": feature["opinion"]["description"]}
        elif case == "feature_without_name":
            del feature["name"]
        elif case == "would_recommend_string":
            props["would_recommend"]["type"] = "string"
        elif case == "category_free_text":  # DetailedReview.category: str
            props["category"] = {"type": "string", "description": props["category"]["description"]}
        elif case == "category_enum_incomplete":
            props["category"]["enum"].remove("other")
        elif case == "pros_string":
            props["pros"] = {"type": "string"}
        elif case == "cons_missing":
            del props["cons"]
        elif case == "feature_name_undescribed":
            feature["name"]["description"] = " "
        elif case == "pros_undescribed":
            del props["pros"]["description"]
        elif case == "rating_range_unstated":
            props["rating"]["description"] = "評価"
        else:
            raise ValueError(case)


@pytest.mark.parametrize("case, code", [
    ("not_strict", "ex02_schema_not_sent"),
    ("refused_by_the_service", "ex02_schema_not_sent"),
    ("rating_number", "ex02_rating_not_integer"),
    ("product_name_integer", "ex02_product_name_not_string"),
    ("sentiment_free_text", "ex02_sentiment_not_enum"),
    ("sentiment_enum_incomplete", "ex02_sentiment_not_enum"),
    ("rating_not_required", "ex02_fields_not_required"),
    ("product_name_undescribed", "ex02_field_description_missing"),
    ("rating_range_unstated", "ex02_rating_range_not_described"),
])
def test_strict_schema_sent_fails(log, case, code):
    entry = strict_requests(log, "review_analysis")[0]
    js, s = entry.request["response_format"]["json_schema"], schema(entry)
    if case == "not_strict":
        js["strict"] = False
    elif case == "refused_by_the_service":
        log[log.index(entry)] = b.rejected(entry, "INVALID_PARAMETER_VALUE")
    elif case == "rating_number":
        s["properties"]["rating"]["type"] = "number"
    elif case == "product_name_integer":
        s["properties"]["product_name"]["type"] = "integer"
    elif case == "sentiment_free_text":
        del s["properties"]["sentiment"]["enum"]
    elif case == "sentiment_enum_incomplete":
        s["properties"]["sentiment"]["enum"] = ["positive", "negative"]
    elif case == "rating_not_required":
        s["required"].remove("rating")
    elif case == "product_name_undescribed":
        del s["properties"]["product_name"]["description"]
    else:
        s["properties"]["rating"]["description"] = "評価"
    verdict = run("strict_schema_sent", log)
    assert not verdict.passed and verdict.code == code


DETAILED_MODEL_MISTAKES = [
    ("features_strings", "ex02_detailed_features"),
    ("feature_opinion_free_text", "ex02_detailed_features"),
    ("feature_without_name", "ex02_detailed_features"),
    ("would_recommend_string", "ex02_detailed_would_recommend"),
    ("category_free_text", "ex02_detailed_category"),
    ("category_enum_incomplete", "ex02_detailed_category"),
    ("pros_string", "ex02_detailed_string_list"),
    ("cons_missing", "ex02_detailed_string_list"),
    ("feature_name_undescribed", "ex02_field_description_missing"),
    ("pros_undescribed", "ex02_field_description_missing"),
    ("rating_range_unstated", "ex02_rating_range_not_described"),
]


@pytest.mark.parametrize("case, code", DETAILED_MODEL_MISTAKES)
def test_strict_schema_sent_fails_on_the_detailed_model(log, case, code):
    """DetailedReview and Feature are 2.1's: a mistake in them is charged here, as sent by 2.3."""
    edit_detailed(log, case)
    verdict = run("strict_schema_sent", log)
    assert not verdict.passed and verdict.code == code


def test_strict_schema_sent_fails_on_the_detailed_model_under_another_name(log):
    """Found by the model (its title), whatever name 2.3 sent it under."""
    edit_detailed(log, "category_free_text")
    for entry in strict_requests(log, "detailed_review"):
        entry.request["response_format"]["json_schema"]["name"] = "DetailedReview"
        log[log.index(entry)] = b.rejected(entry)
    assert run("strict_schema_sent", log).code == "ex02_detailed_category"


# -- single_request ------------------------------------------------------------------------------

def single(log):
    return b.one(log, user=INPUTS["REVIEW_SINGLE"], where=lambda e: b.schema_name(e) == "review_analysis")


def test_single_request_passes_on_the_solution_log(log):
    assert run("single_request", log).passed


def test_single_request_passes_with_a_schema_that_2_1_is_charged_for(log):
    """A field without a description is strict_schema_sent's (ex02_models) loss, not 2.2's."""
    del schema(single(log))["properties"]["product_name"]["description"]
    assert run("single_request", log).passed
    assert run("strict_schema_sent", log).code == "ex02_field_description_missing"


@pytest.mark.parametrize("case, code", [
    ("not_sent", "ex02_single_request_missing"),
    ("no_system_prompt", "ex02_single_request_missing"),
    ("not_strict", "ex02_single_request_missing"),
    ("other_schema_name", "ex02_single_request_missing"),
    ("sampled", "ex02_single_settings"),
    ("other_model", "ex02_single_settings"),
])
def test_single_request_fails(log, case, code):
    entry = single(log)
    if case == "not_sent":
        log.remove(entry)
    elif case == "no_system_prompt":
        entry.request["messages"] = entry.request["messages"][1:]
    elif case == "not_strict":
        entry.request["response_format"]["json_schema"]["strict"] = False
    elif case == "other_schema_name":  # json_schema_format(ReviewAnalysis, "ReviewAnalysis"): no recording, refused
        entry.request["response_format"]["json_schema"]["name"] = "ReviewAnalysis"
        log[log.index(entry)] = b.rejected(entry)
    elif case == "sampled":
        entry.request["temperature"] = 0.7
    else:
        entry.request["model"] = "databricks-gpt-oss-20b"
    verdict = run("single_request", log)
    assert not verdict.passed and verdict.code == code


# -- detailed_schema_sent ------------------------------------------------------------------------

def test_detailed_schema_sent_passes_on_the_solution_log(log):
    assert run("detailed_schema_sent", log).passed


@pytest.mark.parametrize("case, code", DETAILED_MODEL_MISTAKES)
def test_detailed_schema_sent_passes_with_a_model_that_2_1_is_charged_for(log, case, code):
    """category: str or opinion: str in DetailedReview/Feature is strict_schema_sent's (ex02_models) loss, not 2.3's."""
    edit_detailed(log, case)
    assert run("detailed_schema_sent", log).passed
    assert run("strict_schema_sent", log).code == code


@pytest.mark.parametrize("case", ["not_sent", "not_strict", "other_schema_name", "refused_by_the_service"])
def test_detailed_schema_sent_fails(log, case):
    entries = strict_requests(log, "detailed_review")
    if case == "not_sent":
        log, entries = b.without(log, entries), []
    for entry in entries:
        js = entry.request["response_format"]["json_schema"]
        if case == "not_strict":
            js["strict"] = False
        elif case == "other_schema_name":  # no recording for it: refused
            js["name"] = "DetailedReview"
            log[log.index(entry)] = b.rejected(entry)
        else:  # ge/le in DetailedReview (ex02_ge_constraint)
            schema(entry)["properties"]["rating"].update(minimum=1, maximum=5)
            log[log.index(entry)] = b.rejected(entry, "INVALID_PARAMETER_VALUE")
    verdict = run("detailed_schema_sent", log)
    assert not verdict.passed and verdict.code == "ex02_schema_not_sent"


# -- batch_requests ------------------------------------------------------------------------------

def test_batch_requests_passes_on_the_solution_log(log):
    assert run("batch_requests", log).passed


@pytest.mark.parametrize("case", ["one_review_not_sent", "one_review_rejected", "one_review_not_strict",
                                  "one_review_with_the_simple_schema"])
def test_batch_requests_fails(log, case):
    entry = batch(log)[2]
    if case == "one_review_not_sent":
        log = b.without(log, [entry])
    elif case == "one_review_rejected":
        log[log.index(entry)] = b.rejected(entry)
    elif case == "one_review_not_strict":
        entry.request["response_format"]["json_schema"]["strict"] = False
    else:
        entry.request["response_format"] = copy.deepcopy(strict_requests(log, "review_analysis")[0].request["response_format"])
    verdict = run("batch_requests", log)
    assert not verdict.passed and verdict.code == "ex02_batch_requests_missing"


# -- dataframe_summary ---------------------------------------------------------------------------

def test_dataframe_summary_passes_with_the_solutions_summary(log):
    assert run("dataframe_summary", log, solution_claims(log)).passed


@pytest.mark.parametrize("case, code", [
    ("avg_rating_unrounded", "claim_mismatch"),
    ("single_review_counted", "claim_mismatch"),
    ("low_rated_threshold_wrong", "claim_mismatch"),
    ("claim_missing", "claim_missing"),
    ("batch_incomplete", "ex02_batch_incomplete"),
])
def test_dataframe_summary_fails(log, case, code):
    claims = solution_claims(log)
    summary = claims["ex02_dataframe_report"]["review_summary"]
    if case == "avg_rating_unrounded":
        summary["avg_rating"] = 3.0000001
    elif case == "single_review_counted":  # REVIEW_SINGLE added to the batch
        summary["count"] += 1
    elif case == "low_rated_threshold_wrong":  # rating < 2 instead of <= 2
        summary["low_rated_products"] = ["FitTrack S"]
    elif case == "claim_missing":
        del claims["ex02_dataframe_report"]
    else:
        log = b.without(log, batch(log)[:1])
    verdict = run("dataframe_summary", log, claims)
    assert not verdict.passed and verdict.code == code


# -- validation_rules ----------------------------------------------------------------------------

def test_validation_rules_passes_with_the_hidden_tests_answers(log):
    assert run("validation_rules", log, solution_claims(log)).passed


@pytest.mark.parametrize("case, code", [
    ("recommend_rule_missing", "ex02_validation_mismatch"),
    ("issues_in_another_order", "ex02_validation_mismatch"),
    ("one_case_left_out", "ex02_validation_mismatch"),
    ("claim_missing", "claim_missing"),
])
def test_validation_rules_fails(log, case, code):
    claims = solution_claims(log)
    results = claims["ex02_validation"]["validation_hidden"]
    if case == "recommend_rule_missing":
        claims["ex02_validation"]["validation_hidden"] = [[i for i in r if i != "recommend_mismatch"] for r in results]
    elif case == "issues_in_another_order":
        results[1].reverse()
    elif case == "one_case_left_out":
        results.pop()
    else:
        claims = {}
    verdict = run("validation_rules", log, claims)
    assert not verdict.passed and verdict.code == code


# -- strict_safe_schema --------------------------------------------------------------------------

def test_strict_safe_schema_passes_on_the_solution_log(log):
    assert run("strict_safe_schema", log).passed


@pytest.mark.parametrize("case, code", [
    ("constraints_dropped_silently", "ex02_rating_description"),
    ("only_minimum_kept", "ex02_rating_description"),
    ("constraints_left_in_schema", "ex02_schema_not_sent"),
    ("not_sent", "ex02_schema_not_sent"),
])
def test_strict_safe_schema_fails(log, case, code):
    entry = strict_requests(log, "rated_review")[0]
    rating = schema(entry)["properties"]["rating"]
    if case == "constraints_dropped_silently":
        rating["description"] = "評価"
    elif case == "only_minimum_kept":
        rating["description"] = "評価（制約: minimum=1）"
    elif case == "constraints_left_in_schema":  # the API rejects minimum/maximum under strict
        rating.update(minimum=1, maximum=5)
        log[log.index(entry)] = b.rejected(entry, "INVALID_PARAMETER_VALUE")
    else:
        log = b.without(log, [entry])
    verdict = run("strict_safe_schema", log)
    assert not verdict.passed and verdict.code == code
