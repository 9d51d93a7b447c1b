"""ex06's promotion rule, the grader's own. ex06's checks import it; promotion_follows_criteria sends this file's
text to its runner (runners/promotion.py: the sandbox cannot read the repository), where meets_criteria stands in
for the student's meets_production_criteria."""
import math


def meets_criteria(metrics: dict, criteria: dict, keys: dict) -> bool:
    """Every criterion metric (keys: metric -> criterion) present, a number, not NaN, at least its minimum."""
    for metric, key in keys.items():
        value = metrics.get(metric)
        if not isinstance(value, (int, float)) or math.isnan(value) or value < criteria[key]:
            return False
    return True
