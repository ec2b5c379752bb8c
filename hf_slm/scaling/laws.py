"""Parametric scaling laws as scikit-learn style estimators.

- :class:`ChinchillaLaw` (eq.4): ``L = E + A / N^alpha + B / D^beta``, Huber loss on log-loss residuals
  with the log-sum-exp parameterisation, batched L-BFGS from every point of a grid, best optimum kept.
- :class:`DataConstrainedLaw` (eq.7/8, Muennighoff et al. 2023): effective parameters ``N'`` and data
  ``D'`` with decay constants ``R*_N`` and ``R*_D``, fitted with the eq.4 constants held fixed.

Downstream laws (power law, saturating forms) live in :mod:`hf_slm.scaling.downstream`.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import numpy as np
from sklearn.base import BaseEstimator

from hf_slm.scaling.allocation import n_opt_for_tokens
from hf_slm.scaling.fitting import MultiStartResult, ParamMap, batched_lbfgs, multistart_minimize
from hf_slm.scaling.objectives import (
    CHINCHILLA_THETA,
    DATA_CONSTRAINED_THETA,
    DataConstrainedInputs,
    HuberLogObjective,
    chinchilla_log_predict,
    data_constrained_log_predict,
)

CHINCHILLA_PARAMS = ("E", "A", "B", "alpha", "beta")
DATA_CONSTRAINED_PARAMS = (*CHINCHILLA_PARAMS, "R_N", "R_D")
#: Hoffmann et al. (2022) published constants (rounded), for comparisons
HOFFMANN_2022 = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
#: Muennighoff et al. (2023) constants (SPEC.md, Table 4, text)
MUENNIGHOFF_2023 = {"E": 1.8691, "A": 520.82, "B": 1487.72, "alpha": 0.3526596, "beta": 0.3526596,
                    "R_N": 5.309743, "R_D": 15.387756}
#: Cuervo & Marxer (2024) Table 4, speech (HuBERT units)
SPEECH_2024 = {"E": 1.73, "A": 13.9, "B": 39.8, "alpha": 0.25, "beta": 0.24, "R_N": 31.0, "R_D": 25.0}
#: Cuervo & Marxer (2024) Table 4, speech with unigram compression
SPEECH_UNIGRAM_2024 = {"E": 1.42, "A": 3.85, "B": 8.90, "alpha": 0.15, "beta": 0.16}

_LOG_PARAMS = {"E": "e", "A": "a", "B": "b", "R_N": "log_R_N", "R_D": "log_R_D"}


def to_internal(params: Mapping[str, float]) -> dict[str, float]:
    """Public constants (E, A, B, alpha, beta, R_N, R_D) to internal ones (logs of the scale constants)."""
    out = {}
    for name, value in params.items():
        if name in _LOG_PARAMS:
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
            out[_LOG_PARAMS[name]] = float(np.log(value))
        else:
            out[name] = float(value)
    return out


def to_public(internal: Mapping[str, float]) -> dict[str, float]:
    """Inverse of :func:`to_internal`."""
    inverse = {v: k for k, v in _LOG_PARAMS.items()}
    return {inverse.get(k, k): float(np.exp(v) if k in inverse else v) for k, v in internal.items()}


def chinchilla_loss(N, D, E: float, A: float, B: float, alpha: float, beta: float, **_) -> np.ndarray:
    """eq.4: ``E + A / N^alpha + B / D^beta``."""
    N, D = np.asarray(N, dtype=float), np.asarray(D, dtype=float)
    with np.errstate(over="ignore"):
        return E + A / N**alpha + B / D**beta


def effective_count(U, R, R_star: float) -> np.ndarray:
    """eq.7/8: ``U + U R* (1 - exp(-R / R*))`` (effective data or parameters)."""
    U, R = np.asarray(U, dtype=float), np.asarray(R, dtype=float)
    return U + U * R_star * (1.0 - np.exp(-R / R_star))


def data_constrained_inputs(N, D, U, base: Mapping[str, float]) -> DataConstrainedInputs:
    """U_N = min(N, N_opt(U_D)) by eq.6, R_N = N/U_N - 1 and R_D = D/U_D - 1, both clipped at 0."""
    N, D = np.asarray(N, dtype=float), np.asarray(D, dtype=float)
    U = np.where(np.isfinite(np.asarray(U, dtype=float)), U, D) if U is not None else D
    u_d = np.minimum(np.asarray(U, dtype=float), D)
    u_n = np.minimum(N, n_opt_for_tokens(u_d, base))
    th = to_internal({k: base[k] for k in CHINCHILLA_PARAMS})
    return DataConstrainedInputs(e=th["e"], a=th["a"], b=th["b"], alpha=th["alpha"], beta=th["beta"],
                                 u_n=u_n, u_d=u_d, r_n=np.maximum(N / u_n - 1.0, 0.0),
                                 r_d=np.maximum(D / u_d - 1.0, 0.0))


def data_constrained_loss(N, D, U, E: float, A: float, B: float, alpha: float, beta: float,
                          R_N: float, R_D: float, **_) -> np.ndarray:
    """eq.7/8: eq.4 evaluated at the effective parameters N' and effective data D'."""
    base = {"E": E, "A": A, "B": B, "alpha": alpha, "beta": beta}
    x = data_constrained_inputs(N, D, U, base)
    return chinchilla_loss(effective_count(x.u_n, x.r_n, R_N), effective_count(x.u_d, x.r_d, R_D), **base)


def besiroglu_grid() -> dict[str, np.ndarray]:
    """The 4,500-start grid of Besiroglu et al. (2024), in internal units."""
    return {"alpha": np.arange(0, 2.01, 0.5), "beta": np.arange(0, 2.01, 0.5),
            "e": np.arange(-1, 1.01, 0.5), "a": np.arange(0, 26, 5.0), "b": np.arange(0, 26, 5.0)}


def grid_rows(grid: Mapping[str, np.ndarray], names: tuple[str, ...]) -> np.ndarray:
    """Cartesian product of a grid given per internal parameter, columns in ``names`` order."""
    return np.array(list(itertools.product(*(np.atleast_1d(grid[n]) for n in names))), dtype=float)


def _columns(first, rest: tuple, names: tuple[str, ...]) -> list[np.ndarray]:
    """Arrays from either a DataFrame (columns ``names``) or positional arrays."""
    if hasattr(first, "columns"):
        return [np.asarray(first[n], dtype=float) if n in first.columns else None for n in names]
    return [None if a is None else np.asarray(a, dtype=float) for a in (first, *rest)]


def _check_positive(**arrays: np.ndarray) -> None:
    """ValueError naming the first array (and row) that is empty, non-finite or not positive."""
    for name, values in arrays.items():
        if len(values) == 0:
            raise ValueError(f"no points to fit: {name} is empty")
        bad = np.flatnonzero(~(np.isfinite(values) & (values > 0)))
        if bad.size:
            raise ValueError(f"{name} must be finite and positive: {bad.size} bad value(s), first at row {bad[0]} "
                             f"({values[bad[0]]}); drop those rows before fitting")


class _HuberLaw(BaseEstimator):
    """Shared machinery: fixed/tied parameters, starts, multi-start fit, batched weighted refits."""

    _theta_names: tuple[str, ...] = ()
    _public_names: tuple[str, ...] = ()

    def _param_map(self) -> ParamMap:
        unknown = sorted(set(self.fixed or {}) - set(self.param_names))
        if unknown:
            raise ValueError(f"unknown parameter(s) {unknown} for {type(self).__name__}; "
                             f"expected among {self.param_names}")
        fixed = to_internal({k: v for k, v in (self.fixed or {}).items() if k in self._fit_names()})
        ties = (("beta", "alpha"),) if getattr(self, "tie_exponents", False) else ()
        return ParamMap(self._theta_names, fixed, ties)

    def _fit_names(self) -> tuple[str, ...]:
        return self._public_names

    def _starts(self, pmap: ParamMap) -> np.ndarray:
        if self.init is not None:
            init = to_internal(self.init) if isinstance(self.init, Mapping) else None
            full = (np.array([init.get(n, 0.0) for n in self._theta_names]) if init is not None
                    else np.asarray(self.init, dtype=float))
            return pmap.free(np.atleast_2d(full))
        grid = self._default_grid() if self.grid is None else self.grid
        if not isinstance(grid, Mapping):
            return pmap.free(np.atleast_2d(np.asarray(grid, dtype=float)))
        free_grid = {n: grid[n] for n in pmap.free_names}
        return grid_rows(free_grid, pmap.free_names)

    def _check_fitted(self) -> None:
        if not hasattr(self, "params_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted yet; call fit() first")

    def _run_fit(self, objective: HuberLogObjective, n_points: int) -> MultiStartResult:
        pmap = self._param_map()
        self.param_map_ = pmap
        n_free = len(pmap.free_names)
        if n_points < n_free + 1:
            raise ValueError(f"{type(self).__name__} has {n_free} free constants ({', '.join(pmap.free_names)}): "
                             f"a fit needs at least {n_free + 1} points, got {n_points}")
        if not pmap.free_names:
            f, _ = objective(pmap.full(np.zeros((1, 0))), grad=False)
            return MultiStartResult(x=np.zeros(0), fun=float(f[0]), starts_x=np.zeros((1, 0)),
                                    starts_fun=f, polished=False, n_starts=0)
        return multistart_minimize(pmap.wrap(objective), self._starts(pmap), polish=self.polish,
                                   max_iter=self.max_iter)

    def _store(self, result: MultiStartResult) -> None:
        theta = self.param_map_.full(result.x[None, :])[0]
        self.theta_ = dict(zip(self._theta_names, theta.tolist(), strict=True))
        self.objective_ = result.fun
        self.n_starts_ = result.n_starts
        self.starts_objective_ = result.starts_fun

    def refit_weighted(self, weights: np.ndarray, polish: bool = False) -> np.ndarray:
        """Refit once per row of ``weights`` (shape ``(K, n)``, e.g. bootstrap counts), batched, starting
        from the fitted optimum. Returns the public parameters, shape ``(K, len(param_names))``."""
        self._check_fitted()
        weights = np.atleast_2d(np.asarray(weights, dtype=float))
        objective = self._objective(weights)
        pmap = self.param_map_
        fun = pmap.wrap(objective)
        start = pmap.free(np.array([[self.theta_[n] for n in self._theta_names]]))
        x0 = np.repeat(start, len(weights), axis=0)
        if pmap.free_names:
            res = batched_lbfgs(fun, x0, max_iter=self.max_iter)
            x = res.x
            if polish:
                from hf_slm.scaling.fitting import nelder_mead_polish

                for i in range(len(x)):
                    row = np.array([i])
                    x[i] = nelder_mead_polish(lambda v, r=row: float(fun(v[None], r, grad=False)[0][0]),
                                              x[i])[0]
        else:
            x = x0
        full = pmap.full(x)
        out = [to_public(dict(zip(self._theta_names, row, strict=True))) for row in full]
        return np.array([[self._public_value(p, n) for n in self.param_names] for p in out])

    def _public_value(self, public: Mapping[str, float], name: str) -> float:
        return float(public.get(name, self.params_[name]))


class ChinchillaLaw(_HuberLaw):
    """eq.4, ``L = E + A / N^alpha + B / D^beta``, fitted as Hoffmann et al. / Besiroglu et al. do.

    Parameters
    ----------
    delta: Huber delta on log-loss residuals (0.03 as in the paper; 1e-3 as in Chinchilla).
    grid: starting grid, a mapping internal name -> values (names ``e, a, b, alpha, beta`` where
        ``e = log E`` etc.) or an array of rows; ``None`` is the 4,500-start grid of Besiroglu et al.
    fixed: public constants held fixed, e.g. ``{"alpha": 0.35}``.
    tie_exponents: fit a single exponent ``alpha = beta`` (Muennighoff et al.'s stage 1).
    reduction: ``"sum"`` (Besiroglu et al.) or ``"mean"`` (Hoffmann et al.) of the Huber losses.
    polish: Nelder-Mead polish of the best L-BFGS optima (see :mod:`hf_slm.scaling.fitting`).
    init: a single start (public constants) instead of the grid.
    """

    _theta_names = CHINCHILLA_THETA
    _public_names = CHINCHILLA_PARAMS
    param_names = CHINCHILLA_PARAMS

    def __init__(self, delta: float = 0.03, grid=None, fixed: Mapping[str, float] | None = None,
                 tie_exponents: bool = False, reduction: str = "sum", polish: bool = True,
                 init: Mapping[str, float] | None = None, max_iter: int = 500) -> None:
        self.delta = delta
        self.grid = grid
        self.fixed = fixed
        self.tie_exponents = tie_exponents
        self.reduction = reduction
        self.polish = polish
        self.init = init
        self.max_iter = max_iter

    def _default_grid(self) -> dict[str, np.ndarray]:
        return besiroglu_grid()

    def _objective(self, weights: np.ndarray | None) -> HuberLogObjective:
        log_n, log_d, log_y = self._data

        def predict(theta: np.ndarray, grad: bool):
            return chinchilla_log_predict(theta, log_n, log_d, grad)

        return HuberLogObjective(predict, log_y, self.delta, weights, self.reduction)

    def fit(self, N, D=None, loss=None, sample_weight=None) -> ChinchillaLaw:
        """Fit on arrays ``N``, ``D``, ``loss`` (or a DataFrame with those columns as first argument)."""
        N, D, loss = _columns(N, (D, loss), ("N", "D", "loss"))
        if N is None or D is None or loss is None:
            raise ValueError("ChinchillaLaw.fit needs N, D and loss")
        _check_positive(N=N, D=D, loss=loss)
        self._data = (np.log(N), np.log(D), np.log(loss))
        self._store(self._run_fit(self._objective(sample_weight), len(N)))
        self.params_ = to_public(self.theta_)
        self.n_points_ = len(N)
        return self

    def predict(self, N, D) -> np.ndarray:
        """Predicted loss at ``(N, D)``."""
        self._check_fitted()
        return chinchilla_loss(N, D, **self.params_)


class DataConstrainedLaw(_HuberLaw):
    """eq.7/8 (Muennighoff et al. 2023) with decay constants ``R_N`` (R*_N) and ``R_D`` (R*_D).

    The eq.4 constants come from ``base`` (a mapping of E, A, B, alpha, beta, or a fitted
    :class:`ChinchillaLaw`), from ``fixed``, or, when neither gives all five, from a :class:`ChinchillaLaw`
    fitted (same ``delta``) on the single-epoch rows (``D <= U``). ``R_N`` and ``R_D`` are then fitted on all
    the rows given, with the base held fixed, from a log-spaced grid of starts and a Nelder-Mead polish.
    """

    _theta_names = DATA_CONSTRAINED_THETA
    _public_names = ("R_N", "R_D")
    param_names = DATA_CONSTRAINED_PARAMS

    def __init__(self, delta: float = 0.03, base=None, grid=None, fixed: Mapping[str, float] | None = None,
                 reduction: str = "sum", polish: bool = True, init: Mapping[str, float] | None = None,
                 max_iter: int = 500, base_grid=None) -> None:
        self.delta = delta
        self.base = base
        self.grid = grid
        self.fixed = fixed
        self.reduction = reduction
        self.polish = polish
        self.init = init
        self.max_iter = max_iter
        self.base_grid = base_grid

    def _default_grid(self) -> dict[str, np.ndarray]:
        values = np.log([0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0])
        return {"log_R_N": values, "log_R_D": values}

    def _resolve_base(self, N, D, U, loss, sample_weight) -> dict[str, float]:
        if self.base is not None:
            base = self.base.params_ if hasattr(self.base, "params_") else self.base
            return {k: float(base[k]) for k in CHINCHILLA_PARAMS}
        fixed = {k: v for k, v in (self.fixed or {}).items() if k in CHINCHILLA_PARAMS}
        if len(fixed) == len(CHINCHILLA_PARAMS):
            return {k: float(fixed[k]) for k in CHINCHILLA_PARAMS}
        single = D <= U * (1 + 1e-9)
        if single.sum() < 2:
            raise ValueError("DataConstrainedLaw needs base constants or single-epoch runs (D <= U) to fit them")
        w = None if sample_weight is None else np.asarray(sample_weight)[single]
        law = ChinchillaLaw(delta=self.delta, fixed=fixed or None, reduction=self.reduction,
                            grid=self.base_grid).fit(N[single], D[single], loss[single], sample_weight=w)
        self.base_law_ = law
        return dict(law.params_)

    def _objective(self, weights: np.ndarray | None) -> HuberLogObjective:
        inputs, log_y = self._data

        def predict(theta: np.ndarray, grad: bool):
            return data_constrained_log_predict(theta, inputs, grad)

        return HuberLogObjective(predict, log_y, self.delta, weights, self.reduction)

    def fit(self, N, D=None, U=None, loss=None, sample_weight=None) -> DataConstrainedLaw:
        """Fit on arrays ``N``, ``D``, ``U`` (unique tokens), ``loss`` (or a DataFrame first argument)."""
        N, D, U, loss = _columns(N, (D, U, loss), ("N", "D", "U", "loss"))
        if N is None or D is None or loss is None:
            raise ValueError("DataConstrainedLaw.fit needs N, D, U and loss")
        _check_positive(N=N, D=D, loss=loss)
        U = D.copy() if U is None else np.where(np.isfinite(U), U, D)
        base = self._resolve_base(N, D, U, loss, sample_weight)
        self.base_params_ = base
        self._data = (data_constrained_inputs(N, D, U, base), np.log(loss))
        self._store(self._run_fit(self._objective(sample_weight), len(N)))
        self.params_ = {**base, **to_public(self.theta_)}
        self.n_points_ = len(N)
        return self

    def predict(self, N, D, U) -> np.ndarray:
        """Predicted loss for ``N`` parameters trained on ``D`` tokens drawn from ``U`` unique ones."""
        self._check_fitted()
        return data_constrained_loss(N, D, U, **self.params_)
