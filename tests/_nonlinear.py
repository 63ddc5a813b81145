"""Paired rows related by a smooth non-linearity, for the residual adapters' tests."""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import numpy as np


def nonlinear_pairs(seed=0, n=1500, dtype=np.float64):
    """A new model's rows and an old model's, related by a smooth non-linearity."""
    rng = np.random.default_rng(seed)
    new = rng.normal(size=(n, 8)) + 1.0
    mixing = rng.normal(size=(8, 6))
    old = np.tanh(new @ mixing / 2) + 0.05 * rng.normal(size=(n, 6)) + 3.0
    return old.astype(dtype), new.astype(dtype)


def mean_squared_error(predicted, target):
    """Mean over rows of the squared distance between prediction and target."""
    return float(np.mean(np.sum((predicted - target) ** 2, axis=1)))
