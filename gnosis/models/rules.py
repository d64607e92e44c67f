"""Signal rules: features and sentiment in, a trading decision out.

The seed's trading logic, with every threshold in :class:`gnosis.config.RuleConfig`:

* **Strong BUY**: contrarian market + VSA no supply + trending + positive sentiment.
* **BUY**: positive sentiment + trending + low volatility clustering.
* **SELL**: negative sentiment + mean reverting + high volatility clustering.
* **HOLD**: everything else, and always while the features are warming up.

Definitions:

* *positive / negative sentiment*: the as-of sentiment mean over the last
  ``sentiment_window`` (news stamped in ``(t - window, t]``) is at least
  ``positive_sentiment`` / at most ``negative_sentiment``, with at least one item.
* *trending / mean reverting*: Hurst exponent ``>= trending_hurst`` /
  ``<= mean_reverting_hurst``, and significantly so: ``H - 0.5 > k * se`` /
  ``0.5 - H > k * se`` with ``k = hurst_significance`` and ``se`` the standard error of
  the estimate. The thresholds set the smallest regime worth trading, the test keeps
  estimation noise from flipping the regime (``k = 0`` switches it off).
* *low / high clustering*: short-to-long realised volatility ratio
  ``<= low_clustering`` / ``>= high_clustering``.
* *VSA no supply*: ``vsa_score >= no_supply_vsa`` (no supply, stopping volume or a
  successful test: sellers are absent).
* *contrarian market*: the crowd's sentiment points against the price trend
  (``sentiment_mean * trend < 0``) and is strong (``|sentiment_mean| >=
  contrarian_sentiment``). Buying into positive news while price still falls, with no
  supply on the tape, is the classic accumulation set-up the strong BUY looks for.

Confidence is a weighted agreement score in [0, 1]: sentiment strength (0.3), regime
strength ``|H - 0.5|`` (0.25), volatility calm or stress (0.15) and the amount of news
evidence (0.15), on a base of 0.15; the strong BUY adds 0.15. HOLD's confidence is the
complement of the strongest directional case. Position size is volatility targeted:
``confidence * min(max_position_size, target_volatility / realised_vol)``, scaled by
risk (LOW 1.0, MEDIUM 0.75, HIGH 0.5). Risk is HIGH when the Hawkes branching ratio
is at least ``high_risk_hawkes`` or clustering is high, LOW when both are calm.

The module has a scalar form (:func:`decide`, used per bar by the stream) and a
vectorised form (:func:`decide_arrays`, used by replay); both evaluate the same float
expressions in the same order, so they agree exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gnosis.config import RuleConfig

RULES: tuple[str, ...] = ("warming_up", "strong_buy", "buy", "sell", "hold",
                          "below_min_confidence")
"""Rule codes; ``rule_code`` arrays index into this tuple."""

SIGNAL_OF_RULE: tuple[str, ...] = ("HOLD", "BUY", "BUY", "SELL", "HOLD", "HOLD")
RISK_LEVELS: tuple[str, ...] = ("LOW", "MEDIUM", "HIGH")
_RISK_SCALE = (1.0, 0.75, 0.5)


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of the rules for one bar."""

    rule: str
    signal_type: str
    confidence: float
    risk_level: str
    suggested_position_size: float
    is_contrarian_market: bool


def _unit(x: float, scale: float) -> float:
    """``min(1, |x| / scale)``: how strongly ``x`` exceeds nothing, on a unit scale."""
    return min(1.0, abs(x) / scale)


def decide(
    *,
    ready: bool,
    vsa_score: float,
    hawkes_branching: float,
    hurst_exponent: float,
    hurst_se: float,
    volatility_clustering: float,
    realized_volatility: float,
    trend: float,
    sentiment_mean: float,
    sentiment_count: int,
    config: RuleConfig,
) -> Decision:
    """Apply the rules to one bar's features and as-of sentiment."""
    have_news = sentiment_count > 0
    contrarian = (have_news and sentiment_mean * trend < 0.0
                  and abs(sentiment_mean) >= config.contrarian_sentiment)
    risk = _risk(hawkes_branching, volatility_clustering, config)
    if not ready:
        return Decision("warming_up", "HOLD", 0.0, RISK_LEVELS[2], 0.0, contrarian)

    positive = have_news and sentiment_mean >= config.positive_sentiment
    negative = have_news and sentiment_mean <= config.negative_sentiment
    margin = config.hurst_significance * hurst_se
    trending = hurst_exponent >= config.trending_hurst and hurst_exponent - 0.5 > margin
    reverting = hurst_exponent <= config.mean_reverting_hurst and 0.5 - hurst_exponent > margin
    calm = volatility_clustering <= config.low_clustering
    stressed = volatility_clustering >= config.high_clustering
    no_supply = vsa_score >= config.no_supply_vsa

    s = _unit(sentiment_mean, 0.5)
    h = _unit(hurst_exponent - 0.5, 0.25)
    n = min(1.0, sentiment_count / 5.0)
    calm_score = min(1.0, max(0.0, 2.0 - volatility_clustering))
    stress_score = min(1.0, max(0.0, volatility_clustering - 1.0))
    buy_conf = 0.15 + 0.3 * s + 0.25 * h + 0.15 * calm_score + 0.15 * n
    sell_conf = 0.15 + 0.3 * s + 0.25 * h + 0.15 * stress_score + 0.15 * n

    if contrarian and no_supply and trending and positive:
        rule, conf = "strong_buy", min(1.0, buy_conf + 0.15)
    elif positive and trending and calm:
        rule, conf = "buy", buy_conf
    elif negative and reverting and stressed:
        rule, conf = "sell", sell_conf
    else:
        rule, conf = "hold", 1.0 - s * h

    if rule != "hold" and conf < config.min_confidence:
        rule = "below_min_confidence"
    signal_type = SIGNAL_OF_RULE[RULES.index(rule)]
    size = 0.0
    if signal_type != "HOLD":
        cap = config.max_position_size
        target = cap if realized_volatility <= 0.0 else min(
            cap, config.target_volatility / realized_volatility)
        size = conf * target * _RISK_SCALE[RISK_LEVELS.index(risk)]
    return Decision(rule, signal_type, conf, risk, size, contrarian)


def _risk(hawkes: float, clustering: float, config: RuleConfig) -> str:
    if hawkes >= config.high_risk_hawkes or clustering >= config.high_clustering:
        return "HIGH"
    if hawkes < 0.5 * config.high_risk_hawkes and clustering <= config.low_clustering:
        return "LOW"
    return "MEDIUM"


@dataclass(frozen=True, slots=True)
class DecisionArrays:
    """Vectorised decisions: one entry per bar."""

    rule_code: np.ndarray
    confidence: np.ndarray
    risk_code: np.ndarray
    suggested_position_size: np.ndarray
    is_contrarian_market: np.ndarray

    @property
    def signal_type(self) -> np.ndarray:
        return np.asarray(SIGNAL_OF_RULE, dtype=object)[self.rule_code]

    @property
    def risk_level(self) -> np.ndarray:
        return np.asarray(RISK_LEVELS, dtype=object)[self.risk_code]


def regime_arrays(hurst_exponent: np.ndarray, hurst_se: np.ndarray,
                  config: RuleConfig) -> tuple[np.ndarray, np.ndarray]:
    """Trending and mean-reverting flags per bar, as :func:`decide` defines them."""
    margin = config.hurst_significance * hurst_se
    trending = (hurst_exponent >= config.trending_hurst) & (hurst_exponent - 0.5 > margin)
    reverting = (hurst_exponent <= config.mean_reverting_hurst) & (
        0.5 - hurst_exponent > margin)
    return trending, reverting


def decide_arrays(
    *,
    ready: np.ndarray,
    vsa_score: np.ndarray,
    hawkes_branching: np.ndarray,
    hurst_exponent: np.ndarray,
    hurst_se: np.ndarray,
    volatility_clustering: np.ndarray,
    realized_volatility: np.ndarray,
    trend: np.ndarray,
    sentiment_mean: np.ndarray,
    sentiment_count: np.ndarray,
    config: RuleConfig,
) -> DecisionArrays:
    """The rules of :func:`decide` over whole arrays (same expressions, same order)."""
    have_news = sentiment_count > 0
    contrarian = (have_news & (sentiment_mean * trend < 0.0)
                  & (np.abs(sentiment_mean) >= config.contrarian_sentiment))
    high = (hawkes_branching >= config.high_risk_hawkes) | (
        volatility_clustering >= config.high_clustering)
    low = (hawkes_branching < 0.5 * config.high_risk_hawkes) & (
        volatility_clustering <= config.low_clustering)
    risk_code = np.where(high, 2, np.where(low, 0, 1))

    positive = have_news & (sentiment_mean >= config.positive_sentiment)
    negative = have_news & (sentiment_mean <= config.negative_sentiment)
    trending, reverting = regime_arrays(hurst_exponent, hurst_se, config)
    calm = volatility_clustering <= config.low_clustering
    stressed = volatility_clustering >= config.high_clustering
    no_supply = vsa_score >= config.no_supply_vsa

    s = np.minimum(1.0, np.abs(sentiment_mean) / 0.5)
    h = np.minimum(1.0, np.abs(hurst_exponent - 0.5) / 0.25)
    n = np.minimum(1.0, sentiment_count / 5.0)
    calm_score = np.minimum(1.0, np.maximum(0.0, 2.0 - volatility_clustering))
    stress_score = np.minimum(1.0, np.maximum(0.0, volatility_clustering - 1.0))
    buy_conf = 0.15 + 0.3 * s + 0.25 * h + 0.15 * calm_score + 0.15 * n
    sell_conf = 0.15 + 0.3 * s + 0.25 * h + 0.15 * stress_score + 0.15 * n

    strong = contrarian & no_supply & trending & positive
    buy = ~strong & positive & trending & calm
    sell = ~strong & ~buy & negative & reverting & stressed
    rule = np.select([strong, buy, sell], [1, 2, 3], default=4)
    conf = np.select([strong, buy, sell],
                     [np.minimum(1.0, buy_conf + 0.15), buy_conf, sell_conf],
                     default=1.0 - s * h)
    rule = np.where((rule != 4) & (conf < config.min_confidence), 5, rule)
    rule = np.where(ready, rule, 0)
    conf = np.where(ready, conf, 0.0)
    risk_code = np.where(ready, risk_code, 2)

    directional = (rule == 1) | (rule == 2) | (rule == 3)
    cap = config.max_position_size
    vol = realized_volatility
    with np.errstate(divide="ignore"):
        target = np.where(vol <= 0.0, cap, np.minimum(cap, config.target_volatility / vol))
    scale = np.asarray(_RISK_SCALE)[risk_code]
    size = np.where(directional, conf * target * scale, 0.0)
    return DecisionArrays(rule.astype(np.int8), conf, risk_code.astype(np.int8), size,
                          contrarian)


def explain(rule: str, *, vsa_class: str, hurst_exponent: float, hurst_se: float,
            volatility_clustering: float, sentiment_mean: float, sentiment_count: int,
            is_contrarian_market: bool) -> tuple[str, ...]:
    """Human-readable reasons for a decision: which rule fired and on what evidence."""
    if rule == "warming_up":
        return ("warming_up: not enough bars for every feature yet",)
    facts = (f"hurst={hurst_exponent:.3f}+-{hurst_se:.3f}",
             f"vol_clustering={volatility_clustering:.3f}",
             f"sentiment={sentiment_mean:+.3f} over {sentiment_count} items",
             f"vsa={vsa_class}")
    lead = {
        "strong_buy": "strong_buy: contrarian market, VSA no supply, trending, "
                      "positive sentiment",
        "buy": "buy: positive sentiment, trending, low volatility clustering",
        "sell": "sell: negative sentiment, mean reverting, high volatility clustering",
        "hold": "hold: no rule's conditions all met",
        "below_min_confidence": "hold: a rule fired below min_confidence",
    }[rule]
    extra = ("contrarian_market",) if is_contrarian_market else ()
    return (lead, *facts, *extra)
