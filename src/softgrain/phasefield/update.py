"""The physics of one cell's update: one explicit-Euler step of the Allen–Cahn equation.

Every backend (the dense NumPy reference, the compiled sparse kernel, the batched JAX kernel)
calls :func:`explicit_euler_update` for each order parameter of each cell, so the equations live
in exactly one place. The function uses only arithmetic operators, so the same source runs on
Python floats, NumPy arrays (broadcasting over grains and cells), inside ``numba.njit`` and under
``jax.jit``.

The generalised free energy (MODEL.md §7, variant D; the paper's Eq. S13 is the special case
``weight = w`` for every grain and ``tilt = 0``) is

    f = Σ_q w_q (−α/2 φ_q² + β/4 φ_q⁴) + γ Σ_{q<p} (w_q + w_p)/2 · φ_q² φ_p²
        + Σ_q g_q h(φ_q) + Σ_q κ_q/2 |∇φ_q|²,        h(φ) = φ³(6φ² − 15φ + 10),

so that

    δF/δφ_q = φ_q [w_q(−α + β φ_q²) + γ (w_q Σ_{p≠q} φ_p² + Σ_{p≠q} w_p φ_p²)]
              + g_q h'(φ_q) − κ_q ∇²φ_q,                 h'(φ) = 30 φ²(1 − φ)²,

and ∂φ_q/∂t = −L_q δF/δφ_q. With every w_q = 1 and g_q = 0 the bracket is
−α + β φ_q² + 2γ Σ_{p≠q} φ_p², the Fan–Chen form of the paper, and the operations below are
ordered so that this case is bit-identical to the paper-only update that preceded it
(γ(o + o) = 2γ·o exactly in floating point).
"""

from __future__ import annotations


def tilt_derivative(phi):
    """h'(φ) = 30 φ²(1 − φ)², the derivative of the interpolation h(φ) = φ³(6φ² − 15φ + 10)."""
    one_minus = 1.0 - phi
    return 30.0 * phi * phi * one_minus * one_minus


def explicit_euler_update(phi, neighbours, sum_sq, sum_weighted_sq, dt_mobility, kappa, weight,
                          tilt, alpha, beta, gamma, spacing_sq):
    """φ_q after one explicit-Euler step of ∂φ_q/∂t = −L_q δF/δφ_q.

    Parameters
    ----------
    phi : float or array
        φ_q in the cell.
    neighbours : float or array
        Sum of φ_q over the four neighbours (5-point stencil; boundary values already applied).
    sum_sq, sum_weighted_sq : float or array
        Σ_p φ_p² and Σ_p w_p φ_p² over all grains p of the cell (q included).
    dt_mobility : float or array
        Δt · L_q.
    kappa, weight, tilt : float or array
        κ_q, w_q and g_q of grain q.
    alpha, beta, gamma : float
        Landau coefficients.
    spacing_sq : float
        h², the squared grid spacing in the Laplacian's units (a Python float: the division is
        skipped when it is 1, which keeps grid-unit runs bit-identical to the historic kernel).
    """
    sq = phi * phi
    others = sum_sq - sq
    others_weighted = sum_weighted_sq - weight * sq
    laplacian = neighbours - 4.0 * phi
    if spacing_sq != 1.0:
        laplacian = laplacian / spacing_sq
    bulk = phi * (weight * (-alpha + beta * sq) + gamma * (weight * others + others_weighted))
    rate = bulk + tilt * tilt_derivative(phi) - kappa * laplacian
    return phi - dt_mobility * rate
