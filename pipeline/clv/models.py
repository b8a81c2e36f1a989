"""Predictive customer lifetime value: BG/NBD purchase counts, Gamma-Gamma spend, discounted CLV.

Pure numpy/scipy on arrays (no database access); every function is vectorised over
customers. Historical CLV is computed in SQL elsewhere.

Models and the equations used
-----------------------------
BG/NBD (Fader, Hardie & Lee 2005, "Counting Your Customers the Easy Way"), one row per
customer with x = repeat purchases, t_x = time of the last repeat purchase (0 when x = 0),
T = time since the first purchase, all in one time unit; parameters r, alpha, a, b > 0.

* eq. 6, individual likelihood, computed in log space::

      ln L = ln G(r+x) - ln G(r) + r ln(alpha)
             + ln G(a+b) + ln G(b+x) - ln G(b) - ln G(a+b+x)
             + logaddexp( -(r+x) ln(alpha+T),
                          [x>0] (ln a - ln(b+x-1) - (r+x) ln(alpha+t_x)) )

* eq. 9, E[X(t)] for a new customer (what eq. 10 gives for x = t_x = T = 0)::

      (a+b-1)/(a-1) * [1 - (alpha/(alpha+t))^r 2F1(r, b; a+b-1; t/(alpha+t))]

* eq. 10, E[Y(t) | x, t_x, T] purchases in (T, T+t]::

      (a+b+x-1)/(a-1) * [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z)]
      / (1 + [x>0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)),      z = t/(alpha+T+t)

  z always lies in [0, 1). With G(z) = (1-z)^(r+x) 2F1(r+x, b+x; c; z) the paper's form
  is used while z <= 0.5 and r+x <= 100. Otherwise (z near 1, where 2F1 diverges like
  (1-z)^(a-1-r-x), or many purchases, where 2F1 overflows) the same number comes from
  Euler's transformation 2F1(A,B;C;z) = (1-z)^(C-A-B) 2F1(C-A, C-B; C; z)::

      G(z) = (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z)

  which stays finite and well scaled for every x and z < 1 (checked against mpmath at
  50 digits: relative error of 1-G below 1e-12 over x = 0..5000, z up to 1-1e-5).
  At a = 1 eq. 9/10 is 0/0 and near it 1 - G cancels; for |a-1| < 1e-3 the value is
  interpolated (cubic in a through a = 1 -+ 2e-3, 1 -+ 4e-3).

* eq. 11, P(alive | x, t_x, T) = 1 / (1 + [x>0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)),
  computed as expit(-log-odds); it is exactly 1 when x = 0.

Gamma-Gamma (Fader & Hardie 2013 note "The Gamma-Gamma Model of Monetary Value";
Colombo & Jiang 1999), repeat customers only (x >= 1), m = mean repeat transaction value;
transaction values ~ Gamma(p, nu), nu ~ Gamma(q, gamma) across customers:

* density of the mean m_x (note eq. 3)::

      ln f = ln G(px+q) - ln G(px) - ln G(q) + q ln(gamma) + (px-1) ln m + px ln x
             - (px+q) ln(gamma + m x)

* E[M | x, m_x] = p (gamma + m x) / (p x + q - 1)  (note eq. 5), finite only when q > 1;
  for x = 0 it reduces to the population mean p gamma / (q - 1).

CLV over `horizon` periods of `time_unit` model time units, discount rate d per period::

    CLV = E[M | x, m] * sum_{k=1..H} (E[Y(k u)] - E[Y((k-1) u)]) / (1+d)^k

Customers with x = 0 have no observed spend; they get the Gamma-Gamma population mean
p gamma/(q-1), which is what E[M | x=0] gives anyway (the prior mean).

Minimum sizes (fits return params=None, converged=False and a message below them)
-----------------------------------------------------------------------------------
* BG/NBD: at least 20 customers (weighted count) and at least 2 distinct frequencies
  (so at least one repeat customer); with fewer the four parameters are not identified.
* Gamma-Gamma: at least 10 repeat customers (x >= 1, weighted count) and at least 2
  distinct mean values m; rows with x = 0 are ignored.
* Any NaN/inf, negative, non-integer frequency, t_x > T, weight < 0 or (Gamma-Gamma)
  m <= 0 for a repeat customer makes the fit refuse the input (message says how many
  rows and the first index) rather than silently drop rows.
* Identification: an optimum on the search box (|log parameter| = 15), a Hessian that is not
  positive definite, or a standard error above 5x its estimate (the likelihood runs off along
  a ridge, e.g. a, b -> infinity with a/(a+b) fixed on small samples) gives converged=False,
  params=None, the estimate kept in `last_params`.
* Standard errors (`std_errors`) come from the numerical Hessian (central differences of the
  analytic gradient) of the penalised total negative log-likelihood, delta method to the
  natural scale.

Penalty: plain maximum likelihood first, a weak prior only when that fails
---------------------------------------------------------------------------
With penalizer lambda the fits minimise the TOTAL (summed, weighted) negative log-likelihood
plus a penalty on the log of the shape parameters::

    -sum_i w_i ln L_i(theta)  +  lambda * sum_{k in shapes} (ln theta_k)^2

shapes: r, a, b (BG/NBD) and p, q (Gamma-Gamma). This is the negative log-posterior under an
independent Normal(0, 1/(2 lambda)) prior on each log-shape (lambda = 0.5: standard deviation
1, shapes within a factor e of 1 a priori), so its pull is fixed while the likelihood grows
with the customer count n: the shift of the estimate from the plain maximum likelihood is
O(lambda / n) and vanishes as data grow (a penalty on the MEAN log-likelihood, as before, is
lambda * n on this scale and never fades). The scale parameters alpha (time) and gamma (money)
are not penalised: a prior centred on 1 would depend on the time unit and the currency, and
every ridge of these models (a, b -> inf with a/(a+b) fixed; r, alpha -> inf with r/alpha
fixed; q, gamma -> inf with gamma/q fixed) is held by a penalised shape.

`penalizer` of fit_bgnbd / fit_gamma_gamma:
* None (default): plain maximum likelihood; only when it does not converge or is not identified
  (see above) the fit is repeated with lambda = `fallback_penalizer` (default
  FALLBACK_PENALIZER); 0 there disables the fallback.
* 0: plain maximum likelihood, never a penalty. > 0: always this lambda.
FitResult.penalizer is the lambda of the returned fit, FitResult.penalizer_reason says why:
'none: plain maximum likelihood converged', 'fallback: plain maximum likelihood ran off along
a ridge (b -> inf)', 'configured: penalizer = 0.5', ...

Speed: identical rows are compressed (np.unique on the stacked columns) into weights, and
the gamma/log terms are evaluated once per distinct x, t_x and T; likelihood gradients are
analytic. 1,000,000 customers (daily data) fit in a few seconds: see `python -m pipeline.clv.models`.
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd
from scipy import optimize, special

__all__ = [
    "BGNBD_MIN_CUSTOMERS",
    "BGNBD_MIN_DISTINCT_FREQUENCIES",
    "FALLBACK_PENALIZER",
    "GG_MIN_DISTINCT_VALUES",
    "GG_MIN_REPEAT_CUSTOMERS",
    "BGNBDParams",
    "FitResult",
    "GammaGammaParams",
    "bgnbd_log_likelihood",
    "expected_average_spend",
    "expected_purchases",
    "expected_purchases_new",
    "fit_bgnbd",
    "fit_gamma_gamma",
    "gamma_gamma_log_likelihood",
    "p_alive",
    "predicted_clv",
    "rfm_from_transactions",
]

BGNBD_MIN_CUSTOMERS = 20
BGNBD_MIN_DISTINCT_FREQUENCIES = 2
GG_MIN_REPEAT_CUSTOMERS = 10
GG_MIN_DISTINCT_VALUES = 2

LOG_PARAM_BOUND = 15.0  # search box for log-parameters: e^-15 .. e^15
MAX_LOG_SE = 5.0  # identification: a parameter whose SE exceeds 5x its estimate is not determined
FALLBACK_PENALIZER = 0.5  # lambda of the refit when plain maximum likelihood fails: log-shapes ~ Normal(0, 1)
_DIRECT_Z_MAX = 0.5  # paper form of 2F1 up to this z ...
_DIRECT_RX_MAX = 100.0  # ... and this r + x; the Euler-transformed form beyond
_A_NEAR_ONE = 1e-3  # eq. 9/10 for |a - 1| below this: interpolated in a ...
_A_NODE_STEP = 2e-3  # ... through a = 1 -+ this and 1 -+ twice this
_CHUNK_ROWS = 250_000  # rows per block for (customers x periods) arrays


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class BGNBDParams:
    r: float
    alpha: float
    a: float
    b: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class GammaGammaParams:
    p: float
    q: float
    gamma: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class FitResult:
    """Outcome of a fit. `params` is None unless the fit converged to an interior, identified optimum."""

    model: str  # "bgnbd" or "gamma_gamma"
    params: BGNBDParams | GammaGammaParams | None
    log_likelihood: float  # unpenalised, summed over customers (weights applied); NaN without params
    n_customers: float  # weighted number of customers the fit used
    n_rows: int  # distinct rows the optimiser saw after compression
    converged: bool
    message: str
    std_errors: dict[str, float] | None = None  # numerical Hessian of the (penalised) -log-likelihood
    last_params: BGNBDParams | GammaGammaParams | None = None  # the optimiser's final point, always
    penalizer: float = 0.0  # lambda on the total -log-likelihood (module doc); 0 = plain maximum likelihood
    penalizer_reason: str = ""  # why that lambda: 'none: ...', 'fallback: ...' or 'configured: ...'
    iterations: int = 0
    seconds: float = 0.0
    problem: str = ""  # why an optimisation gave no params, short ('ran off along a ridge (b -> inf)')


def _failed(model: str, message: str, n_customers: float = 0.0) -> FitResult:
    return FitResult(
        model=model,
        params=None,
        log_likelihood=math.nan,
        n_customers=float(n_customers),
        n_rows=0,
        converged=False,
        message=message,
        penalizer_reason="none: no fit (input refused)",
    )


def _check_penalizers(penalizer: float | None, fallback_penalizer: float) -> None:
    for name, value in (("penalizer", penalizer), ("fallback_penalizer", fallback_penalizer)):
        if value is not None and not (math.isfinite(float(value)) and value >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


def _with_penalty_policy(fit_once, penalizer: float | None, fallback_penalizer: float) -> FitResult:
    """Run fit_once(lambda) as the `penalizer` policy of the module doc says; sets penalizer_reason."""
    if penalizer is not None:
        result = fit_once(float(penalizer))
        reason = (
            f"configured: penalizer = {penalizer:g}"
            if penalizer > 0
            else "none: plain maximum likelihood (penalizer = 0 configured)"
        )
        return replace(result, penalizer_reason=reason)
    plain = fit_once(0.0)
    if plain.converged:
        return replace(plain, penalizer_reason="none: plain maximum likelihood converged")
    if fallback_penalizer == 0:
        return replace(
            plain,
            penalizer_reason=f"none: plain maximum likelihood {plain.problem}; "
            "fallback disabled (fallback_penalizer = 0)",
        )
    fallback = fit_once(float(fallback_penalizer))
    return replace(
        fallback,
        penalizer_reason=f"fallback: plain maximum likelihood {plain.problem}",
        message=f"{fallback.message}; penalised (penalizer {fallback_penalizer:g}) because plain "
        f"maximum likelihood {plain.problem}",
    )


def _params_of(params, cls):
    """Accept a FitResult, a params dataclass, a mapping or a tuple; None when unusable."""
    if isinstance(params, FitResult):
        params = params.params
    if params is None:
        return None
    if isinstance(params, cls):
        values = params
    elif isinstance(params, Mapping):
        values = cls(**{k: float(params[k]) for k in cls.__dataclass_fields__})
    else:
        values = cls(*(float(v) for v in params))
    if not all(math.isfinite(v) and v > 0 for v in asdict(values).values()):
        return None
    return values


# --------------------------------------------------------------------------- input checks


def _as_float_arrays(*columns) -> list[np.ndarray]:
    arrays = [np.asarray(c, dtype=float).reshape(-1) if np.ndim(c) else np.asarray([c], dtype=float) for c in columns]
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise ValueError(f"input arrays differ in length: {[len(a) for a in arrays]}")
    return arrays


def _first_bad(bad: np.ndarray) -> str:
    count = int(bad.sum())
    return f"{count} row{'s' if count != 1 else ''} (first at index {int(np.argmax(bad))})"


def _compress(columns: list[np.ndarray], weights: np.ndarray):
    """Distinct rows of the stacked columns (lexicographic order, as np.unique(axis=0) gives them),
    the summed weight of each and every row's index among them. lexsort + run boundaries: about
    10x faster than np.unique(axis=0) on a million rows."""
    order = np.lexsort(columns[::-1])
    sorted_cols = [c[order] for c in columns]
    new_run = np.ones(len(order), dtype=bool)
    if len(order):
        new_run[1:] = np.logical_or.reduce([c[1:] != c[:-1] for c in sorted_cols])
    run_of_sorted = np.cumsum(new_run) - 1
    inverse = np.empty(len(order), dtype=np.intp)
    inverse[order] = run_of_sorted
    summed = np.bincount(run_of_sorted, weights=weights[order], minlength=int(new_run.sum()))
    return [c[new_run] for c in sorted_cols], summed, inverse


def _bgnbd_valid(x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return (
            np.isfinite(x)
            & np.isfinite(t_x)
            & np.isfinite(T)
            & (x >= 0)
            & (x == np.floor(x))
            & (t_x >= 0)
            & (t_x <= T * (1 + 1e-12) + 1e-12)
        )


# --------------------------------------------------------------------------- optimisation


def _minimise(objective, start: np.ndarray, names: tuple[str, ...], n_rows: int):
    """L-BFGS-B on log-parameters with analytic gradient; Nelder-Mead then a polish when it fails
    (Nelder-Mead's evaluations capped by data size: about 10 s of work on a million rows)."""
    bounds = [(-LOG_PARAM_BOUND, LOG_PARAM_BOUND)] * len(start)
    options = {"maxiter": 2000, "ftol": 1e-13, "gtol": 1e-9, "maxcor": 20}
    with np.errstate(all="ignore"):
        res = optimize.minimize(objective, start, jac=True, method="L-BFGS-B", bounds=bounds, options=options)
        iterations = int(res.nit)
        if not (np.all(np.isfinite(res.x)) and np.isfinite(res.fun)) or _grad_norm(objective, res.x) > 1e-5:
            nm = optimize.minimize(
                lambda z: objective(z)[0],
                start if not np.all(np.isfinite(res.x)) else res.x,
                method="Nelder-Mead",
                options={
                    "maxfev": int(np.clip(2e8 / max(n_rows, 1), 200, 4000)),
                    "xatol": 1e-10,
                    "fatol": 1e-14,
                    "adaptive": True,
                },
            )
            polish = optimize.minimize(
                objective,
                np.clip(nm.x, -LOG_PARAM_BOUND, LOG_PARAM_BOUND),
                jac=True,
                method="L-BFGS-B",
                bounds=bounds,
                options=options,
            )
            iterations += int(nm.nit) + int(polish.nit)
            if np.isfinite(polish.fun) and (not np.isfinite(res.fun) or polish.fun <= res.fun):
                res = polish
    gnorm = _grad_norm(objective, res.x)
    at_bound = [n for n, v in zip(names, res.x, strict=True) if abs(abs(v) - LOG_PARAM_BOUND) < 1e-6]
    ok = bool(np.all(np.isfinite(res.x)) and np.isfinite(res.fun) and gnorm <= 1e-5 and not at_bound)
    if at_bound:
        ends = ", ".join(
            f"{n} -> {'inf' if v > 0 else '0'}" for n, v in zip(names, res.x, strict=True) if n in at_bound
        )
        note = (
            f"estimate on the search bound for {', '.join(at_bound)} (|log| = {LOG_PARAM_BOUND:g}): "
            "the data do not identify the model"
        )
        problem = f"ran off to the search bound ({ends})"
    elif not ok:
        note = f"optimiser did not converge (L-BFGS-B: {str(res.message).strip(': ')}; gradient norm {gnorm:.2e})"
        problem = "did not converge"
    else:
        note = "converged"
        problem = ""
    return res.x, ok, note, problem, iterations


def _grad_norm(objective, z: np.ndarray) -> float:
    with np.errstate(all="ignore"):
        _, g = objective(z)
    g = np.asarray(g, dtype=float)
    return float(np.max(np.abs(g))) if np.all(np.isfinite(g)) else math.inf


def _std_errors(total_grad, z: np.ndarray, names: tuple[str, ...]):
    """SEs at the optimum: Hessian of the (penalised) total negative log-likelihood in log-parameters
    by central differences of the analytic gradient, inverted; the delta method gives the natural
    scale, se(theta) = theta * se(log theta). Returns (dict of SEs, SEs of the log-parameters),
    or (None, None) when the Hessian is not positive definite."""
    k = len(z)
    hessian = np.empty((k, k))
    with np.errstate(all="ignore"):
        for j in range(k):
            h = 1e-5 * max(1.0, abs(z[j]))
            step = np.zeros(k)
            step[j] = h
            hessian[:, j] = (total_grad(z + step) - total_grad(z - step)) / (2 * h)
    hessian = (hessian + hessian.T) / 2
    if not np.all(np.isfinite(hessian)):
        return None, None
    try:
        np.linalg.cholesky(hessian)
        cov = np.linalg.inv(hessian)
    except np.linalg.LinAlgError:
        return None, None
    se_log = np.sqrt(np.clip(np.diag(cov), 0, None))
    return {n: float(np.exp(v) * s) for n, v, s in zip(names, z, se_log, strict=True)}, se_log


def _assemble(
    model: str,
    label: str,
    cls,
    names,
    z,
    ok,
    note,
    problem,
    iterations,
    total_ll,
    total_grad,
    n_customers,
    n_rows,
    penalizer,
    started,
) -> FitResult:
    """The FitResult of an optimisation, after the identification check on the standard errors."""
    estimate = cls(*(float(v) for v in np.exp(z))) if np.all(np.isfinite(z)) else None
    se, se_log = _std_errors(total_grad, z, names) if estimate is not None else (None, None)
    if ok and se is None:
        ok = False
        note = (
            "not identified: the Hessian of the log-likelihood is not positive definite at the optimum "
            "(try more customers or penalizer > 0)"
        )
        problem = "is not identified (Hessian not positive definite)"
    elif ok and float(np.max(se_log)) > MAX_LOG_SE:
        ok = False
        loose = [(n, v) for n, v, s in zip(names, z, se_log, strict=True) if s > MAX_LOG_SE]
        note = (
            f"not identified: standard error of {', '.join(n for n, _ in loose)} above {MAX_LOG_SE:g} times "
            "the estimate (the optimum runs off along a ridge; try more customers or penalizer > 0)"
        )
        problem = "ran off along a ridge (" + ", ".join(f"{n} -> {'inf' if v > 0 else '0'}" for n, v in loose) + ")"
    with np.errstate(all="ignore"):
        ll = total_ll(z) if ok else math.nan
    return FitResult(
        model=model,
        params=estimate if ok else None,
        log_likelihood=ll,
        n_customers=n_customers,
        n_rows=n_rows,
        converged=ok,
        message=f"{label} {note}",
        std_errors=se,
        last_params=estimate,
        penalizer=penalizer,
        iterations=iterations,
        seconds=time.perf_counter() - started,
        problem=problem,
    )


# --------------------------------------------------------------------------- BG/NBD


class _BGNBDData:
    """Distinct rows plus per-distinct-value indexes, so gammaln/log run once per distinct value."""

    def __init__(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, w: np.ndarray):
        self.w = w
        self.total_w = float(w.sum())
        self.ux, self.ix = np.unique(x, return_inverse=True)
        self.uT, self.iT = np.unique(T, return_inverse=True)
        self.pos = x > 0
        self.ut, self.it = np.unique(t_x[self.pos], return_inverse=True)
        self.x = x
        self.x_pos = x[self.pos]

    def terms(self, theta: np.ndarray, gradient: bool):
        r, alpha, a, b = np.exp(theta)
        ux, ix, pos = self.ux, self.ix, self.pos
        log_alpha = math.log(alpha)
        lg = special.gammaln
        a1 = (lg(r + ux) - lg(r) + r * log_alpha)[ix]
        a2 = (lg(a + b) + lg(b + ux) - lg(b) - lg(a + b + ux))[ix]
        log_aT = np.log(alpha + self.uT)[self.iT]
        rx = r + self.x
        a3 = -rx * log_aT
        log_at = np.log(alpha + self.ut)[self.it]
        a4 = np.full_like(a3, -np.inf)
        bx1 = b + self.x_pos - 1.0
        a4[pos] = math.log(a) - np.log(bx1) - rx[pos] * log_at
        l34 = np.logaddexp(a3, a4)
        ll = a1 + a2 + l34
        if not gradient:
            return ll, None
        s4 = np.zeros_like(ll)
        s4[pos] = np.exp(a4[pos] - l34[pos])
        s3 = 1.0 - s4
        dg = special.digamma
        d_r = (dg(r + ux) - dg(r))[ix] + log_alpha - s3 * log_aT
        d_r[pos] -= s4[pos] * log_at
        inv_aT = (1.0 / (alpha + self.uT))[self.iT]
        d_alpha = r / alpha - rx * s3 * inv_aT
        d_alpha[pos] -= rx[pos] * s4[pos] / (alpha + self.ut)[self.it]
        d_a = (dg(a + b) - dg(a + b + ux))[ix] + s4 / a
        d_b = (dg(a + b) + dg(b + ux) - dg(b) - dg(a + b + ux))[ix]
        d_b[pos] -= s4[pos] / bx1
        # weighted sums, chain rule to log-parameters
        w = self.w
        grad = np.array([w @ d_r * r, w @ d_alpha * alpha, w @ d_a * a, w @ d_b * b])
        return ll, grad


def bgnbd_log_likelihood(params, x, t_x, T) -> np.ndarray:
    """Per-customer BG/NBD log-likelihood (eq. 6); NaN for invalid rows or params None."""
    x, t_x, T = _as_float_arrays(x, t_x, T)
    theta = _params_of(params, BGNBDParams)
    out = np.full(len(x), np.nan)
    if theta is None:
        return out
    valid = _bgnbd_valid(x, t_x, T)
    if valid.any():
        xv, tv, Tv = x[valid], np.minimum(t_x[valid], T[valid]), T[valid]
        data = _BGNBDData(xv, tv, Tv, np.ones(len(xv)))
        with np.errstate(all="ignore"):
            out[valid] = data.terms(np.log([theta.r, theta.alpha, theta.a, theta.b]), gradient=False)[0]
    return out


def fit_bgnbd(
    x,
    t_x,
    T,
    weights=None,
    *,
    penalizer: float | None = None,
    fallback_penalizer: float = FALLBACK_PENALIZER,
    compress: bool = True,
) -> FitResult:
    """Maximum-likelihood BG/NBD fit.

    x: repeat purchase count, t_x: time of the last repeat purchase (0 when x = 0), T: time since
    the first purchase, one time unit throughout. `weights`: number of customers sharing the row.
    `penalizer`: None (default) = plain maximum likelihood, refit with `fallback_penalizer` only
    when that does not converge or is not identified; 0 = plain only; lambda > 0 = always
    minimise  -sum(w ln L) + lambda * (ln(r)^2 + ln(a)^2 + ln(b)^2)  (a penalty on the TOTAL
    negative log-likelihood, so its effect fades as O(lambda / n); see the module doc).
    `compress`: merge identical rows. Never raises on data problems: returns params=None with a
    message instead.
    """
    model = "bgnbd"
    started = time.perf_counter()
    _check_penalizers(penalizer, fallback_penalizer)
    try:
        x, t_x, T = _as_float_arrays(x, t_x, T)
        w = np.ones(len(x)) if weights is None else _as_float_arrays(weights)[0]
        if len(w) != len(x):
            raise ValueError(f"weights has {len(w)} rows, the data {len(x)}")
    except (TypeError, ValueError) as exc:
        return _failed(model, f"BG/NBD input is not numeric 1-D arrays of one length: {exc}")
    bad = ~_bgnbd_valid(x, t_x, T) | ~np.isfinite(w) | (w < 0)
    if bad.any():
        return _failed(
            model,
            f"BG/NBD input has invalid values in {_first_bad(bad)}: need finite x >= 0 "
            "integer, 0 <= t_x <= T, weights >= 0",
        )
    keep = w > 0
    x, t_x, T, w = x[keep], np.minimum(t_x[keep], T[keep]), T[keep], w[keep]
    t_x = np.where(x > 0, t_x, 0.0)  # t_x is irrelevant (and conventionally 0) without repeat purchases
    n_customers = float(w.sum())
    n_freq = len(np.unique(x))
    if n_customers < BGNBD_MIN_CUSTOMERS or n_freq < BGNBD_MIN_DISTINCT_FREQUENCIES:
        return _failed(
            model,
            f"BG/NBD needs at least {BGNBD_MIN_CUSTOMERS} customers with at least "
            f"{BGNBD_MIN_DISTINCT_FREQUENCIES} distinct frequencies; got {n_customers:g} customers "
            f"and {n_freq} distinct frequenc{'y' if n_freq == 1 else 'ies'}",
            n_customers,
        )
    if compress:
        (x, t_x, T), w, _ = _compress([x, t_x, T], w)
    data = _BGNBDData(x, t_x, T, w)
    # start: r = 1, alpha so that r/alpha matches the pooled purchase rate, a = 1, b = 3
    rate = max(float(w @ x), 1.0) / max(float(w @ T), 1e-9)
    start = np.log([1.0, float(np.clip(1.0 / rate, 1e-3, 1e6)), 1.0, 3.0])
    names = ("r", "alpha", "a", "b")
    shapes = np.array([1.0, 0.0, 1.0, 1.0])  # r, a, b penalised; alpha (time scale) not

    def fit_once(lam: float) -> FitResult:
        started = time.perf_counter()

        def objective(theta: np.ndarray):
            # the mean keeps the optimiser's tolerances independent of n; lambda / n is the same optimum
            ll, grad = data.terms(theta, gradient=True)
            value = (-float(w @ ll) + lam * float(shapes @ theta**2)) / data.total_w
            if not np.isfinite(value):
                return math.inf, np.zeros_like(theta)
            return value, (-grad + 2 * lam * shapes * theta) / data.total_w

        z, ok, note, problem, iterations = _minimise(objective, start, names, len(x))
        return _assemble(
            model,
            "BG/NBD",
            BGNBDParams,
            names,
            z,
            ok,
            f"{note} on {n_customers:g} customers ({len(x)} distinct rows)",
            problem,
            iterations,
            lambda th: float(w @ data.terms(th, gradient=False)[0]),
            lambda th: -data.terms(th, gradient=True)[1] + 2 * lam * shapes * th,
            n_customers,
            len(x),
            lam,
            started,
        )

    result = _with_penalty_policy(fit_once, penalizer, fallback_penalizer)
    return replace(result, seconds=time.perf_counter() - started)


def _one_minus_g(r: float, a: float, b: float, x: np.ndarray, z: np.ndarray) -> np.ndarray:
    """1 - (1-z)^(r+x) 2F1(r+x, b+x; a+b+x-1; z) for z in [0, 1): paper form, Euler form near z = 1."""
    x, z = np.broadcast_arrays(x, z)
    g = np.full(x.shape, np.nan)
    direct = (z <= _DIRECT_Z_MAX) & (r + x <= _DIRECT_RX_MAX)
    if direct.any():
        xd, zd = x[direct], z[direct]
        g[direct] = np.exp((r + xd) * np.log1p(-zd)) * special.hyp2f1(r + xd, b + xd, a + b + xd - 1.0, zd)
    euler = ~np.isfinite(g)  # z > 0.5, r + x > 100, or the paper form overflowed
    if euler.any():
        xe, ze = x[euler], z[euler]
        g[euler] = np.exp((a - 1.0) * np.log1p(-ze)) * special.hyp2f1(a + b - 1.0 - r, a - 1.0, a + b + xe - 1.0, ze)
    return 1.0 - g


def _eq10_numerator(
    r: float, alpha: float, a: float, b: float, x: np.ndarray, T: np.ndarray, t: np.ndarray
) -> np.ndarray:
    """(a+b+x-1)/(a-1) * [1 - G]: eq. 10 without the P(alive) denominator (eq. 9 when x = T = 0).

    At a = 1 this is 0/0, and near it 1 - G loses digits in proportion to 1/|a-1|. For
    |a-1| < 1e-3 the value is the cubic through a = 1 -+ 2e-3, 1 -+ 4e-3 instead (relative
    error about 1e-9 there, against mpmath).
    """
    if abs(a - 1.0) < _A_NEAR_ONE:
        nodes = 1.0 + _A_NODE_STEP * np.array([-2.0, -1.0, 1.0, 2.0])
        values = [_eq10_plain(r, alpha, node, b, x, T, t) for node in nodes]
        result = np.zeros_like(values[0])
        for j, node in enumerate(nodes):
            others = np.delete(nodes, j)
            result = result + values[j] * float(np.prod((a - others) / (node - others)))
        return result
    return _eq10_plain(r, alpha, a, b, x, T, t)


def _eq10_plain(r: float, alpha: float, a: float, b: float, x: np.ndarray, T: np.ndarray, t: np.ndarray) -> np.ndarray:
    if a + b == 1.0:  # c = a+b+x-1 = 0 is a pole of 2F1 for x = 0 (the product has a limit)
        b = b * (1.0 + 1e-10)
    z = t / (alpha + T + t)
    return (a + b + x - 1.0) / (a - 1.0) * _one_minus_g(r, a, b, x, z)


def _log_odds_dead(theta: BGNBDParams, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """ln( a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x) ) for x > 0, -inf for x = 0 (eq. 11)."""
    r, alpha, a, b = theta.r, theta.alpha, theta.a, theta.b
    pos = x > 0
    bx1 = np.where(pos, b + x - 1.0, 1.0)
    odds = np.log(a) - np.log(bx1) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
    return np.where(pos, odds, -np.inf)


def p_alive(params, x, t_x, T) -> np.ndarray:
    """P(customer still alive | x, t_x, T) (eq. 11); 1 for x = 0; NaN for invalid rows / params None."""
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    x, t_x, T = np.broadcast_arrays(x, t_x, T)
    theta = _params_of(params, BGNBDParams)
    if theta is None:
        return np.full(x.shape, np.nan)
    valid = _bgnbd_valid(x, t_x, T)
    xs, ts, Ts = np.where(valid, x, 0.0), np.where(valid, np.minimum(t_x, T), 0.0), np.where(valid, T, 0.0)
    with np.errstate(all="ignore"):
        prob = special.expit(-_log_odds_dead(theta, xs, ts, Ts))
    return np.where(valid, prob, np.nan)


def expected_purchases(params, t, x, t_x, T) -> np.ndarray:
    """E[Y(t) | x, t_x, T]: expected repeat purchases in the next t time units (eq. 10).

    Broadcasts t against the customer arrays (e.g. t of shape (1, k) with customers of shape (n, 1)).
    NaN for invalid rows, t < 0 or non-finite, and when params is None.
    """
    t, x, t_x, T = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (t, x, t_x, T)))
    theta = _params_of(params, BGNBDParams)
    if theta is None:
        return np.full(x.shape, np.nan)
    valid = _bgnbd_valid(x, t_x, T) & np.isfinite(t) & (t >= 0)
    xs, ts, Ts = np.where(valid, x, 0.0), np.where(valid, np.minimum(t_x, T), 0.0), np.where(valid, T, 0.0)
    tt = np.where(valid, t, 0.0)
    with np.errstate(all="ignore"):
        alive = special.expit(-_log_odds_dead(theta, xs, ts, Ts))
        value = _eq10_numerator(theta.r, theta.alpha, theta.a, theta.b, xs, Ts, tt) * alive + 0.0  # no -0.0
    return np.where(valid, value, np.nan)


def expected_purchases_new(params, t) -> np.ndarray:
    """E[X(t)]: expected purchases of a newly acquired customer in (0, t] (eq. 9)."""
    t = np.asarray(t, dtype=float)
    theta = _params_of(params, BGNBDParams)
    if theta is None:
        return np.full(t.shape, np.nan)
    valid = np.isfinite(t) & (t >= 0)
    tt = np.where(valid, t, 0.0)
    zero = np.zeros_like(tt)
    with np.errstate(all="ignore"):
        value = _eq10_numerator(theta.r, theta.alpha, theta.a, theta.b, zero, zero, tt) + 0.0  # no -0.0
    return np.where(valid, value, np.nan)


# --------------------------------------------------------------------------- Gamma-Gamma


def _gg_terms(
    theta: np.ndarray, x: np.ndarray, m: np.ndarray, log_m: np.ndarray, log_x: np.ndarray, w: np.ndarray | None
):
    p, q, g = np.exp(theta)
    px = p * x
    log_gmx = np.log(g + m * x)
    ll = (
        special.gammaln(px + q)
        - special.gammaln(px)
        - special.gammaln(q)
        + q * math.log(g)
        + (px - 1.0) * log_m
        + px * log_x
        - (px + q) * log_gmx
    )
    if w is None:
        return ll, None
    dg_pxq = special.digamma(px + q)
    d_p = x * (dg_pxq - special.digamma(px) + log_m + log_x - log_gmx)
    d_q = dg_pxq - special.digamma(q) + math.log(g) - log_gmx
    d_g = q / g - (px + q) / (g + m * x)
    return ll, np.array([w @ d_p * p, w @ d_q * q, w @ d_g * g])


def gamma_gamma_log_likelihood(params, x, m) -> np.ndarray:
    """Per-customer log density of the mean repeat value m given x >= 1; NaN elsewhere."""
    x, m = _as_float_arrays(x, m)
    theta = _params_of(params, GammaGammaParams)
    out = np.full(len(x), np.nan)
    if theta is None:
        return out
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(x) & np.isfinite(m) & (x >= 1) & (x == np.floor(x)) & (m > 0)
    if ok.any():
        z = np.log([theta.p, theta.q, theta.gamma])
        with np.errstate(all="ignore"):
            out[ok] = _gg_terms(z, x[ok], m[ok], np.log(m[ok]), np.log(x[ok]), None)[0]
    return out


def fit_gamma_gamma(
    x,
    m,
    weights=None,
    *,
    penalizer: float | None = None,
    fallback_penalizer: float = FALLBACK_PENALIZER,
    compress: bool = True,
) -> FitResult:
    """Maximum-likelihood Gamma-Gamma fit on repeat customers (rows with x = 0 are ignored).

    x: repeat purchase count, m: mean value of the repeat purchases; weights as in fit_bgnbd.
    `penalizer` / `fallback_penalizer` as in fit_bgnbd; the penalty is lambda * (ln(p)^2 + ln(q)^2)
    on the total negative log-likelihood (gamma, the money scale, is not penalised).
    Never raises on data problems: returns params=None with a message instead.
    """
    model = "gamma_gamma"
    started = time.perf_counter()
    _check_penalizers(penalizer, fallback_penalizer)
    try:
        x, m = _as_float_arrays(x, m)
        w = np.ones(len(x)) if weights is None else _as_float_arrays(weights)[0]
        if len(w) != len(x):
            raise ValueError(f"weights has {len(w)} rows, the data {len(x)}")
    except (TypeError, ValueError) as exc:
        return _failed(model, f"Gamma-Gamma input is not numeric 1-D arrays of one length: {exc}")
    with np.errstate(invalid="ignore"):
        bad = (
            ~np.isfinite(x)
            | (x < 0)
            | (x != np.floor(x))
            | ~np.isfinite(w)
            | (w < 0)
            | ((x >= 1) & ~(np.isfinite(m) & (m > 0)))
        )
    if bad.any():
        return _failed(
            model,
            f"Gamma-Gamma input has invalid values in {_first_bad(bad)}: need integer "
            "x >= 0, weights >= 0 and finite m > 0 wherever x >= 1",
        )
    keep = (x >= 1) & (w > 0)
    x, m, w = x[keep], m[keep], w[keep]
    n_customers = float(w.sum())
    n_values = len(np.unique(m))
    if n_customers < GG_MIN_REPEAT_CUSTOMERS or n_values < GG_MIN_DISTINCT_VALUES:
        return _failed(
            model,
            f"Gamma-Gamma needs at least {GG_MIN_REPEAT_CUSTOMERS} repeat customers (x >= 1) "
            f"with at least {GG_MIN_DISTINCT_VALUES} distinct mean values; got {n_customers:g} "
            f"repeat customers and {n_values} distinct value{'s' if n_values != 1 else ''}",
            n_customers,
        )
    if compress:
        (x, m), w, _ = _compress([x, m], w)
    log_m, log_x, total_w = np.log(m), np.log(x), float(w.sum())
    # start: p = 2, q = 3 and gamma matching the population mean spend p*gamma/(q-1) to mean(m)
    mean_m = float(w @ m) / total_w
    start = np.log([2.0, 3.0, mean_m])
    names = ("p", "q", "gamma")
    shapes = np.array([1.0, 1.0, 0.0])  # p, q penalised; gamma (money scale) not

    def fit_once(lam: float) -> FitResult:
        started = time.perf_counter()

        def objective(theta: np.ndarray):
            ll, grad = _gg_terms(theta, x, m, log_m, log_x, w)
            value = (-float(w @ ll) + lam * float(shapes @ theta**2)) / total_w
            if not np.isfinite(value):
                return math.inf, np.zeros_like(theta)
            return value, (-grad + 2 * lam * shapes * theta) / total_w

        z, ok, note, problem, iterations = _minimise(objective, start, names, len(x))
        return _assemble(
            model,
            "Gamma-Gamma",
            GammaGammaParams,
            names,
            z,
            ok,
            f"{note} on {n_customers:g} repeat customers ({len(x)} distinct rows)",
            problem,
            iterations,
            lambda th: float(w @ _gg_terms(th, x, m, log_m, log_x, None)[0]),
            lambda th: -_gg_terms(th, x, m, log_m, log_x, w)[1] + 2 * lam * shapes * th,
            n_customers,
            len(x),
            lam,
            started,
        )

    result = _with_penalty_policy(fit_once, penalizer, fallback_penalizer)
    result = replace(result, seconds=time.perf_counter() - started)
    if result.params is not None and result.params.q <= 1:
        result = replace(
            result,
            message=result.message + "; q <= 1, so the mean spend is infinite and expected_average_spend gives NaN",
        )
    return result


def expected_average_spend(params, x, m) -> np.ndarray:
    """E[M | x, m_x] = p (gamma + m x) / (p x + q - 1); p gamma/(q-1) for x = 0 (m ignored there).

    NaN (with a RuntimeWarning) when q <= 1, NaN for invalid rows and when params is None.
    """
    x, m = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(m, dtype=float))
    theta = _params_of(params, GammaGammaParams)
    if theta is None:
        return np.full(x.shape, np.nan)
    if theta.q <= 1:
        warnings.warn(
            f"Gamma-Gamma q = {theta.q:.4g} <= 1: the expected spend is infinite; returning NaN",
            RuntimeWarning,
            stacklevel=2,
        )
        return np.full(x.shape, np.nan)
    p, q, g = theta.p, theta.q, theta.gamma
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(x) & (x >= 0) & (x == np.floor(x)) & ((x == 0) | (np.isfinite(m) & (m > 0)))
    mx = np.where(valid & (x > 0), m * x, 0.0)
    xs = np.where(valid, x, 0.0)
    return np.where(valid, p * (g + mx) / (p * xs + q - 1.0), np.nan)


# --------------------------------------------------------------------------- CLV


def predicted_clv(
    bg, gg, x, t_x, T, m, horizon: int, discount_rate_per_period: float, time_unit: float = 1.0
) -> np.ndarray:
    """Expected discounted value of each customer's purchases over the next `horizon` periods.

    bg, gg: BG/NBD and Gamma-Gamma fits (FitResult or params). A period is `time_unit` model
    time units (e.g. 30 when the models were fit in days and discounting is monthly; 1 when a
    period is one model unit). Purchases expected in period k, E[Y(k u)] - E[Y((k-1) u)], are
    valued at E[M | x, m] and discounted by (1 + d)^k. Customers with x = 0 are valued at the
    Gamma-Gamma population mean spend p gamma / (q - 1). NaN when either model has no params.
    """
    horizon = int(horizon)
    d = float(discount_rate_per_period)
    u = float(time_unit)
    if horizon < 0:
        raise ValueError(f"horizon must be >= 0 periods, got {horizon}")
    if not (math.isfinite(d) and d > -1):
        raise ValueError(f"discount_rate_per_period must be > -1, got {discount_rate_per_period!r}")
    if not (math.isfinite(u) and u > 0):
        raise ValueError(f"time_unit must be > 0 model time units per period, got {time_unit!r}")
    x, t_x, T, m = (np.asarray(v, dtype=float).reshape(-1) for v in np.broadcast_arrays(x, t_x, T, m))
    bg_theta, gg_theta = _params_of(bg, BGNBDParams), _params_of(gg, GammaGammaParams)
    if bg_theta is None or gg_theta is None:
        return np.full(x.shape, np.nan)
    spend = expected_average_spend(gg_theta, x, m)
    if horizon == 0:
        return np.where(np.isfinite(spend) & _bgnbd_valid(x, t_x, T), 0.0, np.nan)
    discount = (1.0 + d) ** -np.arange(1, horizon + 1)
    times = u * np.arange(0, horizon + 1, dtype=float)[None, :]
    # E[Y] depends on (x, t_x, T) only: compute it once per distinct row, in blocks of rows
    (ux, ut, uT), _, inverse = _compress([np.nan_to_num(v, nan=-1.0) for v in (x, t_x, T)], np.ones(len(x)))
    per_row = np.empty(len(ux))
    for start in range(0, len(ux), _CHUNK_ROWS):
        block = slice(start, start + _CHUNK_ROWS)
        cumulative = expected_purchases(bg_theta, times, ux[block, None], ut[block, None], uT[block, None])
        per_row[block] = np.diff(cumulative, axis=1) @ discount
    return per_row[inverse] * spend


# --------------------------------------------------------------------------- transactions -> summary


def _series(values) -> pd.Series:
    if isinstance(values, pd.Series):
        return values.reset_index(drop=True)
    if isinstance(values, pd.Index):
        return values.to_series().reset_index(drop=True)
    return pd.Series(np.asarray(values))


def rfm_from_transactions(customer_ids, dates, amounts, as_of, time_unit: str = "days") -> pd.DataFrame:
    """Per-customer frequency / recency / T / monetary_value from a transaction list.

    A purchase is a distinct purchase day of the customer (times of day are dropped, same-day
    amounts summed). frequency = purchase days after the first; recency = first to last purchase
    day; T = first purchase day to `as_of` (its day); monetary_value = mean of the repeat purchase
    days' totals (first day excluded; 0 when frequency is 0). Transactions after `as_of` and rows
    without customer or date are ignored; NaN amounts count as 0. time_unit "days" or "weeks"
    (days / 7, fractional). Index: customer_id (sorted).
    """
    divisor = {"days": 1.0, "weeks": 7.0}.get(time_unit)
    if divisor is None:
        raise ValueError(f"time_unit must be 'days' or 'weeks', got {time_unit!r}")
    day = pd.to_datetime(_series(dates), errors="coerce").dt.normalize()
    frame = pd.DataFrame(
        {"customer_id": _series(customer_ids), "day": day, "amount": pd.to_numeric(_series(amounts), errors="coerce")}
    )
    as_of_day = pd.Timestamp(as_of).normalize()
    frame = frame[frame["customer_id"].notna() & frame["day"].notna() & (frame["day"] <= as_of_day)]
    columns = ["frequency", "recency", "T", "monetary_value"]
    if frame.empty:
        return pd.DataFrame(
            {c: pd.Series(dtype="int64" if c == "frequency" else "float64") for c in columns},
            index=pd.Index([], name="customer_id"),
        )
    daily = frame.groupby(["customer_id", "day"], sort=True)["amount"].sum()
    by_customer = daily.groupby(level="customer_id", sort=True)
    days = daily.index.get_level_values("day").to_series(index=daily.index)
    first = days.groupby(level="customer_id", sort=True).min()
    last = days.groupby(level="customer_id", sort=True).max()
    n_days = by_customer.size()
    total = by_customer.sum()
    first_total = by_customer.first()  # the first day's total: days are sorted within a customer
    one_day = pd.Timedelta(days=1)
    frequency = (n_days - 1).astype("int64")
    repeat_total = (total - first_total).to_numpy(dtype=float)
    monetary = np.where(frequency.to_numpy() > 0, repeat_total / np.maximum(frequency.to_numpy(), 1), 0.0)
    out = pd.DataFrame(
        {
            "frequency": frequency.to_numpy(),
            "recency": ((last - first) / one_day).to_numpy(dtype=float) / divisor,
            "T": ((as_of_day - first) / one_day).to_numpy(dtype=float) / divisor,
            "monetary_value": monetary,
        },
        index=pd.Index(n_days.index, name="customer_id"),
    )
    return out


# --------------------------------------------------------------------------- benchmark


def _simulate_daily(n: int, bg: BGNBDParams, gg: GammaGammaParams, max_age_days: int, seed: int):
    """n customers of integer ages 1..max_age_days from the two models, times floored to days."""
    rng = np.random.default_rng(seed)
    T = rng.integers(1, max_age_days + 1, n).astype(float)
    lam = rng.gamma(bg.r, 1.0 / bg.alpha, n)
    p = rng.beta(bg.a, bg.b, n)
    dies_at = rng.geometric(p)  # the repeat purchase after which the customer drops out
    arrivals = rng.poisson(lam * T)
    x = np.minimum(dies_at, arrivals)
    pos = x > 0
    t_x = np.zeros(n)
    t_x[pos] = np.floor(T[pos] * rng.beta(x[pos], arrivals[pos] - x[pos] + 1))
    nu = rng.gamma(gg.q, 1.0 / gg.gamma, n)
    m = np.zeros(n)
    m[pos] = rng.gamma(gg.p * x[pos], 1.0 / nu[pos]) / x[pos]
    return x.astype(float), t_x, T, m


def _benchmark(n: int = 1_000_000) -> dict:
    bg_true = BGNBDParams(r=0.6, alpha=60.0, a=0.8, b=3.0)
    gg_true = GammaGammaParams(p=4.0, q=3.5, gamma=40.0)
    t0 = time.perf_counter()
    x, t_x, T, m = _simulate_daily(n, bg_true, gg_true, 730, seed=1)
    t1 = time.perf_counter()
    bg = fit_bgnbd(x, t_x, T)
    t2 = time.perf_counter()
    gg = fit_gamma_gamma(x, m)
    t3 = time.perf_counter()
    alive = p_alive(bg, x, t_x, T)
    e90 = expected_purchases(bg, 90.0, x, t_x, T)
    t4 = time.perf_counter()
    clv = predicted_clv(bg, gg, x, t_x, T, m, horizon=12, discount_rate_per_period=0.01, time_unit=30.0)
    t5 = time.perf_counter()
    return {
        "customers": n,
        "simulate_s": round(t1 - t0, 2),
        "fit_bgnbd_s": round(t2 - t1, 2),
        "bgnbd_rows": bg.n_rows,
        "bgnbd": bg.params,
        "bgnbd_true": bg_true,
        "fit_gamma_gamma_s": round(t3 - t2, 2),
        "gg_rows": gg.n_rows,
        "gamma_gamma": gg.params,
        "gamma_gamma_true": gg_true,
        "fit_total_s": round(t3 - t1, 2),
        "p_alive_and_expected_purchases_s": round(t4 - t3, 2),
        "clv_12x30d_s": round(t5 - t4, 2),
        "mean_p_alive": float(np.mean(alive)),
        "mean_e90": float(np.mean(e90)),
        "mean_clv": float(np.mean(clv)),
    }


if __name__ == "__main__":  # python -m pipeline.clv.models [n_customers]
    for key, value in _benchmark(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000).items():
        print(f"{key}: {value}")
