"""The lexicon scorer: direction, negation, intensity, phrases and its word list."""

from __future__ import annotations

import math

import pytest

from gnosis.models.sentiment import LexiconScorer
from gnosis.models.sentiment.lexicon import LEXICON_ID, load_lexicon

scorer = LexiconScorer()


def score(text: str) -> float:
    return scorer.score(text).score


@pytest.mark.parametrize("text", ["Acme beats estimates", "Globex shares surge on record profit",
                                  "Analysts upgrade Initech after strong quarter"])
def test_good_news_is_positive(text: str) -> None:
    assert score(text) > 0.3


@pytest.mark.parametrize("text", ["Acme misses estimates", "Globex shares plunge after fraud probe",
                                  "Initech files for bankruptcy"])
def test_bad_news_is_negative(text: str) -> None:
    assert score(text) < -0.3


@pytest.mark.parametrize("text", ["Acme names new CFO", "Globex to hold annual meeting on Tuesday"])
def test_plain_news_is_neutral(text: str) -> None:
    result = scorer.score(text)
    assert (result.positive, result.negative, result.neutral, result.score) == (0, 0, 1, 0)


@pytest.mark.parametrize(("negated", "plain"), [
    ("Acme fails to beat estimates", "Acme beats estimates"),
    ("Acme did not beat estimates", "Acme beats estimates"),
    ("Globex shares don't rally", "Globex shares rally"),
    ("No growth at Initech", "Growth at Initech"),
    ("Bank not expected to cut jobs", "Bank expected to cut jobs"),
])
def test_negation_flips_direction(negated: str, plain: str) -> None:
    assert score(negated) * score(plain) < 0


def test_negation_scope_ends() -> None:
    far = "Acme did not comment on the report today; shares surge"
    assert score(far) == score("Acme shares surge")


def test_intensifier_strengthens_and_phrase_beats_its_words() -> None:
    assert score("Acme shares fall sharply") < score("Acme shares fall") < 0
    # "profit warning" is one bad phrase, not "profit" (good) plus "warning" (bad)
    assert score("Acme issues profit warning") < score("Acme issues warning") < 0


def test_inflections_found_by_suffix() -> None:
    assert score("Acme upgraded") == score("Acme upgrade") > 0
    assert score("stocks tumbling") == score("stocks tumble") < 0


def test_probabilities_sum_to_one_and_score_is_their_difference() -> None:
    for result in scorer.score_batch(["Acme beats but warns on margins", "Globex crash", "",
                                      "surge surge surge surge surge surge surge"]):
        assert math.isclose(result.positive + result.negative + result.neutral, 1.0)
        assert math.isclose(result.score, result.positive - result.negative)
        assert -1 <= result.score <= 1
        assert result.model_id == LEXICON_ID


def test_deterministic_and_case_insensitive() -> None:
    texts = ["ACME BEATS ESTIMATES", "acme beats estimates", "Acme   beats\testimates"]
    first = LexiconScorer().score_batch(texts)
    assert first == LexiconScorer().score_batch(texts)
    assert first[0] == first[1] == first[2]


def test_shipped_list_is_balanced() -> None:
    words = load_lexicon()
    positive = sum(w > 0 for w in words.values())
    negative = sum(w < 0 for w in words.values())
    assert 200 <= len(words) <= 400
    assert positive > 80
    assert negative > 80
    assert all(0 < abs(w) <= 2 for w in words.values())


def test_duplicate_entry_is_rejected(tmp_path) -> None:
    path = tmp_path / "words.tsv"
    path.write_text("# test\ngain\t1.0\ngain\t-1.0\n")
    with pytest.raises(ValueError, match="line 3"):
        load_lexicon(path)


def test_custom_lexicon() -> None:
    custom = LexiconScorer({"moon": 2.0}, model_id="custom")
    assert custom.score("to the moon").score > 0
    assert custom.score("Acme beats estimates").score == 0
    assert custom.model_id == "custom"
