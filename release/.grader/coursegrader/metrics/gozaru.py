"""The gozaru rate: the share of answers whose last sentence ends in the ござる family.

An answer counts when, after trailing whitespace, punctuation, symbols and emoji are
stripped, it ends in ござる / ござるよ / ござるな / ござるぞ / ござるね / ござるか /
ござった / ござらん / ござらぬ / ござろう. ございます does not count: it is ordinary polite
Japanese, which the base model already produces. The course dataset's answers end in a sign-off,
"…でござる。知らんけど。", so a final 知らんけど sentence is skipped before the ending is read.
"""
import re
import unicodedata

GOZARU_ENDING = re.compile(r"ござ(?:る[よなぞねかわ]?|った|ら[んぬ]|ろう)$")
SIGN_OFF = "知らんけど"


def strip_trailing(text: str) -> str:
    """Drop trailing whitespace, punctuation, symbols (emoji included) and format marks."""
    end = len(text)
    while end and unicodedata.category(text[end - 1])[0] in "ZPSC" or (end and text[end - 1] in "\ufe0f\u200d"):
        end -= 1
    return text[:end]


def is_gozaru(text: str) -> bool:
    text = strip_trailing(text or "")
    if text.endswith(SIGN_OFF):
        text = strip_trailing(text[:-len(SIGN_OFF)])
    return bool(GOZARU_ENDING.search(text))


def gozaru_rate(texts) -> float:
    texts = list(texts)
    return sum(is_gozaru(t) for t in texts) / len(texts) if texts else 0.0
