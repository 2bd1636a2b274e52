"""Data sets bundled with jaxmix (no network access)."""

from __future__ import annotations

import csv
from importlib import resources

import numpy as np

__all__ = ["load_faithful"]


def load_faithful(*, return_names: bool = False):
    """Old Faithful geyser eruptions: 272 rows, columns `eruptions` and `waiting` (minutes).

    R's `datasets::faithful` (Azzalini and Bowman 1990), public domain. The
    two-cluster data of Bishop's PRML figures and of the lecture.

    Args:
      return_names: also return the column names.

    Returns:
      A (272, 2) float64 numpy array (and the tuple of column names).

    Example:
      >>> from jaxmix.datasets import load_faithful
      >>> load_faithful().shape
      (272, 2)
    """
    with resources.files(__package__).joinpath("faithful.csv").open("r", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    names = tuple(rows[0])
    data = np.array([[float(v) for v in r] for r in rows[1:]], dtype=np.float64)
    data.setflags(write=False)
    return (data, names) if return_names else data
