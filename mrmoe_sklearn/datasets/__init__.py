"""Datasets: a synthetic generator and a loader of real ICU data.

* :func:`make_multirate_classification` generates labelled multi-rate,
  irregularly sampled series (built in, no download).
"""

from ._synthetic import make_multirate_classification

__all__ = ["make_multirate_classification"]
