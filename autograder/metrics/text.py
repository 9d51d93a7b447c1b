"""The grader's own BLEU / ROUGE for ex06, with the definitions the notebook states.

BLEU: sacrebleu corpus BLEU (0-100) with MeCab tokenisation (`ja-mecab`).
ROUGE-1/2/L: rouge_score F1, averaged over pairs, on MeCab tokens. rouge_score's
default tokenizer keeps only [a-z0-9] and so scores every Japanese pair 0.
"""
from __future__ import annotations

from functools import lru_cache

BLEU_TOKENIZE = "ja-mecab"
ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


@lru_cache(maxsize=1)
def _mecab():
    from sacrebleu.tokenizers.tokenizer_ja_mecab import TokenizerJaMecab

    return TokenizerJaMecab()


class JapaneseTokenizer:
    """The rouge_score tokenizer interface: text -> tokens."""

    def tokenize(self, text: str) -> list[str]:
        return _mecab()(text).split()


def bleu(predictions: list[str], references: list[str]) -> float:
    import sacrebleu

    return float(sacrebleu.corpus_bleu(list(predictions), [list(references)], tokenize=BLEU_TOKENIZE).score)


def rouge(predictions: list[str], references: list[str]) -> dict[str, float]:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), tokenizer=JapaneseTokenizer())
    scores = [scorer.score(ref, pred) for pred, ref in zip(predictions, references)]
    return {t: sum(s[t].fmeasure for s in scores) / max(1, len(scores)) for t in ROUGE_TYPES}
