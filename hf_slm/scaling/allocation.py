"""Compute-optimal allocation (eq.6) and its inverse, for the constants of eq.4.

eq.6: ``N_opt(C) = G (C/6)^a``, ``D_opt(C) = G^-1 (C/6)^b`` with ``G = (alpha A / (beta B))^(1/(alpha+beta))``,
``a = beta / (alpha + beta)``, ``b = alpha / (alpha + beta)``. On this frontier both reducible terms scale as
``(C/6)^(-alpha beta / (alpha + beta))``, so the optimal loss and its inverse have closed forms.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

Params = Mapping[str, float]


def allocation_exponents(alpha: float, beta: float) -> tuple[float, float]:
    """``(a, b)`` of eq.6: ``N_opt ~ C^a``, ``D_opt ~ C^b``."""
    return beta / (alpha + beta), alpha / (alpha + beta)


def allocation_constant(params: Params) -> float:
    """``G = (alpha A / (beta B))^(1 / (alpha + beta))``; eq.6 needs positive exponents (ValueError otherwise)."""
    a_, b_ = params["alpha"], params["beta"]
    if not (a_ > 0 and b_ > 0):
        raise ValueError(f"compute-optimal allocation needs alpha > 0 and beta > 0, got alpha={a_:.3g}, beta={b_:.3g}")
    return float((a_ * params["A"] / (b_ * params["B"])) ** (1.0 / (a_ + b_)))


def compute_optimal(C, params: Params, flops_per_token_param: float = 6.0) -> tuple[np.ndarray, np.ndarray]:
    """eq.6: ``(N_opt, D_opt)`` for compute ``C`` (FLOPs, ``C = 6 N D``)."""
    C = np.asarray(C, dtype=float)
    g = allocation_constant(params)
    a, b = allocation_exponents(params["alpha"], params["beta"])
    x = C / flops_per_token_param
    return g * x**a, x**b / g


def _frontier_coefficient(params: Params) -> tuple[float, float]:
    """``(K, p)`` with ``L_opt(C) = E + K (C/6)^-p`` on the compute-optimal frontier."""
    g = allocation_constant(params)
    alpha, beta = params["alpha"], params["beta"]
    k = params["A"] * g**-alpha + params["B"] * g**beta
    return k, alpha * beta / (alpha + beta)


def optimal_loss(C, params: Params, flops_per_token_param: float = 6.0) -> np.ndarray:
    """Loss of the compute-optimal model at compute ``C``."""
    k, p = _frontier_coefficient(params)
    return params["E"] + k * (np.asarray(C, dtype=float) / flops_per_token_param) ** -p


def compute_for_loss(target, params: Params, flops_per_token_param: float = 6.0) -> dict[str, np.ndarray]:
    """Inverse of eq.6: the least compute reaching loss ``target``, and its ``N_opt``, ``D_opt``.

    Targets at or below ``E`` are unreachable and give ``inf``.
    """
    target = np.asarray(target, dtype=float)
    k, p = _frontier_coefficient(params)
    excess = target - params["E"]
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.where(excess > 0, (excess / k) ** (-1.0 / p), np.inf)
    C = flops_per_token_param * x
    N, D = compute_optimal(C, params, flops_per_token_param)
    return {"C": C, "N": N, "D": D}


def tokens_for_loss(target, N, params: Params) -> np.ndarray:
    """Tokens ``D`` a model of ``N`` parameters needs to reach loss ``target`` under eq.4 (``inf`` if never)."""
    rest = np.asarray(target, dtype=float) - params["E"] - params["A"] / np.asarray(N, dtype=float) ** params["alpha"]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(rest > 0, (params["B"] / rest) ** (1.0 / params["beta"]), np.inf)


def n_opt_for_tokens(D, params: Params) -> np.ndarray:
    """The compute-optimal ``N`` for the budget at which ``D`` is the optimal token count:
    ``N = G (G D)^(beta / alpha)`` (Muennighoff et al.'s ``U_N`` for ``U_D``)."""
    g = allocation_constant(params)
    return g * (g * np.asarray(D, dtype=float)) ** (params["beta"] / params["alpha"])
