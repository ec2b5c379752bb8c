"""Batched multi-start L-BFGS (numpy, analytic gradients) and a derivative-free polish.

:func:`batched_lbfgs` runs one independent L-BFGS per row of ``x0`` in lock-step: every iteration does one
vectorised two-loop recursion and one vectorised backtracking (Armijo) line search over all still-active
rows, so 4,500 starts cost about as much Python overhead as one. Converged rows drop out of the batch.

With a small Huber delta the objective is piecewise almost linear (kinks at every residual that crosses
+-delta), where quasi-Newton methods stall a little short of the optimum. :func:`multistart_minimize`
therefore polishes the best distinct L-BFGS optima with Nelder-Mead, which needs no gradient and does not
care about kinks; in 2 to 5 dimensions from a good start it converges in a few hundred evaluations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

BatchedFun = Callable[..., tuple[np.ndarray, np.ndarray | None]]


@dataclass
class LBFGSResult:
    """Outcome of :func:`batched_lbfgs`, one entry per start."""

    x: np.ndarray
    fun: np.ndarray
    n_iter: np.ndarray
    converged: np.ndarray


@dataclass
class MultiStartResult:
    """Outcome of :func:`multistart_minimize`: the best point plus what every start reached."""

    x: np.ndarray
    fun: float
    starts_x: np.ndarray
    starts_fun: np.ndarray
    polished: bool
    n_starts: int


def _two_loop(g: np.ndarray, s: np.ndarray, y: np.ndarray, rho: np.ndarray, order: list[int],
              gamma: np.ndarray) -> np.ndarray:
    """L-BFGS two-loop recursion batched over rows; entries with ``rho == 0`` are no-ops."""
    q = g.copy()
    alphas = []
    for i in reversed(order):
        a_i = rho[:, i] * np.einsum("sp,sp->s", s[:, i], q)
        q -= a_i[:, None] * y[:, i]
        alphas.append(a_i)
    r = gamma[:, None] * q
    for i, a_i in zip(order, reversed(alphas), strict=True):
        b_i = rho[:, i] * np.einsum("sp,sp->s", y[:, i], r)
        r += s[:, i] * (a_i - b_i)[:, None]
    return -r


def _line_search(fun: BatchedFun, x: np.ndarray, f: np.ndarray, g: np.ndarray, d: np.ndarray,
                 rows: np.ndarray, c1: float = 1e-4, max_halvings: int = 40):
    """Backtracking Armijo search from step 1, batched; returns new x, f, g and a success mask."""
    t = np.ones(len(x))
    slope = np.einsum("sp,sp->s", g, d)
    x_new, f_new, g_new = x.copy(), f.copy(), g.copy()
    ok = np.zeros(len(x), dtype=bool)
    todo = np.arange(len(x))
    for _ in range(max_halvings):
        xt = x[todo] + t[todo, None] * d[todo]
        ft, gt = fun(xt, rows[todo])
        good = ft <= f[todo] + c1 * t[todo] * slope[todo]
        idx = todo[good]
        x_new[idx], f_new[idx], g_new[idx], ok[idx] = xt[good], ft[good], gt[good], True
        todo = todo[~good]
        if todo.size == 0:
            break
        t[todo] *= 0.5
    return x_new, f_new, g_new, ok


def batched_lbfgs(fun: BatchedFun, x0: np.ndarray, max_iter: int = 500, history: int = 10,
                  ftol: float = 1e-12, gtol: float = 1e-10) -> LBFGSResult:
    """Minimise ``fun`` from every row of ``x0`` (shape ``(S, P)``) with independent L-BFGS runs.

    ``fun(x, rows) -> (f (s,), g (s, P))`` evaluates the rows ``rows`` (indices into ``x0``) at points
    ``x`` (shape ``(s, P)``). A row stops when its relative decrease falls below ``ftol`` (as scipy's
    ``factr``), its gradient's max-norm below ``gtol``, or its line search fails.
    """
    x = np.array(x0, dtype=float, copy=True)
    n, p = x.shape
    all_rows = np.arange(n)
    f, g = fun(x, all_rows)
    s_hist, y_hist = np.zeros((n, history, p)), np.zeros((n, history, p))
    rho = np.zeros((n, history))
    gamma = 1.0 / np.maximum(1.0, np.abs(g).max(axis=1))
    n_iter = np.zeros(n, dtype=int)
    converged = np.zeros(n, dtype=bool)
    active = np.flatnonzero(np.isfinite(f))
    for k in range(max_iter):
        if active.size == 0:
            break
        order = [(k - 1 - j) % history for j in range(min(k, history))][::-1]
        xa, fa, ga = x[active], f[active], g[active]
        d = _two_loop(ga, s_hist[active], y_hist[active], rho[active], order, gamma[active])
        descent = np.einsum("sp,sp->s", ga, d) < 0
        if not descent.all():  # reset the memory of rows whose direction went uphill
            bad = active[~descent]
            rho[bad] = 0.0
            d[~descent] = -ga[~descent] / np.maximum(1.0, np.abs(ga[~descent]).max(axis=1))[:, None]
        xn, fn, gn, ok = _line_search(fun, xa, fa, ga, d, active)
        s_k, y_k = xn - xa, gn - ga
        sy = np.einsum("sp,sp->s", s_k, y_k)
        yy = np.einsum("sp,sp->s", y_k, y_k)
        store = ok & (yy > 1e-200) & (sy > 1e-12 * yy)
        slot = k % history
        s_hist[active, slot] = np.where(store[:, None], s_k, 0.0)
        y_hist[active, slot] = np.where(store[:, None], y_k, 0.0)
        rho[active, slot] = np.where(store, 1.0 / np.where(store, sy, 1.0), 0.0)
        gamma[active] = np.where(store, sy / np.where(store, yy, 1.0), gamma[active])
        x[active], f[active], g[active] = xn, fn, gn
        n_iter[active] += 1
        small_df = (fa - fn) <= ftol * np.maximum(np.maximum(np.abs(fa), np.abs(fn)), 1.0)
        small_g = np.abs(gn).max(axis=1) <= gtol
        done = ~ok | small_df | small_g
        converged[active[done & ok]] = True
        active = active[~done]
    return LBFGSResult(x=x, fun=f, n_iter=n_iter, converged=converged)


def nelder_mead_polish(fun1: Callable[[np.ndarray], float], x0: np.ndarray, max_iter: int = 4000,
                       xatol: float = 1e-7, fatol: float = 1e-13) -> tuple[np.ndarray, float]:
    """Derivative-free polish of one point with scipy's Nelder-Mead (adaptive simplex)."""
    from scipy.optimize import minimize

    x0 = np.asarray(x0, dtype=float)
    if x0.size == 0:
        return x0, float(fun1(x0))
    step = np.where(np.abs(x0) > 1e-3, 0.02 * np.abs(x0), 0.01)
    simplex = np.vstack([x0] + [x0 + np.eye(x0.size)[i] * step[i] for i in range(x0.size)])
    res = minimize(fun1, x0, method="Nelder-Mead",
                   options={"maxiter": max_iter, "xatol": xatol, "fatol": fatol,
                            "initial_simplex": simplex, "adaptive": x0.size > 2})
    return np.asarray(res.x), float(res.fun)


def _distinct_best(x: np.ndarray, f: np.ndarray, k: int, tol: float = 1e-3) -> list[int]:
    """Indices of up to ``k`` lowest-objective rows that are pairwise further apart than ``tol``."""
    chosen: list[int] = []
    for i in np.argsort(f):
        if not np.isfinite(f[i]):
            break
        if all(np.abs(x[i] - x[j]).max() > tol for j in chosen):
            chosen.append(int(i))
        if len(chosen) == k:
            break
    return chosen


def multistart_minimize(fun: BatchedFun, starts: np.ndarray, polish: bool = True, n_polish: int = 3,
                        max_iter: int = 500, ftol: float = 1e-10) -> MultiStartResult:
    """Batched L-BFGS from every start, then Nelder-Mead polish of the ``n_polish`` best distinct optima.

    The returned optimum is the lowest objective over all L-BFGS end points and all polished points.
    """
    starts = np.atleast_2d(np.asarray(starts, dtype=float))
    res = batched_lbfgs(fun, starts, max_iter=max_iter, ftol=ftol)
    if not np.isfinite(res.fun).any():
        raise RuntimeError("every start of the fit diverged (non-finite objective)")
    best = int(np.nanargmin(np.where(np.isfinite(res.fun), res.fun, np.inf)))
    x_best, f_best = res.x[best].copy(), float(res.fun[best])
    if polish:
        row0 = np.zeros(1, dtype=int)

        def fun1(v: np.ndarray) -> float:
            return float(fun(v[None, :], row0, grad=False)[0][0])

        for i in _distinct_best(res.x, res.fun, n_polish):
            xp, fp = nelder_mead_polish(fun1, res.x[i])
            if fp < f_best:
                x_best, f_best = xp, fp
    return MultiStartResult(x=x_best, fun=f_best, starts_x=res.x, starts_fun=res.fun,
                            polished=polish, n_starts=len(starts))


class ParamMap:
    """Linear map from free parameters to the full parameter vector (fixed and tied parameters).

    ``fixed`` holds values (in internal units) of parameters kept constant; ``ties`` lists pairs
    ``(follower, leader)``: the follower always equals the leader (e.g. ``("beta", "alpha")``).
    """

    def __init__(self, names: tuple[str, ...], fixed: dict[str, float] | None = None,
                 ties: tuple[tuple[str, str], ...] = ()) -> None:
        fixed = dict(fixed or {})
        unknown = set(fixed) | {n for pair in ties for n in pair}
        unknown -= set(names)
        if unknown:
            raise ValueError(f"unknown parameter(s) {sorted(unknown)}; expected among {names}")
        followers = {f: lead for f, lead in ties}
        self.names = names
        self.free_names = tuple(n for n in names if n not in fixed and n not in followers)
        self.matrix = np.zeros((len(names), len(self.free_names)))
        self.offset = np.zeros(len(names))
        for i, name in enumerate(names):
            source = followers.get(name, name)
            if source in fixed:
                self.offset[i] = fixed[source]
            else:
                self.matrix[i, self.free_names.index(source)] = 1.0

    def full(self, free: np.ndarray) -> np.ndarray:
        """Full parameter rows ``(S, P)`` from free rows ``(S, p)``."""
        return self.offset[None, :] + np.atleast_2d(free) @ self.matrix.T

    def free(self, full: np.ndarray) -> np.ndarray:
        """Free rows from full rows (least-squares inverse of :meth:`full`; exact on the image)."""
        full = np.atleast_2d(full)
        counts = self.matrix.sum(axis=0)
        return (full - self.offset[None, :]) @ self.matrix / np.maximum(counts, 1.0)

    def wrap(self, fun: BatchedFun) -> BatchedFun:
        """Objective over the free parameters from an objective over the full vector."""

        def wrapped(free: np.ndarray, rows: np.ndarray | None = None, grad: bool = True):
            f, g = fun(self.full(free), rows, grad=grad)
            return f, (None if g is None else g @ self.matrix)

        return wrapped
