"""ex02 Structured Outputs: checks on the schemas sent and the values reported."""
from __future__ import annotations

import json

from ..evidence import Evidence, Verdict, claim_matches, fail, ok, same_messages
from . import check

EX = "ex02"
SENTIMENTS = {"positive", "negative", "neutral"}
CATEGORIES = {"electronics", "home", "fashion", "food", "other"}


def _strict_requests(ev: Evidence, name: str):
    return ev.served(lambda x: x.schema_name == name
                     and (x.request["response_format"].get("json_schema") or {}).get("strict") is True)


def _resolve(schema: dict, node: dict) -> dict:
    ref = node.get("$ref", "")
    if ref.startswith("#/$defs/"):
        return schema.get("$defs", {}).get(ref.split("/")[-1], {})
    return node


def _props(schema: dict, node: dict) -> dict:
    return {k: _resolve(schema, v) for k, v in (_resolve(schema, node).get("properties") or {}).items()}


def _sent_schema(ev: Evidence, name: str) -> dict | None:
    """The schema of the first successful strict request named `name`."""
    sent = _strict_requests(ev, name)
    return sent[0].request["response_format"]["json_schema"]["schema"] if sent else None


# The fixture server checks a request as the service would (a strict schema with `minimum` is refused) before it
# looks for a recording: a request refused only for want of one carried a schema the service accepts.
NO_RECORDING = "NO_MATCHING_FIXTURE"


def _model_schema(ev: Evidence, model: str, name: str) -> dict | None:
    """The schema of 2.1's pydantic `model` as json_schema_format sends it (strict: true), from the first request
    the service accepted (served, or refused only because no recording matches it). Found by the model's title
    (pydantic's class name), whatever name the cell that sent it chose, or without a title by the dictated `name`:
    a wrong name, messages or settings are that cell's loss, not 2.1's."""
    for x in ev.exchanges:
        spec = (x.request.get("response_format") or {}).get("json_schema") or {}
        schema = spec.get("schema")
        if not isinstance(schema, dict) or spec.get("strict") is not True:
            continue
        if not (x.status == 200 or (x.response or {}).get("error_code") == NO_RECORDING):
            continue
        if schema.get("title") == model or ("title" not in schema and spec.get("name") == name):
            return schema
    return None


def _undescribed(schema: dict, node: dict, prefix: str = "") -> str | None:
    """The first property (nested ones too) sent without a description: 2.1 gives each field its meaning."""
    for name, prop in _props(schema, node).items():
        if not str(prop.get("description") or "").strip():
            return prefix + name
        items = _resolve(schema, prop.get("items") or {})
        if found := _undescribed(schema, items, f"{prefix}{name}[]."):
            return found
    return None


def _described(schema: dict, name: str) -> Verdict | None:
    """A failure when a field has no description, or rating's does not state its range (1-5)."""
    if field := _undescribed(schema, schema):
        return fail("ex02_field_description_missing", schema=name, field=field)
    rating = str(_props(schema, schema).get("rating", {}).get("description") or "")
    if "1" not in rating or "5" not in rating:
        return fail("ex02_rating_range_not_described", schema=name)
    return None


def _not_sent(name: str) -> Verdict:
    return fail("ex02_schema_not_sent", schema=name)


@check(EX)
def strict_schema_sent(ev: Evidence) -> Verdict:
    """2.1's models as the later cells sent them: ReviewAnalysis (2.2) and, once 2.3 sent it, DetailedReview
    with its Feature. Each is judged here only: the cells that send them are charged for the request, not for
    what 2.1 defined (one mistake, one charge)."""
    schema = _model_schema(ev, "ReviewAnalysis", "review_analysis")
    if schema is None:
        return _not_sent("review_analysis")
    props = _props(schema, schema)
    if props.get("rating", {}).get("type") != "integer":
        return fail("ex02_rating_not_integer")
    if props.get("product_name", {}).get("type") != "string":
        return fail("ex02_product_name_not_string")
    if set(props.get("sentiment", {}).get("enum") or ()) != SENTIMENTS:
        return fail("ex02_sentiment_not_enum")
    if not {"product_name", "rating", "sentiment"} <= set(schema.get("required") or ()):
        return fail("ex02_fields_not_required")
    if verdict := _described(schema, "review_analysis"):
        return verdict
    detailed = _model_schema(ev, "DetailedReview", "detailed_review")
    return (_detailed_model(detailed) if detailed is not None else None) or ok()


def _detailed_model(schema: dict) -> Verdict | None:
    """A failure when the DetailedReview schema sent is not the one 2.1 asks for (Feature included)."""
    props = _props(schema, schema)
    features = props.get("features", {})
    feature_props = _props(schema, features.get("items") or {}) if features.get("type") == "array" else {}
    if set(feature_props.get("opinion", {}).get("enum") or ()) != SENTIMENTS or "name" not in feature_props:
        return fail("ex02_detailed_features")
    if props.get("would_recommend", {}).get("type") != "boolean":
        return fail("ex02_detailed_would_recommend")
    if set(props.get("category", {}).get("enum") or ()) != CATEGORIES:
        return fail("ex02_detailed_category")
    for key in ("pros", "cons"):
        if props.get(key, {}).get("type") != "array":
            return fail("ex02_detailed_string_list", key=key)
    return _described(schema, "detailed_review")


@check(EX)
def single_request(ev: Evidence) -> Verdict:
    """2.2 sent REVIEW_SINGLE after the system prompt, strict, as `review_analysis`, with the dictated model and
    temperature. The schema's contents are 2.1's (strict_schema_sent): one mistake, charged once."""
    hits = [x for x in _strict_requests(ev, "review_analysis")
            if same_messages(x.messages, [("system", ev.inputs["EXTRACTION_SYSTEM_PROMPT"]),
                                          ("user", ev.inputs["REVIEW_SINGLE"])])]
    if not hits:
        return fail("ex02_single_request_missing")
    for x in hits:
        if x.request.get("model") != ev.chat_model or x.request.get("temperature") not in (0, 0.0):
            return fail("ex02_single_settings", model=ev.chat_model)
    return ok()


@check(EX)
def detailed_schema_sent(ev: Evidence) -> Verdict:
    """2.3 sent its request strict, as `detailed_review`, and it was served. The schema's contents are 2.1's
    DetailedReview and Feature (strict_schema_sent): one mistake, charged once."""
    if _sent_schema(ev, "detailed_review") is None:
        return _not_sent("detailed_review")
    return ok()


def _batch_replies(ev: Evidence) -> list[dict] | None:
    replies = []
    for review in ev.inputs["REVIEWS"]:
        hits = [x for x in _strict_requests(ev, "detailed_review")
                if x.messages and x.messages[-1].get("content") == review]
        if not hits:
            return None
        replies.append(json.loads(hits[-1].reply.get("content") or "{}"))
    return replies


@check(EX)
def batch_requests(ev: Evidence) -> Verdict:
    if _batch_replies(ev) is None:
        return fail("ex02_batch_requests_missing")
    return ok()


@check(EX)
def dataframe_summary(ev: Evidence) -> Verdict:
    replies = _batch_replies(ev)
    if replies is None:
        return fail("ex02_batch_incomplete")
    sentiments: dict[str, int] = {}
    for r in replies:
        sentiments[r["sentiment"]] = sentiments.get(r["sentiment"], 0) + 1
    expected = {
        "count": len(replies),
        "avg_rating": round(sum(r["rating"] for r in replies) / len(replies), 2),
        "recommend_rate": round(sum(bool(r["would_recommend"]) for r in replies) / len(replies), 2),
        "sentiment_counts": sentiments,
        "low_rated_products": [r["product_name"] for r in replies if r["rating"] <= 2],
    }
    return claim_matches(ev, "ex02_dataframe_report", "review_summary", expected)


def reference_issues(review: dict) -> list[str]:
    """The business rules of 2.6, written independently of the solution."""
    rating, sentiment = review["rating"], review["sentiment"]
    issues = []
    if rating < 1 or rating > 5:
        issues.append("rating_out_of_range")
    if (sentiment == "positive" and rating <= 2) or (sentiment == "negative" and rating >= 4):
        issues.append("sentiment_rating_mismatch")
    if review["would_recommend"] and sentiment == "negative":
        issues.append("recommend_mismatch")
    if not review["features"]:
        issues.append("no_features")
    return issues


VALIDATION_BASE = dict(rating=3, sentiment="neutral", features=[{"name": "品質", "opinion": "neutral"}], would_recommend=False)


@check(EX)
def validation_rules(ev: Evidence) -> Verdict:
    cases = ev.source_literals["ex02_validation"]["HIDDEN_VALIDATION_CASES"]
    expected = [reference_issues({**VALIDATION_BASE, **case}) for case in cases]
    # The message gives no expected values: they would reveal the hidden cases.
    return claim_matches(ev, "ex02_validation", "validation_hidden", expected,
                         mismatch="ex02_validation_mismatch", count=len(expected))


@check(EX)
def strict_safe_schema(ev: Evidence) -> Verdict:
    schema = _sent_schema(ev, "rated_review")
    if schema is None:
        return _not_sent("rated_review")
    description = _props(schema, schema).get("rating", {}).get("description", "")
    if "minimum=1" not in description or "maximum=5" not in description:
        return fail("ex02_rating_description")
    return ok()
