import math

import pytest

from hf_slm.training import lr_at, lr_lambda


def test_warmup_then_half_cosine():
    n, w, peak, low = 1000, 100, 5e-4, 5e-5
    assert lr_at(0, n, w, peak, low) == 0.0  # the release's warm-up: lr * s / W, the first step at 0
    assert lr_at(1, n, w, peak, low) == pytest.approx(peak / w)
    assert lr_at(w - 1, n, w, peak, low) == pytest.approx(peak * (w - 1) / w)
    assert lr_at(w, n, w, peak, low) == pytest.approx(peak)  # the peak, then the cosine
    mid = w + (n - 1 - w) / 2
    assert lr_at(int(mid), n, w, peak, low) == pytest.approx((peak + low) / 2, rel=1e-2)
    assert lr_at(n - 1, n, w, peak, low) == pytest.approx(low)  # the run ends at min_lr
    assert lr_at(n + 10, n, w, peak, low) == pytest.approx(low)
    values = [lr_at(s, n, w, peak, low) for s in range(n)]
    assert all(a <= b for a, b in zip(values[:w], values[1:w], strict=False))
    assert all(a >= b for a, b in zip(values[w:], values[w + 1 :], strict=False))
    assert lr_lambda(n, w, peak, low)(w) == pytest.approx(1.0)
    assert math.isfinite(lr_at(0, 1, 1, peak, low)) and lr_at(0, 10, 0, peak, low) == pytest.approx(peak)
