"""Probe fits kept in the cache: a warm run fits nothing, and a changed input or setting is never a stale hit."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import ks_2samp as scipy_ks_2samp
from scipy.stats import rankdata as scipy_rankdata
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression

from dd.core import Cache, CorruptCacheEntry
from dd.protocol import _fits as fits
from dd.protocol import _stats as stats
from dd.protocol import principal_components


@pytest.fixture
def store(tmp_path):
    """A fresh store and an empty memory, restored afterwards to the session's."""
    saved_store, saved_memo = list(fits._STORE), dict(fits._MEMO)
    fits._MEMO.clear()
    fits.keep_fits_in(Cache(tmp_path / "cache"))
    yield fits._STORE[0]
    fits._STORE[:] = saved_store
    fits._MEMO.clear()
    fits._MEMO.update(saved_memo)


def data(n=60, d=5, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % 2)
    return y[:, None] * 0.8 + rng.normal(size=(n, d)), y


class Counting:
    """Counts the real fits behind the memo."""

    def __init__(self, monkeypatch):
        self.cv = self.transfer = 0
        real_cv, real_fit = stats.cross_validate, stats.fit_predict

        def cv(*args, **kwargs):
            self.cv += 1
            return real_cv(*args, **kwargs)

        def fit(*args, **kwargs):
            self.transfer += 1
            return real_fit(*args, **kwargs)

        monkeypatch.setattr(stats, "cross_validate", cv)
        monkeypatch.setattr(stats, "fit_predict", fit)


def test_a_second_process_reads_the_fits_from_the_store(store, monkeypatch):
    X, y = data()
    counting = Counting(monkeypatch)
    cv, p = fits.cross_validate(X, y, 1.0), fits.fit_predict(X, y, X[:7], 1.0)
    assert (counting.cv, counting.transfer) == (1, 5 + 1)  # five folds, one transfer
    fits._MEMO.clear()  # what a new process starts with
    cv2, p2 = fits.cross_validate(X, y, 1.0), fits.fit_predict(X, y, X[:7], 1.0)
    assert (counting.cv, counting.transfer) == (1, 6)
    np.testing.assert_array_equal(cv2.oof, cv.oof)
    assert (cv2.pooled_auc, cv2.fold_aucs) == (cv.pooled_auc, cv.fold_aucs)
    np.testing.assert_array_equal(p2, p)
    assert len(list(store.entries("fits"))) == 2


def test_every_input_and_setting_is_part_of_the_key(store, monkeypatch):
    X, y = data()
    counting = Counting(monkeypatch)
    fits.cross_validate(X, y, 1.0)
    variants = [lambda: fits.cross_validate(X, y, 0.1), lambda: fits.cross_validate(X, y, 1.0, random_state=7),
                lambda: fits.cross_validate(X, y, 1.0, n_splits=3), lambda: fits.cross_validate(X + 1e-9, y, 1.0),
                lambda: fits.cross_validate(X.astype(np.float32), y, 1.0),
                lambda: fits.cross_validate(X, y, 1.0, groups=np.arange(len(y)) // 6),
                lambda: fits.cross_validate(X[::-1], y[::-1], 1.0)]
    for i, variant in enumerate(variants, start=2):
        fits._MEMO.clear()
        variant()
        assert counting.cv == i
    # the same bytes in another shape are another input
    assert fits._digest(X.reshape(-1)) != fits._digest(X) != fits._digest(X.reshape(len(y) // 2, -1))


def test_a_read_out_operators_estimator_stays_in_memory(store, monkeypatch):
    X, y = data()
    counting = Counting(monkeypatch)
    fits.cross_validate(X, y, 1.0, estimator=LogisticRegression(C=0.5))
    fits.cross_validate(X, y, 1.0, estimator=LogisticRegression(C=0.5))
    assert counting.cv == 1 and not list(store.entries("fits"))
    fits.cross_validate(X, y, 1.0, estimator=LogisticRegression(C=0.25))
    assert counting.cv == 2


def test_a_failed_fit_is_not_stored(store):
    X, y = data()
    with pytest.raises(ValueError, match="NaN"):
        fits.cross_validate(np.where(np.eye(len(y), 5) > 0, np.nan, X), y, 1.0)
    assert not list(store.entries("fits"))


def test_a_corrupt_stored_fit_is_an_error(store):
    X, y = data()
    fits.cross_validate(X, y, 1.0)
    entry, = store.entries("fits")
    entry.path.write_bytes(b"not an npz")
    fits._MEMO.clear()
    with pytest.raises(CorruptCacheEntry, match="fits cache entry"):
        fits.cross_validate(X, y, 1.0)


def test_ks_matches_scipy_and_is_stored(store):
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=40), rng.normal(0.5, size=55)
    expected = scipy_ks_2samp(a, b)
    assert fits.ks_2samp(a, b) == (float(expected.statistic), float(expected.pvalue))
    fits._MEMO.clear()
    assert fits.ks_2samp(a, b) == (float(expected.statistic), float(expected.pvalue))
    assert len(list(store.entries("fits"))) == 1


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-3, 3), min_size=1, max_size=30), st.integers(1, 4))
def test_rankdata_is_scipys(values, rows):
    a = np.array(values, dtype=float)
    np.testing.assert_array_equal(stats.rankdata(a), scipy_rankdata(a))
    grid = np.stack([np.roll(a, i) for i in range(rows)])
    np.testing.assert_array_equal(stats.rankdata(grid, axis=1), scipy_rankdata(grid, axis=1))
    np.testing.assert_array_equal(stats.rankdata(grid.T, axis=0), scipy_rankdata(grid.T, axis=0))


def test_principal_components_are_sklearns_with_its_signs():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 12)) @ rng.normal(size=(12, 12))
    ours = principal_components(X, 2)
    theirs = PCA(n_components=2, svd_solver="full").fit_transform(X)
    np.testing.assert_allclose(ours, theirs, atol=1e-8)
