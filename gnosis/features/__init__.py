"""Technical features of a bar series: VSA, Hawkes branching ratio, Hurst exponent,
volatility clustering, realised volatility and trend.

Two forms of the same definitions: :class:`TickerFeatures` updates one ticker's state
bar by bar (the stream) and :func:`compute_features` computes a whole series at once
(replay). Row ``i`` of the latter equals the snapshot the former returns after bar
``i``. The Hurst estimator is also public on its own: :func:`hurst_exponent` (and
:func:`hurst_with_se`, with its standard error).
"""

from gnosis.features.batch import FeatureFrame, compute_features
from gnosis.features.hurst import hurst_exponent, hurst_with_se
from gnosis.features.state import FeatureSnapshot, SavedFeatures, TickerFeatures, ticker_phase
from gnosis.features.vsa import VSA_CLASSES

__all__ = [
    "VSA_CLASSES",
    "FeatureFrame",
    "FeatureSnapshot",
    "SavedFeatures",
    "TickerFeatures",
    "compute_features",
    "hurst_exponent",
    "hurst_with_se",
    "ticker_phase",
]
