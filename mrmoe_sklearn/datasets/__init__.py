"""Datasets: a synthetic generator and a loader of real ICU data.

* :func:`make_multirate_classification` generates labelled multi-rate,
  irregularly sampled series (built in, no download).
* :func:`fetch_physionet2012` loads the PhysioNet/Computing in Cardiology
  Challenge 2012 ICU stays (in-hospital mortality), downloading PhysioNet's
  files into :func:`get_data_home` where they are missing;
  :func:`physionet2012_split` gives the train/validation/test indices of its
  five published splits.
"""

from ._physionet import fetch_physionet2012, get_data_home, physionet2012_split
from ._synthetic import make_multirate_classification

__all__ = [
    "make_multirate_classification",
    "fetch_physionet2012",
    "physionet2012_split",
    "get_data_home",
]
