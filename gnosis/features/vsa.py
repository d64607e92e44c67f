"""Volume Spread Analysis (VSA): what a bar's volume, spread and close say about supply.

Each bar is measured against the ``vsa_window`` bars before it:

* ``spread = high - low`` and ``rel_spread = spread / mean spread`` of those bars;
* ``rel_volume = volume / mean volume`` of those bars (1.0 when that mean is 0);
* ``location = (close - low) / spread`` in ``[0, 1]`` (0.5 for a bar without range);
* down / up bar: close below / above the previous close.

Classes, first match wins (thresholds are the module constants):

1. ``stopping_volume`` (+): ultra-high volume (``rel_volume >= ULTRA_VOLUME``) on a
   down bar or a new low under the previous bar's, closing in the upper half: buyers
   absorb the selling.
2. ``climactic`` (-): ultra-high volume on a wide spread (``rel_spread >= WIDE_SPREAD``)
   closing in the lower half: climactic selling pressure.
3. ``upthrust`` (-): a high above the highest high of the window, closing in the
   lowest third on at least average volume: the push up was sold.
4. ``test`` (+): low volume (``rel_volume < LOW_VOLUME``), a low under the previous
   bar's, closing in the upper third: a probe down that found no sellers.
5. ``no_supply`` (+) / ``no_demand`` (-): a narrow (``rel_spread <= NARROW_SPREAD``)
   down / up bar on low volume, below the volume of each of the two previous bars.
6. ``neutral`` otherwise.

``vsa_score`` in ``[-1, 1]``: for a classified bar, the class weight (stopping volume
and climactic +-1.0, test and upthrust +-0.8, no supply and no demand +-0.6) times
``0.6 + 0.4 * strength``, where strength in ``[0, 1]`` grows with how far volume is
beyond its threshold (for upthrusts: how near the low the bar closed). A neutral bar
scores ``0.25 * (2 * location - 1) * min(rel_volume, 1)``: a mild lean towards the side
that closed the bar, never enough to pass for a signal class.

:func:`classify` is the per-bar form, :func:`classify_arrays` the vectorised one; both
evaluate the same float expressions.
"""

from __future__ import annotations

import numpy as np

VSA_CLASSES: tuple[str, ...] = ("neutral", "no_supply", "no_demand", "climactic",
                                "stopping_volume", "upthrust", "test")
"""Class names; ``vsa_class`` codes index into this tuple."""
NEUTRAL, NO_SUPPLY, NO_DEMAND, CLIMACTIC, STOPPING_VOLUME, UPTHRUST, TEST = range(7)
WEIGHTS: tuple[float, ...] = (0.0, 0.6, -0.6, -1.0, 1.0, -0.8, 0.8)

ULTRA_VOLUME = 2.0
LOW_VOLUME = 0.75
WIDE_SPREAD = 1.5
NARROW_SPREAD = 0.75
_THIRD = 1.0 / 3.0


def classify(high: float, low: float, close: float, volume: float, prev_close: float,
             prev_low: float, prev_volume: float, prev2_volume: float, mean_volume: float,
             mean_spread: float, max_high: float) -> tuple[int, float]:
    """Class code and score of one bar given the statistics of the bars before it.

    ``mean_volume``, ``mean_spread`` and ``max_high`` are over the previous
    ``vsa_window`` bars.
    """
    spread = high - low
    location = (close - low) / spread if spread > 0.0 else 0.5
    rel_volume = volume / mean_volume if mean_volume > 0.0 else 1.0
    rel_spread = spread / mean_spread if mean_spread > 0.0 else 1.0
    code = NEUTRAL
    strength = 0.0
    if rel_volume >= ULTRA_VOLUME and location >= 0.5 and (close < prev_close
                                                           or low < prev_low):
        code = STOPPING_VOLUME
    elif rel_volume >= ULTRA_VOLUME and location < 0.5 and rel_spread >= WIDE_SPREAD:
        code = CLIMACTIC
    elif high > max_high and location <= _THIRD and rel_volume >= 1.0:
        code = UPTHRUST
        strength = 1.0 - 3.0 * location
    elif rel_volume < LOW_VOLUME and low < prev_low and location >= 2.0 * _THIRD:
        code = TEST
    elif (rel_volume < LOW_VOLUME and rel_spread <= NARROW_SPREAD and volume < prev_volume
          and volume < prev2_volume and close != prev_close):
        code = NO_SUPPLY if close < prev_close else NO_DEMAND
    if code == NEUTRAL:
        return code, 0.25 * (2.0 * location - 1.0) * min(rel_volume, 1.0)
    if code in (STOPPING_VOLUME, CLIMACTIC):
        strength = min((rel_volume - ULTRA_VOLUME) / ULTRA_VOLUME, 1.0)
    elif code != UPTHRUST:
        strength = 1.0 - rel_volume / LOW_VOLUME
    return code, WEIGHTS[code] * (0.6 + 0.4 * strength)


def classify_arrays(high: np.ndarray, low: np.ndarray, close: np.ndarray,
                    volume: np.ndarray, prev_close: np.ndarray, prev_low: np.ndarray,
                    prev_volume: np.ndarray, prev2_volume: np.ndarray,
                    mean_volume: np.ndarray, mean_spread: np.ndarray,
                    max_high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised :func:`classify`: int8 codes and float scores."""
    spread = high - low
    location = np.where(spread > 0.0, close - low, 0.5) / np.where(spread > 0.0, spread, 1.0)
    rel_volume = np.where(mean_volume > 0.0, volume, 1.0) / np.where(mean_volume > 0.0,
                                                                       mean_volume, 1.0)
    rel_spread = np.where(mean_spread > 0.0, spread, 1.0) / np.where(mean_spread > 0.0,
                                                                       mean_spread, 1.0)
    ultra = rel_volume >= ULTRA_VOLUME
    low_volume = rel_volume < LOW_VOLUME
    conditions = [
        ultra & (location >= 0.5) & ((close < prev_close) | (low < prev_low)),
        ultra & (location < 0.5) & (rel_spread >= WIDE_SPREAD),
        (high > max_high) & (location <= _THIRD) & (rel_volume >= 1.0),
        low_volume & (low < prev_low) & (location >= 2.0 * _THIRD),
        low_volume & (rel_spread <= NARROW_SPREAD) & (volume < prev_volume)
        & (volume < prev2_volume) & (close < prev_close),
        low_volume & (rel_spread <= NARROW_SPREAD) & (volume < prev_volume)
        & (volume < prev2_volume) & (close > prev_close),
    ]
    codes = np.select(conditions, [STOPPING_VOLUME, CLIMACTIC, UPTHRUST, TEST, NO_SUPPLY,
                                   NO_DEMAND], NEUTRAL).astype(np.int8)
    strength = np.select(
        [(codes == STOPPING_VOLUME) | (codes == CLIMACTIC), codes == UPTHRUST],
        [np.minimum((rel_volume - ULTRA_VOLUME) / ULTRA_VOLUME, 1.0), 1.0 - 3.0 * location],
        1.0 - rel_volume / LOW_VOLUME)
    weights = np.asarray(WEIGHTS)[codes]
    scores = np.where(codes == NEUTRAL,
                      0.25 * (2.0 * location - 1.0) * np.minimum(rel_volume, 1.0),
                      weights * (0.6 + 0.4 * strength))
    return codes, scores
