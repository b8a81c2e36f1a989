"""Tests for pipeline.clv.models: BG/NBD, Gamma-Gamma and predictive CLV.

The closed forms are checked against the papers' formulas worked step by step here with
scalar `math` code (natural scale, not the module's log-space; the Gaussian hypergeometric
function by its power series, not scipy.special.hyp2f1) and against an independent route
to E[Y(t)]: numerical integration over the posterior of the dropout probability. The fits
are checked by recovering known parameters from simulated customers within 4 standard
errors taken from a numerical Hessian computed here.

References: Fader, Hardie & Lee (2005) "Counting Your Customers the Easy Way" (BG/NBD,
eq. 6 likelihood, eq. 9 E[X(t)], eq. 10 E[Y(t) | x, t_x, T], eq. 11 P(alive)); Fader &
Hardie (2013) "The Gamma-Gamma Model of Monetary Value".
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import integrate

from pipeline.clv import models as clv

# CDNOW estimates reported in Fader, Hardie & Lee (2005), time unit = weeks
R, ALPHA, A, B = 0.243, 4.414, 0.793, 2.426
CDNOW = clv.BGNBDParams(r=R, alpha=ALPHA, a=A, b=B)
# Gamma-Gamma estimates for CDNOW reported in Fader & Hardie's Gamma-Gamma note
P_GG, Q_GG, G_GG = 6.25, 3.74, 15.44
CDNOW_GG = clv.GammaGammaParams(p=P_GG, q=Q_GG, gamma=G_GG)

# three CDNOW-like customers (x, t_x, T), weeks: the first is the paper's worked example
CUSTOMERS = [(2, 30.43, 38.86), (0, 0.0, 38.86), (7, 29.43, 38.86)]


# --------------------------------------------------------------------------- hand-worked formulas


def beta_fn(p: float, q: float) -> float:
    return math.exp(math.lgamma(p) + math.lgamma(q) - math.lgamma(p + q))


def hyp2f1_series(a: float, b: float, c: float, z: float) -> float:
    """Gauss 2F1 by its power series sum_n (a)_n (b)_n / ((c)_n n!) z^n, for 0 <= z < 1."""
    term, total, n = 1.0, 1.0, 0
    while abs(term) > 1e-17 * abs(total) or n < 5:
        term *= (a + n) * (b + n) / ((c + n) * (n + 1)) * z
        total += term
        n += 1
        assert n < 100_000, "series did not converge"
    return total


def hand_likelihood(x: int, t_x: float, T: float) -> float:
    """Eq. 6 on the natural scale: L = B(a,b+x)/B(a,b) G(r+x) alpha^r / (G(r) (alpha+T)^(r+x))
    + [x>0] B(a+1,b+x-1)/B(a,b) G(r+x) alpha^r / (G(r) (alpha+t_x)^(r+x))."""
    gamma_part = math.gamma(R + x) / math.gamma(R) * ALPHA**R
    alive = beta_fn(A, B + x) / beta_fn(A, B) * gamma_part / (ALPHA + T) ** (R + x)
    dead = 0.0
    if x > 0:
        dead = beta_fn(A + 1, B + x - 1) / beta_fn(A, B) * gamma_part / (ALPHA + t_x) ** (R + x)
    return alive + dead


def hand_p_alive(x: int, t_x: float, T: float) -> float:
    """Eq. 11: 1 / (1 + [x>0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x))."""
    if x == 0:
        return 1.0
    return 1.0 / (1.0 + A / (B + x - 1) * ((ALPHA + T) / (ALPHA + t_x)) ** (R + x))


def hand_expected(t: float, x: int, t_x: float, T: float) -> float:
    """Eq. 10: (a+b+x-1)/(a-1) [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z)] * P(alive),
    z = t/(alpha+T+t)."""
    z = t / (ALPHA + T + t)
    f = hyp2f1_series(R + x, B + x, A + B + x - 1, z)
    bracket = 1.0 - ((ALPHA + T) / (ALPHA + T + t)) ** (R + x) * f
    return (A + B + x - 1) / (A - 1) * bracket * hand_p_alive(x, t_x, T)


def hand_expected_new(t: float) -> float:
    """Eq. 9: (a+b-1)/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b; a+b-1; t/(alpha+t))]."""
    return (A + B - 1) / (A - 1) * (1.0 - (ALPHA / (ALPHA + t)) ** R * hyp2f1_series(R, B, A + B - 1, t / (ALPHA + t)))


def integral_expected(params: clv.BGNBDParams, t: float, x: int, t_x: float, T: float) -> float:
    """E[Y(t) | x, t_x, T] without any hypergeometric function. Given alive, the posterior is
    lambda ~ Gamma(r+x, alpha+T) and p ~ Beta(a, b+x) independently, and an alive customer with
    (lambda, p) buys (1/p)(1 - exp(-lambda p t)) times in expectation in the next t; averaging over
    lambda gives (1/p)(1 - ((alpha+T)/(alpha+T+p t))^(r+x)); over p, numerical integration against
    the Beta kernel (quad's algebraic weight p^(a-1) (1-p)^(b+x-1)). Times P(alive)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b

    def given_p(p: float) -> float:
        if p < 1e-12:  # the limit (r+x) t / (alpha+T)
            return (r + x) * t / (alpha + T)
        return -math.expm1(-(r + x) * math.log1p(p * t / (alpha + T))) / p

    value, _ = integrate.quad(
        given_p, 0.0, 1.0, weight="alg", wvar=(a - 1.0, b + x - 1.0), epsabs=0, epsrel=1e-12, limit=200
    )
    alive = 1.0 if x == 0 else 1.0 / (1.0 + a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x))
    return value / beta_fn(a, b + x) * alive


# --------------------------------------------------------------------------- closed forms


def test_log_likelihood_matches_eq6_by_hand():
    got = clv.bgnbd_log_likelihood(CDNOW, *map(np.array, zip(*CUSTOMERS, strict=True)))
    expected = [math.log(hand_likelihood(*c)) for c in CUSTOMERS]
    # worked: customer (2, 30.43, 38.86): ln L = -9.4586..., (0, 0, 38.86): -0.5547..., (7, 29.43, 38.86): -21.863...
    assert got == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx([-9.4586, -0.5547, -21.8633], abs=1e-4)


def test_p_alive_matches_eq11_by_hand_and_is_one_without_repeats():
    x, t_x, T = map(np.array, zip(*CUSTOMERS, strict=True))
    got = clv.p_alive(CDNOW, x, t_x, T)
    assert got == pytest.approx([hand_p_alive(*c) for c in CUSTOMERS], rel=1e-13)
    # worked: 1 / (1 + 0.793/3.426 * (43.274/34.844)^2.243) = 1 / (1 + 0.23147 * 1.6258) = 0.72658...
    assert got[0] == pytest.approx(0.72658, abs=1e-5)
    ages = np.array([0.0, 1.0, 38.86, 500.0, 1e6])
    assert np.all(clv.p_alive(CDNOW, np.zeros(5), np.zeros(5), ages) == 1.0)


def test_expected_purchases_matches_eq10_by_hand_and_the_paper():
    x, t_x, T = map(np.array, zip(*CUSTOMERS, strict=True))
    for t in (1.0, 39.0, 52.0):
        got = clv.expected_purchases(CDNOW, t, x, t_x, T)
        assert got == pytest.approx([hand_expected(t, *c) for c in CUSTOMERS], rel=1e-10)
    # the paper's worked example: 1.226 expected purchases in the next 39 weeks for x=2, t_x=30.43, T=38.86
    assert float(clv.expected_purchases(CDNOW, 39.0, 2, 30.43, 38.86)) == pytest.approx(1.226, abs=1e-3)


def test_expected_purchases_new_matches_eq9_by_hand():
    ts = np.array([0.0, 1.0, 10.0, 39.0, 78.0])
    got = clv.expected_purchases_new(CDNOW, ts)
    assert got[0] == 0.0
    assert got[1:] == pytest.approx([hand_expected_new(t) for t in ts[1:]], rel=1e-10)
    # eq. 9 is eq. 10 for a customer with x = t_x = T = 0
    assert got == pytest.approx(clv.expected_purchases(CDNOW, ts, 0, 0, 0), rel=1e-13)


@pytest.mark.parametrize(
    "params",
    [
        CDNOW,
        clv.BGNBDParams(0.6, 60.0, 1.8, 6.0),
        clv.BGNBDParams(2.0, 10.0, 0.3, 0.5),
        clv.BGNBDParams(1.5, 30.0, 1.0, 4.0),
        clv.BGNBDParams(0.8, 20.0, 1.0004, 2.0),
    ],
)
def test_expected_purchases_against_posterior_integral(params):
    # includes z close to 1 (t >> alpha + T), many purchases (x = 300), and a = 1 (the 0/0 point of eq. 10)
    cases = [
        (2, 30.43, 38.86, 39.0),
        (0, 0.0, 38.86, 5.0),
        (7, 29.43, 38.86, 2000.0),
        (300, 99.0, 100.0, 20.0),
        (300, 99.0, 100.0, 1e5),
        (1, 0.5, 300.0, 1e4),
        (40, 10.0, 60.0, 0.25),
    ]
    for x, t_x, T, t in cases:
        got = float(clv.expected_purchases(params, t, x, t_x, T))
        assert got == pytest.approx(integral_expected(params, t, x, t_x, T), rel=1e-7), (x, t_x, T, t)


def test_gamma_gamma_formulas_by_hand():
    # customer with x = 2 repeat purchases of mean 22.35 (CDNOW customer 1)
    x, m = 2, 22.35
    # note eq.: ln f = ln G(px+q) - ln G(px) - ln G(q) + q ln gamma + (px-1) ln m + px ln x - (px+q) ln(gamma + m x)
    px = P_GG * x
    by_hand = (
        math.lgamma(px + Q_GG)
        - math.lgamma(px)
        - math.lgamma(Q_GG)
        + Q_GG * math.log(G_GG)
        + (px - 1) * math.log(m)
        + px * math.log(x)
        - (px + Q_GG) * math.log(G_GG + m * x)
    )
    assert clv.gamma_gamma_log_likelihood(CDNOW_GG, [x], [m])[0] == pytest.approx(by_hand, rel=1e-13)
    # E[M | x, m] = p (gamma + m x) / (p x + q - 1) = 6.25 * 60.14 / 15.24 = 24.664...
    spend = clv.expected_average_spend(CDNOW_GG, [x, 0], [m, np.nan])
    assert spend[0] == pytest.approx(6.25 * (15.44 + 44.70) / (12.5 + 2.74), rel=1e-13)
    assert spend[0] == pytest.approx(24.664, abs=1e-3)
    # x = 0: the population mean p gamma / (q - 1) = 6.25 * 15.44 / 2.74 = 35.219...
    assert spend[1] == pytest.approx(6.25 * 15.44 / 2.74, rel=1e-13)


def test_gamma_gamma_density_integrates_to_one():
    # the density of the mean m given x, integrated over m, is 1 (checks the x^(px) Jacobian term)
    for x in (1, 3, 10):
        total, _ = integrate.quad(
            lambda m, x=x: math.exp(clv.gamma_gamma_log_likelihood(CDNOW_GG, [x], [m])[0]), 0, np.inf, limit=200
        )
        assert total == pytest.approx(1.0, abs=1e-8)


def test_expected_spend_needs_q_above_one():
    with pytest.warns(RuntimeWarning, match="q = 0.9"):
        spend = clv.expected_average_spend(clv.GammaGammaParams(2.0, 0.9, 10.0), [1, 2], [10.0, 20.0])
    assert np.isnan(spend).all()


# --------------------------------------------------------------------------- shape properties


def test_expected_purchases_increase_with_horizon():
    t = np.linspace(0.0, 400.0, 81)[None, :]
    x = np.array([0, 1, 2, 7, 30, 300])[:, None]
    t_x = np.array([0.0, 5.0, 30.43, 29.43, 38.0, 38.5])[:, None]
    T = np.full_like(t_x, 38.86)
    ey = clv.expected_purchases(CDNOW, t, x, t_x, T)
    assert ey.shape == (6, 81)
    assert np.all(ey[:, 0] == 0.0)
    assert np.all(np.diff(ey, axis=1) > 0)


def test_clv_falls_with_the_discount_rate_and_matches_its_definition():
    x = np.array([0, 2, 7, 1])
    t_x = np.array([0.0, 30.43, 29.43, 5.0])
    T = np.full(4, 38.86)
    m = np.array([0.0, 22.35, 73.74, 11.77])
    values = [
        clv.predicted_clv(CDNOW, CDNOW_GG, x, t_x, T, m, horizon=12, discount_rate_per_period=d, time_unit=4.0)
        for d in (0.0, 0.01, 0.05, 0.2)
    ]
    for lower, higher in zip(values[1:], values[:-1], strict=True):
        assert np.all(lower < higher)
    # d = 0: spend * E[Y(12 * 4 weeks)]; d > 0: the sum of discounted period increments
    spend = clv.expected_average_spend(CDNOW_GG, x, m)
    assert values[0] == pytest.approx(spend * clv.expected_purchases(CDNOW, 48.0, x, t_x, T), rel=1e-12)
    cumulative = np.stack([clv.expected_purchases(CDNOW, 4.0 * k, x, t_x, T) for k in range(13)], axis=1)
    by_definition = spend * (np.diff(cumulative, axis=1) / 1.05 ** np.arange(1, 13)).sum(axis=1)
    assert values[2] == pytest.approx(by_definition, rel=1e-12)
    # x = 0 customers are valued at the population mean spend p gamma/(q-1)
    assert spend[0] == pytest.approx(P_GG * G_GG / (Q_GG - 1))
    assert np.all(clv.predicted_clv(CDNOW, CDNOW_GG, x, t_x, T, m, 0, 0.01) == 0.0)


# --------------------------------------------------------------------------- parameter recovery


def simulate_bgnbd(rng: np.random.Generator, T: np.ndarray, r: float, alpha: float, a: float, b: float):
    """Purchases one at a time (vectorised over customers): exponential gaps at rate lambda, and
    after every repeat purchase the customer drops out with probability p."""
    n = len(T)
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    x = np.zeros(n, dtype=np.int64)
    t_x = np.zeros(n)
    clock = np.zeros(n)
    active = np.ones(n, dtype=bool)
    while active.any():
        idx = np.flatnonzero(active)
        clock[idx] += rng.exponential(1.0 / lam[idx])
        inside = clock[idx] <= T[idx]
        active[idx[~inside]] = False
        buyers = idx[inside]
        x[buyers] += 1
        t_x[buyers] = clock[buyers]
        active[buyers[rng.random(len(buyers)) < p[buyers]]] = False
    return x, t_x


def simulate_mean_spend(rng: np.random.Generator, x: np.ndarray, p: float, q: float, gamma: float):
    """nu ~ Gamma(q, rate gamma) per customer, each repeat transaction ~ Gamma(p, rate nu); mean per customer."""
    nu = rng.gamma(q, 1.0 / gamma, len(x))
    owner = np.repeat(np.arange(len(x)), x)
    values = rng.gamma(p, 1.0 / nu[owner])
    total = np.bincount(owner, weights=values, minlength=len(x))
    return np.where(x > 0, total / np.maximum(x, 1), 0.0)


def hessian_standard_errors(total_ll, estimate: np.ndarray, h: float = 1e-3) -> np.ndarray:
    """SEs of the natural parameters from the central-difference Hessian of -LL in log-parameters."""
    z0 = np.log(estimate)
    k = len(z0)
    f = lambda z: -total_ll(np.exp(z))  # noqa: E731
    hess = np.empty((k, k))
    for i in range(k):
        for j in range(k):
            ei, ej = np.eye(k)[i] * h, np.eye(k)[j] * h
            hess[i, j] = (f(z0 + ei + ej) - f(z0 + ei - ej) - f(z0 - ei + ej) + f(z0 - ei - ej)) / (4 * h * h)
    cov_log = np.linalg.inv(hess)
    return estimate * np.sqrt(np.diag(cov_log))


@pytest.fixture(scope="module")
def simulated():
    rng = np.random.default_rng(20240607)
    n = 12_000
    T = rng.uniform(26.0, 78.0, n)  # weeks since the first purchase, cohorts over a year
    truth_bg = clv.BGNBDParams(r=0.5, alpha=8.0, a=0.7, b=2.5)
    truth_gg = clv.GammaGammaParams(p=6.0, q=4.0, gamma=15.0)
    x, t_x = simulate_bgnbd(rng, T, truth_bg.r, truth_bg.alpha, truth_bg.a, truth_bg.b)
    m = simulate_mean_spend(rng, x, truth_gg.p, truth_gg.q, truth_gg.gamma)
    return {"x": x, "t_x": t_x, "T": T, "m": m, "bg": truth_bg, "gg": truth_gg}


def test_bgnbd_recovers_simulated_parameters(simulated):
    x, t_x, T, truth = simulated["x"], simulated["t_x"], simulated["T"], simulated["bg"]
    fit = clv.fit_bgnbd(x, t_x, T)
    assert fit.converged, fit.message
    assert fit.n_customers == len(x)
    estimate = np.array([fit.params.r, fit.params.alpha, fit.params.a, fit.params.b])
    true = np.array([truth.r, truth.alpha, truth.a, truth.b])
    se = hessian_standard_errors(lambda th: clv.bgnbd_log_likelihood(th, x, t_x, T).sum(), estimate)
    assert np.all(np.abs(estimate - true) < 4 * se), (estimate, true, se)
    assert np.all(np.abs(estimate / true - 1) < 0.5)  # loose absolute sanity bound
    # the module's own SEs (Hessian from its analytic gradient) agree with the ones computed here
    assert [fit.std_errors[k] for k in ("r", "alpha", "a", "b")] == pytest.approx(se, rel=0.02)
    assert fit.log_likelihood == pytest.approx(clv.bgnbd_log_likelihood(fit.params, x, t_x, T).sum(), rel=1e-12)
    # the optimum: every nudge of a parameter lowers the likelihood
    for j in range(4):
        for step in (0.999, 1.001):
            nudged = estimate.copy()
            nudged[j] *= step
            assert clv.bgnbd_log_likelihood(nudged, x, t_x, T).sum() < fit.log_likelihood


def test_gamma_gamma_recovers_simulated_parameters(simulated):
    x, m, truth = simulated["x"], simulated["m"], simulated["gg"]
    fit = clv.fit_gamma_gamma(x, m)  # x = 0 rows are ignored
    assert fit.converged, fit.message
    assert fit.n_customers == int((x > 0).sum())
    estimate = np.array([fit.params.p, fit.params.q, fit.params.gamma])
    true = np.array([truth.p, truth.q, truth.gamma])
    se = hessian_standard_errors(lambda th: np.nansum(clv.gamma_gamma_log_likelihood(th, x, m)), estimate)
    assert np.all(np.abs(estimate - true) < 4 * se), (estimate, true, se)
    assert np.all(np.abs(estimate / true - 1) < 0.5)
    assert [fit.std_errors[k] for k in ("p", "q", "gamma")] == pytest.approx(se, rel=0.02)


def test_weights_compressed_fit_equals_the_uncompressed_fit(simulated):
    # daily-style data with many duplicate rows: floor to whole weeks
    x, t_x, T, m = simulated["x"], np.floor(simulated["t_x"]), np.floor(simulated["T"]), np.round(simulated["m"])
    full = clv.fit_bgnbd(x, t_x, T, compress=False)
    rows = np.column_stack([x, t_x, T])
    uniq, counts = np.unique(rows, axis=0, return_counts=True)
    assert len(uniq) < len(rows) / 2
    weighted = clv.fit_bgnbd(uniq[:, 0], uniq[:, 1], uniq[:, 2], weights=counts, compress=False)
    auto = clv.fit_bgnbd(x, t_x, T)
    assert auto.n_rows == len(uniq)
    for other in (weighted, auto):
        assert other.converged and other.n_customers == full.n_customers == len(x)
        assert other.log_likelihood == pytest.approx(full.log_likelihood, rel=1e-11)
        assert list(other.params.as_dict().values()) == pytest.approx(list(full.params.as_dict().values()), rel=1e-5)
    gg_full = clv.fit_gamma_gamma(x, m, compress=False)
    gg_rows, gg_counts = np.unique(np.column_stack([x, m])[x > 0], axis=0, return_counts=True)
    gg_weighted = clv.fit_gamma_gamma(gg_rows[:, 0], gg_rows[:, 1], weights=gg_counts, compress=False)
    assert gg_weighted.log_likelihood == pytest.approx(gg_full.log_likelihood, rel=1e-11)
    assert list(gg_weighted.params.as_dict().values()) == pytest.approx(
        list(gg_full.params.as_dict().values()), rel=1e-5
    )


def test_penalizer_shrinks_log_shapes(simulated):
    x, t_x, T = simulated["x"], simulated["t_x"], simulated["T"]
    plain = clv.fit_bgnbd(x, t_x, T)
    shrunk = clv.fit_bgnbd(x, t_x, T, penalizer=100.0)
    assert shrunk.converged and shrunk.penalizer == 100.0
    assert shrunk.penalizer_reason == "configured: penalizer = 100"
    # the penalty is on the shapes r, a, b only (alpha is a time scale)
    norm = lambda fit: float(np.sum(np.log([fit.params.r, fit.params.a, fit.params.b]) ** 2))  # noqa: E731
    assert norm(shrunk) < norm(plain)
    assert shrunk.log_likelihood < plain.log_likelihood
    # the fit minimises -LL + lambda * sum(log shape^2): at the penalised optimum every nudge raises it
    z = np.log(list(shrunk.params.as_dict().values()))

    def penalised(z):
        return -clv.bgnbd_log_likelihood(np.exp(z), x, t_x, T).sum() + 100.0 * (z[0] ** 2 + z[2] ** 2 + z[3] ** 2)

    for j in range(4):
        for step in (-1e-3, 1e-3):
            nudged = z.copy()
            nudged[j] += step
            assert penalised(nudged) > penalised(z)


# --------------------------------------------------------------------------- penalty policy


def test_default_fit_is_the_plain_maximum_likelihood(simulated):
    # data simulated from known parameters: plain maximum likelihood converges, so no penalty at all
    x, t_x, T, m = simulated["x"], simulated["t_x"], simulated["T"], simulated["m"]
    for default, plain in (
        (clv.fit_bgnbd(x, t_x, T), clv.fit_bgnbd(x, t_x, T, penalizer=0)),
        (clv.fit_gamma_gamma(x, m), clv.fit_gamma_gamma(x, m, penalizer=0)),
    ):
        assert default.converged, default.message
        assert default.params == plain.params  # exactly, not approximately
        assert default.log_likelihood == plain.log_likelihood
        assert default.penalizer == 0.0
        assert default.penalizer_reason == "none: plain maximum likelihood converged"
        assert plain.penalizer_reason == "none: plain maximum likelihood (penalizer = 0 configured)"


def little_dropout(seed: int = 3, n: int = 3000):
    """Customers who almost never drop out (p ~ Beta(1, 300), mean 0.0033): a, b run off to infinity."""
    rng = np.random.default_rng(seed)
    T = rng.uniform(26.0, 78.0, n)
    x, t_x = simulate_bgnbd(rng, T, 0.8, 10.0, 1.0, 300.0)
    return x, t_x, T


def test_ridge_falls_back_to_the_penalty_and_says_why():
    x, t_x, T = little_dropout()
    plain = clv.fit_bgnbd(x, t_x, T, penalizer=0)
    assert plain.params is None and plain.last_params.b > 1e5
    # Far out on the ridge the curvature is at rounding level: with the sums in another order (OpenBLAS
    # with one thread or several) the last point's Hessian is either barely positive definite with huge
    # standard errors, or not positive definite. Either way the model is not identified, and says so.
    assert plain.problem in (
        "ran off along a ridge (a -> inf, b -> inf)",
        "is not identified (Hessian not positive definite)",
    )
    fit = clv.fit_bgnbd(x, t_x, T)
    assert fit.converged, fit.message
    assert fit.penalizer == clv.FALLBACK_PENALIZER == 0.5
    assert fit.penalizer_reason == f"fallback: plain maximum likelihood {plain.problem}"
    assert fit.message.endswith(f"; penalised (penalizer 0.5) because plain maximum likelihood {plain.problem}")
    assert fit.params == clv.fit_bgnbd(x, t_x, T, penalizer=0.5).params
    # the fallback keeps what the data do determine: the purchase rate r/alpha, and p mostly near 0
    assert fit.params.r / fit.params.alpha == pytest.approx(plain.last_params.r / plain.last_params.alpha, rel=0.01)
    assert fit.params.a / (fit.params.a + fit.params.b) < 0.02
    # a fallback of 0 disables it: no params, and the reason says so
    none = clv.fit_bgnbd(x, t_x, T, fallback_penalizer=0)
    assert none.params is None and none.penalizer == 0
    assert none.penalizer_reason == (
        f"none: plain maximum likelihood {plain.problem}; fallback disabled (fallback_penalizer = 0)"
    )


def test_sample_generator_data_fits_plainly_or_records_the_penalty(tmp_path):
    from datetime import date

    from pipeline.sample.generate import generate

    generate(tmp_path, date(2026, 11, 1), days=1, customers=2000, orders=6000)
    sales = pd.read_csv(tmp_path / "2026-11-01" / "erp_sales.csv", dtype=str, on_bad_lines="skip", engine="python")
    amount = pd.to_numeric(sales.quantity, errors="coerce") * pd.to_numeric(sales.unit_price, errors="coerce")
    rfm = clv.rfm_from_transactions(
        sales.customer_id,
        pd.to_datetime(sales.order_date, errors="coerce", format="mixed"),
        amount,
        pd.Timestamp("2026-11-01"),
        time_unit="weeks",
    )
    rfm = rfm[rfm.monetary_value >= 0]
    x, t_x, T, m = (rfm[c].to_numpy(float) for c in ("frequency", "recency", "T", "monetary_value"))
    for fit, plain in (
        (clv.fit_bgnbd(x, t_x, T), clv.fit_bgnbd(x, t_x, T, penalizer=0)),
        (
            clv.fit_gamma_gamma(np.where(m > 0, x, 0), m),  # as CustomerClv: no free-only repeats
            clv.fit_gamma_gamma(np.where(m > 0, x, 0), m, penalizer=0),
        ),
    ):
        assert fit.converged, fit.message
        if plain.converged:
            assert fit.params == plain.params and fit.penalizer == 0
            assert fit.penalizer_reason == "none: plain maximum likelihood converged"
        else:
            assert fit.penalizer == 0.5 and plain.problem
            assert fit.penalizer_reason == f"fallback: plain maximum likelihood {plain.problem}"


def relative_shift(plain: clv.FitResult, penalised: clv.FitResult) -> float:
    return max(abs(penalised.params.as_dict()[k] / v - 1) for k, v in plain.params.as_dict().items())


def test_penalty_effect_shrinks_as_customers_grow():
    # the same distribution at 500, 5,000 and 50,000 customers (nested samples), fixed lambda:
    # the penalty is on the total -log-likelihood, so the shift from the plain fit falls as 1/n
    rng = np.random.default_rng(20240607)
    n_max = 50_000
    T = rng.uniform(26.0, 78.0, n_max)
    x, t_x = simulate_bgnbd(rng, T, 0.5, 8.0, 0.7, 2.5)
    m = simulate_mean_spend(rng, x, 6.0, 4.0, 15.0)
    lam = clv.FALLBACK_PENALIZER
    bg_shifts, gg_shifts = [], []
    for n in (500, 5_000, 50_000):
        plain, penalised = (
            clv.fit_bgnbd(x[:n], t_x[:n], T[:n], penalizer=0),
            clv.fit_bgnbd(x[:n], t_x[:n], T[:n], penalizer=lam),
        )
        gg_plain, gg_penalised = (
            clv.fit_gamma_gamma(x[:n], m[:n], penalizer=0),
            clv.fit_gamma_gamma(x[:n], m[:n], penalizer=lam),
        )
        assert plain.converged and penalised.converged and gg_plain.converged and gg_penalised.converged
        bg_shifts.append(relative_shift(plain, penalised))
        gg_shifts.append(relative_shift(gg_plain, gg_penalised))
    # measured: BG/NBD 9.4e-2, 1.2e-2, 1.3e-3; Gamma-Gamma 1.2e-1, 1.5e-2, 1.7e-3
    for shifts in (bg_shifts, gg_shifts):
        assert shifts[0] > shifts[1] > shifts[2]
        assert shifts[1] < shifts[0] / 5 and shifts[2] < shifts[1] / 5  # about 1/n
        assert shifts[2] < 0.003


# --------------------------------------------------------------------------- degenerate inputs


@pytest.mark.parametrize(
    ("x", "t_x", "T", "needle"),
    [
        ([], [], [], "at least 20 customers"),
        ([1], [2.0], [5.0], "got 1 customers"),
        ([0] * 100, [0] * 100, [10.0] * 100, "1 distinct frequency"),
        ([3] * 50, [7.0] * 50, [9.0] * 50, "1 distinct frequency"),
        ([0, 1, 2], [0, 1, 2], [3, 3, 3], "got 3 customers"),
        ([np.nan] + [1] * 29, [1.0] * 30, [2.0] * 30, "invalid values in 1 row (first at index 0)"),
        ([1] * 29 + [2], [1.0] * 29 + [np.inf], [2.0] * 30, "invalid values"),
        ([1, 0] * 15, [5.0, 0.0] * 15, [4.0, 4.0] * 15, "invalid values"),  # t_x > T
        ([1.5, 0] * 15, [1.0, 0.0] * 15, [4.0, 4.0] * 15, "invalid values"),  # fractional frequency
        ([-1, 0] * 15, [1.0, 0.0] * 15, [4.0, 4.0] * 15, "invalid values"),
        (["a", "b"], [1, 2], [3, 4], "not numeric"),
        ([1, 2, 3], [1, 2], [3, 4, 5], "differ in length"),
    ],
)
def test_degenerate_bgnbd_inputs_give_no_params(x, t_x, T, needle):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarnings leak either
        fit = clv.fit_bgnbd(x, t_x, T)
    assert fit.params is None and not fit.converged
    assert needle in fit.message
    assert math.isnan(fit.log_likelihood)


def test_unidentified_plain_fit_gives_no_params_without_the_fallback():
    x, t_x, T = [0] * 19 + [1], [0] * 19 + [1.0], [3.0] * 20
    plain = clv.fit_bgnbd(x, t_x, T, penalizer=0)
    assert plain.params is None and "not identified" in plain.message and math.isnan(plain.log_likelihood)
    # by default the weak prior decides what 20 customers with one repeat purchase can not, and says so
    fallback = clv.fit_bgnbd(x, t_x, T)
    assert fallback.converged and fallback.penalizer == 0.5
    assert fallback.penalizer_reason == f"fallback: plain maximum likelihood {plain.problem}"


def test_penalizer_must_be_a_number_at_least_zero():
    for bad in (-0.1, math.nan, math.inf):
        with pytest.raises(ValueError, match="penalizer must be a finite number >= 0"):
            clv.fit_bgnbd([0, 1] * 15, [0, 1.0] * 15, [3.0] * 30, penalizer=bad)
        with pytest.raises(ValueError, match="fallback_penalizer must be a finite number >= 0"):
            clv.fit_gamma_gamma([1, 2] * 15, [3.0, 4.0] * 15, fallback_penalizer=bad)


def test_minimum_size_message_is_explicit():
    fit = clv.fit_bgnbd([0, 1, 2], [0, 1, 2], [3, 3, 3])
    assert fit.message == (
        "BG/NBD needs at least 20 customers with at least 2 distinct frequencies; "
        "got 3 customers and 3 distinct frequencies"
    )


@pytest.mark.parametrize(
    ("x", "m", "needle"),
    [
        ([], [], "at least 10 repeat customers"),
        ([0] * 50, [0.0] * 50, "got 0 repeat customers"),
        ([1, 2, 0] * 3, [5.0, 6.0, 0.0] * 3, "got 6 repeat customers"),
        ([2] * 40, [25.0] * 40, "1 distinct value"),
        ([1] * 20, [np.nan] + [3.0] * 19, "invalid values"),
        ([1] * 20, [0.0] + [3.0] * 19, "invalid values"),
        ([1] * 20, [np.inf] + [3.0] * 19, "invalid values"),
    ],
)
def test_degenerate_gamma_gamma_inputs_give_no_params(x, m, needle):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = clv.fit_gamma_gamma(x, m)
    assert fit.params is None and not fit.converged
    assert needle in fit.message


def test_predictions_without_params_are_nan():
    failed_bg = clv.fit_bgnbd([1], [1.0], [2.0])
    failed_gg = clv.fit_gamma_gamma([1], [3.0])
    x, t_x, T, m = np.array([0, 1, 2]), np.array([0.0, 1.0, 2.0]), np.array([3.0, 3.0, 3.0]), np.array([0, 5.0, 6.0])
    for result in (
        clv.p_alive(failed_bg, x, t_x, T),
        clv.expected_purchases(failed_bg, 10.0, x, t_x, T),
        clv.expected_purchases(None, 10.0, x, t_x, T),
        clv.bgnbd_log_likelihood(None, x, t_x, T),
        clv.expected_average_spend(failed_gg, x, m),
        clv.predicted_clv(failed_bg, CDNOW_GG, x, t_x, T, m, 12, 0.01),
        clv.predicted_clv(CDNOW, failed_gg, x, t_x, T, m, 12, 0.01),
    ):
        assert result.shape == (3,) and np.isnan(result).all()
    assert np.isnan(clv.expected_purchases_new(None, [1.0, 2.0])).all()


def test_invalid_rows_give_nan_only_for_those_rows():
    x = np.array([2, np.nan, 1, 0])
    t_x = np.array([30.43, 1.0, 50.0, 0.0])  # third: t_x > T
    T = np.array([38.86, 38.86, 38.86, 38.86])
    got = clv.expected_purchases(CDNOW, 39.0, x, t_x, T)
    assert np.isnan(got[[1, 2]]).all() and np.isfinite(got[[0, 3]]).all()
    assert np.isnan(clv.p_alive(CDNOW, x, t_x, T)[[1, 2]]).all()
    assert np.isnan(clv.expected_purchases(CDNOW, -1.0, 2, 30.43, 38.86))


# --------------------------------------------------------------------------- transactions -> summary


@pytest.fixture
def transactions():
    rows = [
        # customer A: 2024-01-01 twice (one purchase day worth 15), then 01-08 (20) and 01-15 (30)
        ("A", "2024-01-01 10:00", 10.0),
        ("A", "2024-01-01 15:30", 5.0),
        ("A", "2024-01-08 09:00", 20.0),
        ("A", "2024-01-15 18:00", 30.0),
        # customer B: a single purchase
        ("B", "2024-01-10 12:00", 40.0),
        # customer C: 01-20 (8), 01-27 twice (12 + 4 = 16), and 02-05 after as_of (ignored)
        ("C", "2024-01-27 08:00", 12.0),
        ("C", "2024-01-20 08:00", 8.0),
        ("C", "2024-01-27 20:00", 4.0),
        ("C", "2024-02-05 10:00", 100.0),
        # customer D: only after as_of, so absent
        ("D", "2024-02-02 10:00", 7.0),
    ]
    ids, dates, amounts = zip(*rows, strict=True)
    return list(ids), pd.to_datetime(list(dates)), list(amounts)


def test_rfm_from_transactions_in_days(transactions):
    summary = clv.rfm_from_transactions(*transactions, as_of="2024-01-31")
    assert list(summary.index) == ["A", "B", "C"]
    assert list(summary.columns) == ["frequency", "recency", "T", "monetary_value"]
    # A: purchase days 01-01, 01-08, 01-15 -> frequency 2; recency 01-15 - 01-01 = 14 days;
    #    T = 01-31 - 01-01 = 30 days; monetary = mean(20, 30) = 25 (first day's 15 excluded)
    # B: frequency 0, recency 0, T = 01-31 - 01-10 = 21 days, monetary 0
    # C: purchase days 01-20, 01-27 (02-05 is after as_of) -> frequency 1; recency 7; T = 11; monetary 16
    expected = pd.DataFrame(
        {
            "frequency": [2, 0, 1],
            "recency": [14.0, 0.0, 7.0],
            "T": [30.0, 21.0, 11.0],
            "monetary_value": [25.0, 0.0, 16.0],
        },
        index=pd.Index(["A", "B", "C"], name="customer_id"),
    )
    pd.testing.assert_frame_equal(summary, expected)


def test_rfm_from_transactions_in_weeks(transactions):
    summary = clv.rfm_from_transactions(*transactions, as_of=pd.Timestamp("2024-01-31 23:59"), time_unit="weeks")
    # the same day counts divided by 7: A recency 2 weeks, T 30/7; B T 3 weeks; C recency 1 week, T 11/7
    assert summary["frequency"].tolist() == [2, 0, 1]
    assert summary["recency"].to_numpy() == pytest.approx([2.0, 0.0, 1.0])
    assert summary["T"].to_numpy() == pytest.approx([30 / 7, 3.0, 11 / 7])
    assert summary["monetary_value"].to_numpy() == pytest.approx([25.0, 0.0, 16.0])


def test_rfm_from_transactions_edge_cases(transactions):
    ids, dates, amounts = transactions
    empty = clv.rfm_from_transactions(ids, dates, amounts, as_of="2023-12-31")
    assert empty.empty and list(empty.columns) == ["frequency", "recency", "T", "monetary_value"]
    with pytest.raises(ValueError, match="time_unit"):
        clv.rfm_from_transactions(ids, dates, amounts, as_of="2024-01-31", time_unit="months")
    # the summary feeds the fits directly (too small to fit: a message, not an exception)
    summary = clv.rfm_from_transactions(ids, dates, amounts, as_of="2024-01-31")
    fit = clv.fit_bgnbd(summary["frequency"], summary["recency"], summary["T"])
    assert fit.params is None and "got 3 customers" in fit.message


# --------------------------------------------------------------------------- scale


def test_fit_and_predict_scale_with_duplicates():
    # 200,000 daily customers compress to far fewer distinct rows; the whole run stays well under 10 s
    rng = np.random.default_rng(7)
    n = 200_000
    T = rng.integers(1, 366, n).astype(float)
    x, t_x = simulate_bgnbd(rng, T, 0.6, 60.0, 0.8, 3.0)
    t_x = np.floor(t_x)
    fit = clv.fit_bgnbd(x, t_x, T)
    assert fit.converged and fit.n_rows < n / 2
    assert fit.seconds < 5
    m = simulate_mean_spend(rng, x, 4.0, 3.5, 40.0)
    gg = clv.fit_gamma_gamma(x, m)
    values = clv.predicted_clv(fit, gg, x, t_x, T, m, horizon=12, discount_rate_per_period=0.01, time_unit=30.0)
    assert values.shape == (n,) and np.isfinite(values).all() and (values >= 0).all()


# --------------------------------------------------------------------------- the CustomerClv task


def test_customer_clv_records_the_penalizer_used_and_why(warehouse, query, luigi_setting, tmp_path):
    from datetime import date

    from pipeline.core import db
    from pipeline.operations.maintenance import rerun
    from pipeline.operations.runner import run_pipeline
    from pipeline.sample.generate import generate

    landing = tmp_path / "landing"
    generate(landing, date(2026, 11, 1), days=1, customers=2000, orders=6000)
    result = run_pipeline(date(2026, 11, 1), landing=landing, trigger="test")
    assert result.success
    # refit here on the summary the task read: the same decision, penalizer and reason
    x, t_x, T, m = (
        np.array(column, dtype=float)
        for column in zip(
            *query("select frequency, recency, t, monetary_value from gold.customer_clv order by customer_id"),
            strict=True,
        )
    )
    expected = {"bg_nbd": clv.fit_bgnbd(x, t_x, T), "gamma_gamma": clv.fit_gamma_gamma(np.where(m > 0, x, 0), m)}
    stored = {
        model: (penalizer, reason, params)
        for model, penalizer, reason, params in query(
            "select model, penalizer, penalizer_reason, params from gold.clv_model where as_of_date = '2026-11-01'"
        )
    }
    assert set(stored) == set(expected)
    for model, fit in expected.items():
        penalizer, reason, params = stored[model]
        assert fit.converged, fit.message
        assert (penalizer, reason) == (fit.penalizer, fit.penalizer_reason)
        assert params == pytest.approx(fit.params.as_dict(), rel=1e-4)
        assert reason.startswith(
            "none: plain maximum likelihood converged" if penalizer == 0 else "fallback: plain maximum likelihood "
        )
    message = next(t["message"] for t in result.tasks if t["task_family"] == "CustomerClv")
    assert message == (
        "CLV fits: BG/NBD "
        + ("no penalty" if stored["bg_nbd"][0] == 0 else f"penalizer {stored['bg_nbd'][0]:g}")
        + f" ({stored['bg_nbd'][1]}); Gamma-Gamma "
        + ("no penalty" if stored["gamma_gamma"][0] == 0 else f"penalizer {stored['gamma_gamma'][0]:g}")
        + f" ({stored['gamma_gamma'][1]})"
    )
    # the console's model list carries them
    console_sql = (db.SQL_DIR / "console" / "clv_models.sql").read_text()
    assert [(row[0], row[5], row[6]) for row in query(console_sql)] == [
        (model, *stored[model][:2]) for model in ("bg_nbd", "gamma_gamma")
    ]

    # [clv] penalizer configured: always that one, and the reason says so
    luigi_setting("clv", "penalizer", 2.0)
    result = rerun("CustomerClv", date(2026, 11, 1), downstream=False, landing=landing, trigger="test")
    assert result.success
    assert query("select model, penalizer, penalizer_reason from gold.clv_model order by model") == [
        ("bg_nbd", 2.0, "configured: penalizer = 2"),
        ("gamma_gamma", 2.0, "configured: penalizer = 2"),
    ]
