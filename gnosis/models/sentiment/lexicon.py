"""Lexicon scorer: a finance word list with negation, the default when no model is set.

Deterministic and fast (a dictionary look-up per word). A headline's positive evidence
``P`` and negative evidence ``N`` (sums of word weights; a negated word counts for the
other side) become probabilities with a neutral prior of weight 1::

    positive = P / (P + N + 1)    negative = N / (P + N + 1)    neutral = 1 / (P + N + 1)
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path

from gnosis.models.sentiment.score import SentimentScore, clean_text

LEXICON_ID = "lexicon-v1"

NEGATORS = frozenset({"not", "no", "never", "without", "neither", "nor", "cannot", "fails to",
                      "failed to", "fail to", "failing to", "unable to", "lack of", "lacks"})
"""Words that flip the sign of the next :data:`NEGATION_SCOPE` words ("fails to beat")."""
NEGATION_SCOPE = 3
INTENSIFIERS = frozenset({"sharply", "sharp", "steep", "steeply", "strongly", "significantly",
                          "massive", "huge", "sharpest", "deeply", "deep", "heavy", "heavily"})
"""Words that make the sentiment word next to them count :data:`INTENSITY` times as much
("shares fall sharply", "sharply lower")."""
INTENSITY = 1.5

_WORD = r"[a-z]+(?:[-'][a-z]+)*"
_NEGATE = 1e9  # memo markers for negators and intensifiers, beyond any word weight
_BOOST = 2e9
_SUFFIXES = (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", ""), ("d", ""))
_MEMO_LIMIT = 100_000


def load_lexicon(path: str | Path | None = None) -> dict[str, float]:
    """Read a ``word<TAB>weight`` file (``#`` comments); the shipped list by default.

    Raises ``ValueError`` on a malformed line or a word listed twice, so that an edit to
    the list cannot silently shadow an entry.
    """
    if path is None:
        text = (resources.files("gnosis.models") / "assets" / "finance_lexicon.tsv").read_text(
            encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    words: dict[str, float] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        word, sep, weight = line.partition("\t")
        if not sep or word in words:
            raise ValueError(f"lexicon line {number}: malformed or duplicate entry {line!r}")
        words[word] = float(weight)
    return words


class LexiconScorer:
    """Scores headlines by summing finance word weights, with negation and intensifiers.

    >>> s = LexiconScorer().score_batch(["Acme beats estimates", "Acme fails to beat"])
    >>> s[0].score > 0 > s[1].score
    True
    """

    def __init__(self, lexicon: Mapping[str, float] | None = None,
                 model_id: str = LEXICON_ID) -> None:
        self._lexicon = dict(load_lexicon() if lexicon is None else lexicon)
        self._memo: dict[str, float] = {}
        # Multi-word entries ("profit warning", "fails to") are matched before single words.
        phrases = sorted((w for w in (*self._lexicon, *NEGATORS) if " " in w), key=len,
                         reverse=True)
        pattern = "|".join(re.escape(p).replace(r"\ ", " ") for p in phrases)
        self._tokens = re.compile(rf"(?:{pattern})\b|{_WORD}" if phrases else _WORD).findall
        self.model_id = model_id
        self.provider = "python"
        """Where the scoring runs (for a model: its ONNX Runtime execution provider)."""
        words = "\n".join(f"{w}\t{v!r}" for w, v in sorted(self._lexicon.items()))
        self.digest = hashlib.sha256(
            f"{model_id}|{NEGATION_SCOPE}|{INTENSITY}\n{words}".encode()).hexdigest()[:16]
        """Identity of the scores: the id, the word list and the negation/intensity rules."""
        self._neutral = SentimentScore.neutral_for(model_id)

    def score_batch(self, texts: Sequence[str]) -> list[SentimentScore]:
        """One score per text, in order; empty or unreadable text is neutral."""
        return [self.score(text) for text in texts]

    def score(self, text: str) -> SentimentScore:
        """The score of one headline."""
        positive, negative = self.evidence(text)
        if positive == 0.0 and negative == 0.0:
            return self._neutral
        total = positive + negative + 1.0
        return SentimentScore(positive / total, negative / total, 1.0 / total,
                              (positive - negative) / total, self.model_id)

    def evidence(self, text: str) -> tuple[float, float]:
        """(positive, negative) evidence of a headline, both ``>= 0``."""
        if not isinstance(text, str):
            return 0.0, 0.0
        if not text.isascii() or not text.isprintable():
            text = clean_text(text).replace("\u2019", "'")
        memo = self._memo
        positive = negative = 0.0
        negated = 0  # words left in the current negation's scope
        boost = 1.0  # set by an intensifier before a word ("sharply lower")
        last = 0.0  # the previous word's signed contribution, for "falls sharply"
        for token in self._tokens(text.lower()):
            weight = memo.get(token)
            if weight is None:
                weight = self._remember(token)
            if weight == 0.0:
                negated -= negated > 0
                last = 0.0
                continue
            if weight == _NEGATE:
                negated = NEGATION_SCOPE
                last = 0.0
                continue
            if weight == _BOOST:
                if last:
                    weight, last = last * (INTENSITY - 1.0), 0.0
                else:
                    boost = INTENSITY
                    continue
            else:
                weight *= -boost if negated else boost
                boost, last = 1.0, weight
                negated -= negated > 0
            if weight > 0:
                positive += weight
            else:
                negative -= weight
        return positive, negative

    def _remember(self, token: str) -> float:
        if token in NEGATORS or token.endswith("n't"):
            weight = _NEGATE
        elif token in INTENSIFIERS:
            weight = _BOOST
        else:
            weight = self._lookup(token)
        if len(self._memo) >= _MEMO_LIMIT:
            self._memo.clear()
        self._memo[token] = weight
        return weight

    def _lookup(self, token: str) -> float:
        weight = self._lexicon.get(token)
        if weight is not None:
            return weight
        for suffix, replacement in _SUFFIXES:
            if token.endswith(suffix) and len(token) > len(suffix) + 2:
                stem = token[: -len(suffix)]
                # "slipping" -> "slip", "tumbling" -> "tumble", "rallies" -> "rally"
                for base in (stem + replacement, stem[:-1] if stem[-1] == stem[-2] else "",
                             stem + "e" if suffix in ("ing", "ed") else ""):
                    weight = self._lexicon.get(base)
                    if weight is not None:
                        return weight
        if "-" in token:
            return sum(self._lookup(part) for part in token.split("-") if part)
        return 0.0
