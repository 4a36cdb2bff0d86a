"""Thermodynamic theory (paper Eq. S1–S11) against the paper's Fig. 3A statements and limits."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from softgrain.physics import theory
from softgrain.errors import UserInputError
from softgrain.materials.constants import BOLTZMANN_EV_K, ZERO_CELSIUS_K
from softgrain.materials.metals import load_metal
from softgrain.physics.theory import (
    ELECTROLYTE_STRAIN,
    TheoryParameters,
    critical_thickness,
    crossover_temperature,
    diffusivity,
    energy_difference,
    intrinsic_strain,
    rank_orientations,
    strain_energy_difference,
    surface_energy_difference,
)

PAIR = ("001", "101")
FIG3A_RANGE_C = np.arange(-20.0, 100.0 + 1e-9, 5.0)  # paper Fig. 3A temperature axis


@pytest.fixture(scope="module")
def params() -> TheoryParameters:
    return TheoryParameters.from_data("Li")


def eq_s10_plain(e1: float, e2: float, t_c: float) -> float:
    """Eq. S10 + S11 written out with the Fig. 3A constants of the paper, independent of softgrain."""
    sigma_y = 0.55e6          # Pa, paper Experimental Procedures
    eps_t, eps_c = 0.2, -0.2  # paper: maximum tensile / compressive strain 0.2
    d0 = 1e-15                # m²/s, paper
    beta = 1.0                # paper
    grain, rate = 10e-6, 1e-9  # L = 10 µm, R = 0.001 µm/s, paper
    k_b = 8.617333262e-5      # eV/K, CODATA 2018
    t_k = t_c + 273.15
    x1 = beta * d0 * math.exp(-e1 / (k_b * t_k)) / (grain * rate)
    x2 = beta * d0 * math.exp(-e2 / (k_b * t_k)) / (grain * rate)
    return sigma_y * (eps_t - eps_c) * (math.exp(-x1) - math.exp(-x2))


# ---------------------------------------------------------------------------------------------
# Parameters
# ---------------------------------------------------------------------------------------------

def test_parameters_from_data_are_fig3a(params):
    assert params.yield_strength_Pa == pytest.approx(0.55e6)
    assert params.tensile_strain == pytest.approx(0.2)
    assert params.compressive_strain == pytest.approx(-0.2)
    assert params.diffusion_prefactor_m2_s == pytest.approx(1e-15)
    assert params.beta == pytest.approx(1.0)
    assert params.grain_size_m == pytest.approx(10e-6)
    assert params.thickness_m == pytest.approx(10e-6)
    assert params.deposition_rate_m_s == pytest.approx(1e-9)
    assert params.strain_energy_amplitude == pytest.approx(0.55e6 * 0.4)


@pytest.mark.parametrize("metal", ["Na", "K"])
def test_na_k_fall_back_to_li_fig3a_values(metal, params):
    assert TheoryParameters.from_data(metal) == params


def test_from_data_overrides(params):
    p = TheoryParameters.from_data("Li", thickness_m=20e-6)
    assert p.thickness_m == 20e-6
    assert p.grain_size_m == params.grain_size_m


@pytest.mark.parametrize(
    "field, value",
    [
        ("yield_strength_Pa", 0.0),
        ("diffusion_prefactor_m2_s", -1e-15),
        ("beta", 0.0),
        ("grain_size_m", -1.0),
        ("thickness_m", 0.0),
        ("deposition_rate_m_s", -1e-9),
        ("thickness_m", float("nan")),
        ("beta", "one"),
    ],
)
def test_invalid_parameter_named(params, field, value):
    with pytest.raises(UserInputError, match=field):
        params.replace(**{field: value})


def test_tensile_must_exceed_compressive(params):
    with pytest.raises(UserInputError, match="tensile_strain"):
        params.replace(tensile_strain=-0.3)


def test_unknown_override_named():
    with pytest.raises(UserInputError, match="grain_sise"):
        TheoryParameters.from_data("Li", grain_sise=1.0)


# ---------------------------------------------------------------------------------------------
# The paper's Fig. 3A findings with the shipped data
# ---------------------------------------------------------------------------------------------

def test_liquid_favours_101_everywhere(params):
    d = energy_difference("Li", PAIR, FIG3A_RANGE_C, "liquid", params)
    assert np.all(d.delta_f_strain_J_m3 > 0)
    assert np.all(d.delta_gamma_J_m3 < 0)
    assert np.all(np.abs(d.delta_gamma_J_m3) < d.delta_f_strain_J_m3)
    assert np.all(d.delta_u_J_m3 > 0)
    assert set(d.favoured) == {"101"}
    assert crossover_temperature("Li", PAIR, "liquid", params) is None


def test_solid_crosses_over_between_25_and_80_C(params):
    cold = energy_difference("Li", PAIR, 25.0, "solid", params)
    hot = energy_difference("Li", PAIR, 80.0, "solid", params)
    assert cold.delta_u_J_m3 < 0 and cold.favoured == "001"
    assert hot.delta_u_J_m3 > 0 and hot.favoured == "101"
    t_x = crossover_temperature("Li", PAIR, "solid", params)
    assert t_x is not None and 25.0 < t_x < 80.0
    at = energy_difference("Li", PAIR, t_x, "solid", params)
    assert abs(at.delta_u_J_m3) < 1e-6 * abs(at.delta_f_strain_J_m3)


def test_solid_terms_comparable(params):
    # Paper, Fig. 3A discussion: in the solid case ΔΓ and ΔF_strain are "comparable".
    d = energy_difference("Li", PAIR, 25.0, "solid", params)
    assert 0.5 < abs(d.delta_gamma_J_m3) / d.delta_f_strain_J_m3 < 2


@pytest.mark.parametrize(
    "t_c, reference",
    # dft-values.md: Eq. S10 with the Fig. 3A parameters
    [(-20.0, 8.59e3), (25.0, 9.78e3), (80.0, 1.09e4), (100.0, 1.12e4)],
)
def test_strain_energy_matches_eq_s10(params, t_c, reference):
    li = load_metal("Li")
    e1, e2 = li.barrier("001"), li.barrier("101")
    got = energy_difference("Li", PAIR, t_c, "liquid", params).delta_f_strain_J_m3
    assert got == pytest.approx(eq_s10_plain(e1, e2, t_c), rel=1e-6)
    assert got == pytest.approx(reference, rel=0.01)


def test_electrolyte_strain_mapping():
    assert ELECTROLYTE_STRAIN == {"liquid": 0.0, "solid": -0.03}
    assert theory.resolve_strain("Solid") == -0.03
    assert theory.resolve_strain(-0.015) == -0.015
    with pytest.raises(UserInputError, match="gel"):
        theory.resolve_strain("gel")


def test_continuous_strain_interpolates_surface_term(params):
    li = load_metal("Li")
    d = energy_difference("Li", PAIR, 25.0, -0.015, params)
    expected = (li.surface_energy("001", -0.015) - li.surface_energy("101", -0.015)) / params.thickness_m
    assert d.delta_gamma_J_m3 == pytest.approx(expected)
    lo = energy_difference("Li", PAIR, 25.0, "solid", params).delta_gamma_J_m3
    hi = energy_difference("Li", PAIR, 25.0, "liquid", params).delta_gamma_J_m3
    assert d.delta_gamma_J_m3 == pytest.approx((lo + hi) / 2)


def test_rows_match_json_contract(params):
    rows = energy_difference("Li", PAIR, [25.0, 80.0], "solid", params).rows()
    assert [r["temperature_C"] for r in rows] == [25.0, 80.0]
    assert [r["favoured"] for r in rows] == ["001", "101"]
    for r in rows:
        assert r["delta_u_J_m3"] == pytest.approx(r["delta_gamma_J_m3"] + r["delta_f_strain_J_m3"])


# ---------------------------------------------------------------------------------------------
# Limits and sign conventions
# ---------------------------------------------------------------------------------------------

def test_intrinsic_strain_limits(params):
    assert intrinsic_strain(0.0, params) == pytest.approx(params.tensile_strain)
    assert intrinsic_strain(1e-20, params) == pytest.approx(params.tensile_strain, abs=1e-5)
    assert intrinsic_strain(1e-6, params) == pytest.approx(params.compressive_strain)
    d = np.logspace(-20, -8, 50)
    assert np.all(np.diff(intrinsic_strain(d, params)) <= 0)


def test_diffusivity_arrhenius(params):
    t_k = 298.15
    assert diffusivity(0.0, t_k, 1e-15) == pytest.approx(1e-15)
    assert diffusivity(0.14, t_k, 1e-15) == pytest.approx(1e-15 * math.exp(-0.14 / (BOLTZMANN_EV_K * t_k)))
    assert diffusivity([0.02, 0.14], t_k, 1e-15).shape == (2,)
    with pytest.raises(UserInputError, match="absolute zero"):
        diffusivity(0.1, 0.0, 1e-15)


def test_faster_grain_has_lower_strain_energy(params):
    # Eq. S10: D1 > D2 (lower barrier) → ΔF_strain < 0.
    assert strain_energy_difference(0.02, 0.14, 298.15, params) < 0
    assert strain_energy_difference(0.14, 0.02, 298.15, params) > 0
    assert strain_energy_difference(0.1, 0.1, 298.15, params) == 0


def test_surface_energy_difference_units():
    # 0.1 J/m² over 10 µm is 1e4 J/m³ (MODEL.md §1 sanity scale).
    assert surface_energy_difference(0.5, 0.4, 10e-6) == pytest.approx(1e4)
    with pytest.raises(UserInputError, match="thickness"):
        surface_energy_difference(0.5, 0.4, 0.0)


def test_thick_film_removes_surface_term(params):
    thick = params.replace(thickness_m=1.0)
    d = energy_difference("Li", PAIR, 25.0, "solid", thick)
    assert abs(d.delta_gamma_J_m3) < 1e-3 * d.delta_f_strain_J_m3
    assert d.delta_u_J_m3 == pytest.approx(d.delta_f_strain_J_m3, rel=1e-3)


@pytest.mark.parametrize("strain", ["liquid", "solid", 0.02])
def test_swapping_pair_flips_sign(params, strain):
    t = np.array([-20.0, 25.0, 80.0])
    a = energy_difference("Li", ("001", "101"), t, strain, params)
    b = energy_difference("Li", ("101", "001"), t, strain, params)
    np.testing.assert_allclose(a.delta_u_J_m3, -b.delta_u_J_m3)
    np.testing.assert_allclose(a.delta_gamma_J_m3, -b.delta_gamma_J_m3)
    assert list(a.favoured) == list(b.favoured)


def test_critical_thickness_balances_terms(params):
    h = critical_thickness("Li", PAIR, 25.0, "solid", params)
    assert h is not None and h > 0
    # ΔΓ(h*) + ΔF = 0; thinner → surface term (001) wins, thicker → (101).
    at = energy_difference("Li", PAIR, 25.0, "solid", params.replace(thickness_m=h))
    assert abs(at.delta_u_J_m3) < 1e-9 * at.delta_f_strain_J_m3
    assert energy_difference("Li", PAIR, 25.0, "solid", params.replace(thickness_m=0.5 * h)).favoured == "001"
    assert energy_difference("Li", PAIR, 25.0, "solid", params.replace(thickness_m=2 * h)).favoured == "101"


def test_critical_thickness_none_when_terms_agree(params):
    # (111) vs (101): both its surface energy and its barrier are higher, so no thickness saves it.
    assert critical_thickness("Li", ("111", "101"), 25.0, "solid", params) is None


def test_rank_orientations(params):
    ranked = rank_orientations("Li", 25.0, "solid", params)
    assert [r.orientation for r in ranked][0] == "001"
    assert ranked[-1].orientation == "111"
    assert [r.orientation for r in rank_orientations("Li", 25.0, "liquid", params)][0] == "101"
    by_name = {r.orientation: r.delta_u_J_m3 for r in ranked}
    assert by_name["001"] == 0.0
    assert by_name["101"] == pytest.approx(-energy_difference("Li", PAIR, 25.0, "solid", params).delta_u_J_m3)


def test_crossover_none_without_sign_change_and_bracket_validated(params):
    assert crossover_temperature("Li", PAIR, "solid", params, bracket=(60.0, 100.0)) is None
    with pytest.raises(UserInputError, match="bracket"):
        crossover_temperature("Li", PAIR, "solid", params, bracket=(50.0, 20.0))


def test_crossover_bracket_clipped_at_melting_point(params):
    # K melts at 63.4 °C (pymatgen/WebElements): the default (−100, 300) °C bracket must not
    # evaluate the theory for the liquid metal.
    assert crossover_temperature("K", PAIR, "solid") is None


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"pair": ("001", "123")}, "'123'"),
        ({"pair": ("001", "100")}, "different"),
        ({"pair": ("001",)}, "two"),
        ({"temperature_C": 200.0}, "melting point"),
        ({"temperature_C": -300.0}, "absolute zero"),
        ({"strain": 0.1}, r"\+0\.1000"),
    ],
)
def test_energy_difference_rejects_bad_input(params, kwargs, match):
    args = {"metal": "Li", "pair": PAIR, "temperature_C": 25.0, "strain": 0.0, "params": params}
    args.update(kwargs)
    with pytest.raises(UserInputError, match=match):
        energy_difference(**args)


def test_orientation_equivalents():
    assert theory.normalise_orientation("(100)") == "001"
    assert theory.normalise_orientation("110") == "101"
    assert theory.normalise_orientation("011") == "101"
    assert theory.normalise_orientation("111") == "111"


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------

barriers = st.floats(min_value=0.0, max_value=0.5, allow_nan=False)
temps_k = st.floats(min_value=150.0, max_value=450.0, allow_nan=False)


@settings(max_examples=150, deadline=None)
@given(e1=barriers, e2=barriers, t_k=temps_k)
def test_strain_energy_antisymmetric_bounded_and_signed(params, e1, e2, t_k):
    f12 = strain_energy_difference(e1, e2, t_k, params)
    f21 = strain_energy_difference(e2, e1, t_k, params)
    assert f12 == pytest.approx(-f21, abs=1e-9)
    assert abs(f12) <= params.strain_energy_amplitude
    if e1 > e2:
        assert f12 >= 0  # slower grain 1 stores more strain energy


@settings(max_examples=60, deadline=None)
@given(e1=st.floats(min_value=0.12, max_value=0.4), e2=st.floats(min_value=0.01, max_value=0.04))
def test_strain_energy_rises_with_temperature(params, e1, e2):
    # Paper: "ΔF_strain is positive and rises as temperature increases". This holds when the
    # mobile grain's barrier is thermally active (E_a2 ≳ 0.01 eV here) and E_a1 ≫ k_BT; it is
    # not universal (for E_a2 = 0, D_2 no longer grows with T and ΔF_strain falls).
    t_k = np.linspace(-50.0, 150.0, 81) + ZERO_CELSIUS_K
    f = strain_energy_difference(e1, e2, t_k, params)
    assert np.all(f > 0)
    assert np.all(np.diff(f) > 0)


@settings(max_examples=60, deadline=None)
@given(t_c=st.floats(min_value=-100.0, max_value=150.0), strain=st.floats(min_value=-0.03, max_value=0.03))
def test_energy_difference_is_sum_of_parts(params, t_c, strain):
    d = energy_difference("Li", PAIR, t_c, strain, params)
    assert d.delta_u_J_m3 == pytest.approx(d.delta_gamma_J_m3 + d.delta_f_strain_J_m3)
    assert d.favoured == ("001" if d.delta_u_J_m3 < 0 else "101" if d.delta_u_J_m3 > 0 else "tie")
