import numpy as np

from digitrec.training.banks import cache_dir, cached

calls = []


def squares(values: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    calls.append(n)
    return values[:n] ** 2, np.arange(n)


def test_a_bank_is_built_once_then_read_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    calls.clear()
    values = np.arange(10, dtype=np.float32)
    first = cached(squares, values, 4)
    again = cached(squares, values, 4)
    assert calls == [4]  # the second came from the cache
    for a, b in zip(first, again, strict=True):
        assert np.array_equal(a, b) and a.dtype == b.dtype
    assert len(list(cache_dir().glob("squares-*.npz"))) == 1
    # other arguments (an array by content too) are another bank
    cached(squares, values, 5)
    cached(squares, values + 1, 4)
    assert calls == [4, 5, 4]


def test_an_unwritable_cache_still_builds(tmp_path, monkeypatch):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    calls.clear()
    x, y = cached(squares, np.ones(3), 2)
    assert calls == [2] and x.tolist() == [1.0, 1.0]
