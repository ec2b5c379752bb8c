"""Downstream laws: envelopes, power laws, Table 3's relative efficiencies, saturating forms."""

from __future__ import annotations

import numpy as np
import pytest

from hf_slm.scaling.bootstrap import bootstrap_law
from hf_slm.scaling.downstream import (
    TABLE3_GAMMAS,
    LogisticLaw,
    PowerLaw,
    SaturatingPowerLaw,
    compare_forms,
    envelope,
    loss_metric_fit,
    relative_efficiency,
)


def test_envelope_min_and_max():
    C = np.array([1, 2, 3, 4, 5, 6], dtype=float)
    Q = np.array([5, 6, 4, 4.5, 3, 3.5])
    low = envelope(C, Q, mode="min")
    assert low["index"].tolist() == [0, 2, 4]
    high = envelope(C, Q, mode="max")
    assert high["Q"].tolist() == [5, 6]
    with pytest.raises(ValueError):
        envelope(C, Q, mode="best")


def test_envelope_of_learning_curves_follows_the_frontier():
    # curves L = E + A/N^a + B/D^b; the envelope at each compute is the best curve there
    C_all, L_all = [], []
    for N in (1e6, 1e7, 1e8):
        D = np.geomspace(1e6, 1e10, 30)
        C_all.append(6 * N * D)
        L_all.append(1.7 + 14 / N**0.25 + 40 / D**0.24)
    C, L = np.concatenate(C_all), np.concatenate(L_all)
    env = envelope(C, L, mode="min")
    assert np.all(np.diff(env["Q"]) < 0) and np.all(np.diff(env["C"]) > 0)
    for c, q in zip(env["C"], env["Q"], strict=True):
        assert q <= L[C <= c].min() + 1e-12


@pytest.mark.parametrize("metric", ["sblimp", "tsc", "ssc"])
def test_power_law_recovers_table3_gammas(metric):
    rng = np.random.default_rng(0)
    C = np.geomspace(1e17, 1e21, 25)
    gammas = {}
    for family in ("text", "speech"):
        gamma = TABLE3_GAMMAS[family][metric]
        Q = 0.02 * C**gamma * np.exp(rng.normal(0, 0.002, C.size))
        gammas[family] = PowerLaw().fit(C, Q).params_["gamma"]
        assert gammas[family] == pytest.approx(gamma, abs=0.001)  # 4.4e-4 reached
    expected = {"sblimp": 3.14, "tsc": 1.56, "ssc": 2.7}[metric]
    ratio = relative_efficiency(gammas["text"], gammas["speech"])["ratio"]
    assert ratio == pytest.approx(expected, rel=0.03)  # 2 % reached


def test_table3_ratios_exact():
    g = TABLE3_GAMMAS
    ratios = {m: relative_efficiency(g["text"][m], g["speech"][m]) for m in ("sblimp", "tsc", "ssc")}
    assert round(ratios["sblimp"]["ratio"], 2) == 3.14
    assert round(ratios["tsc"]["ratio"], 2) == 1.56
    assert round(ratios["ssc"]["ratio"], 1) == 2.7
    eff = ratios["sblimp"]
    assert eff["compute_multiplier"] == pytest.approx(10**eff["ratio"])
    assert "10^3.14" in eff["statement"]
    # the meaning: the same multiplicative gain in Q needs 10x compute for text, 10^ratio x for speech
    q_text_gain = 10 ** g["text"]["sblimp"]
    q_speech_gain = eff["compute_multiplier"] ** g["speech"]["sblimp"]
    assert q_speech_gain == pytest.approx(q_text_gain)


def test_power_law_inverse_and_bootstrap():
    C = np.geomspace(1e15, 1e19, 12)
    Q = 0.1 * C**0.05 * np.exp(np.random.default_rng(1).normal(0, 0.01, C.size))
    law = PowerLaw().fit(C, Q)
    assert law.inverse(law.predict(3e17)) == pytest.approx(3e17, rel=1e-9)
    boot = bootstrap_law(law, C, Q, n_resamples=30, seed=0)
    low, high = boot.interval("gamma")
    assert law.params_["gamma"] == pytest.approx(0.05, abs=0.001)
    assert low < law.params_["gamma"] < high and high - low < 0.004  # 0.002 reached


def test_saturating_forms_beat_power_law_on_saturating_data():
    rng = np.random.default_rng(2)
    C = np.geomspace(1e15, 1e22, 30)
    Q = 0.8 - 0.3 * (C / 1e15) ** -0.3 + rng.normal(0, 0.003, C.size)
    table = compare_forms(C, Q, holdout=0.3).set_index("form")
    assert set(table.index) == {"power", "saturating_power", "logistic"}
    assert table.loc["saturating_power", "rmse_holdout"] < table.loc["power", "rmse_holdout"] / 2
    sat = SaturatingPowerLaw().fit(C, Q)
    assert sat.params_["Q_sat"] == pytest.approx(0.8, abs=0.003)  # 0.799 reached
    assert sat.params_["gamma"] == pytest.approx(0.3, abs=0.015)  # 0.305 reached


def test_logistic_law_recovers_ceiling():
    C = np.geomspace(1e14, 1e22, 40)
    Q = 0.5 + 0.3 / (1 + np.exp(-1.5 * (np.log10(C) - 18)))
    law = LogisticLaw(floor=0.5).fit(C, Q)
    # noise-free: exact recovery
    assert law.params_["ceiling"] == pytest.approx(0.8, abs=1e-6)
    assert law.params_["slope"] == pytest.approx(1.5, abs=1e-6)
    assert law.params_["midpoint"] == pytest.approx(18, abs=1e-6)
    np.testing.assert_allclose(law.predict(C), Q, atol=1e-9)


def test_loss_metric_fit():
    loss = np.linspace(2, 4, 20)
    metric = 0.9 - 0.1 * loss + np.random.default_rng(0).normal(0, 0.005, 20)
    fit = loss_metric_fit(loss, metric)
    assert fit["r"] < -0.99  # -0.998 reached
    assert fit["slope"] == pytest.approx(-0.1, abs=0.003)  # -0.1013 reached
    assert np.isnan(loss_metric_fit([1, 2], [0.5, 0.6])["r"])
