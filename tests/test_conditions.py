"""Stack pressure and substrate → lattice strain (softgrain.physics.conditions) and the [conditions] config section."""

from __future__ import annotations

import json
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from softgrain import cli
from softgrain.config import load_config, validate_config
from softgrain.errors import ConfigError, UserInputError
from softgrain.materials.records import LABELS
from softgrain.materials.substrates import load_bulk_moduli, load_strain_mapping, substrate_bulk_modulus
from softgrain.physics.conditions import lattice_strain, modulus_factor, pressure_factor
from softgrain.setup import build, material_inputs

FULL = load_strain_mapping().full_strain.value
B_LI = load_bulk_moduli()["Li"].value
B_CU = load_bulk_moduli()["Cu"].value


def test_mapping_constants_carry_labels_and_sources():
    mapping = load_strain_mapping()
    for quantity in (mapping.full_strain, mapping.full_strain_pressure_MPa):
        assert quantity.label in LABELS and quantity.source.strip()
    assert mapping.reference_substrate == "Cu" and mapping.reference_source.strip()
    assert FULL == pytest.approx(-0.03)


@pytest.mark.parametrize("pressure", [5.0, 10.0, 50.0, 370.0])
def test_cu_at_high_pressure_gives_the_full_three_percent_compression(pressure):
    assert lattice_strain(pressure, "Cu").strain == pytest.approx(-0.03, abs=1e-15)


@pytest.mark.parametrize("substrate", ["Li", B_LI, "Na", 5.0])
def test_substrate_as_soft_as_li_or_softer_leaves_li_unstrained(substrate):
    assert lattice_strain(50.0, substrate).strain == 0.0


@pytest.mark.parametrize("pressure", [0.0, 0.35, 0.55])
def test_liquid_cell_pressures_below_the_yield_strength_leave_li_unstrained(pressure):
    # 350 kPa is the paper's liquid cell (Fig. S12); Li's yield strength is 0.55 MPa (Fig. 3A).
    assert lattice_strain(pressure, "Cu").strain == 0.0


def test_substrates_stiffer_than_cu_saturate_at_the_data_edge():
    assert lattice_strain(5.0, "Au").strain == pytest.approx(FULL)
    assert lattice_strain(5.0, 1000.0).strain == pytest.approx(FULL)


def test_intermediate_modulus_and_pressure_scale_linearly():
    half_modulus = B_LI + 0.5 * (B_CU - B_LI)
    assert lattice_strain(5.0, half_modulus).strain == pytest.approx(0.5 * FULL)
    result = lattice_strain(0.55 + 0.5 * (5.0 - 0.55), "Cu")
    assert result.pressure_factor == pytest.approx(0.5)
    assert result.strain == pytest.approx(0.5 * FULL)


@settings(max_examples=200, deadline=None)
@given(b1=st.floats(0.1, 400.0), b2=st.floats(0.1, 400.0), p=st.floats(0.0, 100.0))
def test_strain_is_monotone_in_substrate_modulus_and_bounded(b1, b2, p):
    low, high = sorted((b1, b2))
    s_low, s_high = lattice_strain(p, low).strain, lattice_strain(p, high).strain
    assert FULL - 1e-15 <= s_high <= s_low <= 0.0  # stiffer substrate → more compression


@settings(max_examples=200, deadline=None)
@given(p1=st.floats(0.0, 100.0), p2=st.floats(0.0, 100.0))
def test_strain_is_monotone_in_stack_pressure(p1, p2):
    low, high = sorted((p1, p2))
    assert lattice_strain(high, "Cu").strain <= lattice_strain(low, "Cu").strain


def test_factors_reject_bad_input_with_the_value_named():
    with pytest.raises(UserInputError, match="stack_pressure_MPa.*-1"):
        pressure_factor(-1.0, 0.55, 5.0)
    with pytest.raises(UserInputError, match="unknown substrate 'Unobtainium'"):
        substrate_bulk_modulus("Unobtainium")
    with pytest.raises(UserInputError, match="positive"):
        substrate_bulk_modulus(-3.0)
    with pytest.raises(UserInputError):
        substrate_bulk_modulus(True)
    assert modulus_factor(B_CU, B_LI, B_CU) == 1.0


def test_interlayer_material_names_resolve_to_their_moduli():
    assert substrate_bulk_modulus("li0.7si0.3") == pytest.approx(22.0)
    assert substrate_bulk_modulus("Cu") == B_CU


# --- configuration ---------------------------------------------------------------------------

def test_every_solid_preset_takes_its_strain_from_the_cell():
    """li-solid, na-solid, k-solid (and the two EBSD presets) state the cell, not the strain: Cu at
    5 MPa gives exactly the full strain of the data, −0.03, as the presets stated before."""
    for preset in ("li-solid", "na-solid", "k-solid", "li-solid-80c"):
        config = load_config(preset)
        assert config.material.strain is None and config.conditions is not None, preset
        assert (config.conditions.stack_pressure_MPa, config.conditions.substrate) == (5.0, "Cu")
        assert material_inputs(config).strain == FULL == -0.03, preset
    seeded = load_config("li-solid-lixsi")
    assert seeded.conditions is not None and seeded.conditions.substrate == "Li0.7Si0.3"
    assert FULL < material_inputs(seeded).strain < 0.0
    assert abs(material_inputs(seeded).strain) < 0.1 * abs(FULL)
    assert load_config("li-solid-80c").run.temperature_C == 80.0


def test_explicit_strain_together_with_conditions_is_refused():
    with pytest.raises(ConfigError, match=r"material\.strain.*conditions"):
        material_inputs(load_config("li-solid-80c", {"material.strain": -0.01}))
    with pytest.raises(ConfigError, match=r"material\.strain.*conditions"):
        build(load_config("li-solid-80c").updated({"material.strain": -0.01}))
    # A strain equal to the derived one (how older versions recorded it) is accepted.
    assert material_inputs(load_config("li-solid-80c", {"material.strain": -0.03})).strain == -0.03


def test_conditions_in_a_file_set_the_strain(tmp_path):
    path = tmp_path / "soft.toml"
    path.write_text('base = "li-liquid"\n[conditions]\nstack_pressure_MPa = 20.0\nsubstrate = 82.5\n'
                    '[material]\nmetal = "Li"\n', encoding="utf-8")
    # li-liquid sets material.strain = 0.0 explicitly, which conflicts with these conditions.
    with pytest.raises(ConfigError, match="material.strain"):
        material_inputs(load_config(path))
    path.write_text('[conditions]\nstack_pressure_MPa = 20.0\nsubstrate = 82.5\n', encoding="utf-8")
    assert material_inputs(load_config(path)).strain == pytest.approx(0.5 * FULL)


def test_invalid_conditions_name_the_key():
    with pytest.raises(ConfigError, match="conditions.substrate"):
        material_inputs(load_config("li-solid-80c", {"conditions.substrate": "Unobtainium"}))
    with pytest.raises(ConfigError, match="conditions.stack_pressure_MPa"):
        load_config("li-solid-80c", {"conditions.stack_pressure_MPa": -1.0})
    with pytest.raises(ConfigError, match="conditions.colour"):
        load_config("li-solid-80c", {"conditions.colour": "blue"})


def test_changing_conditions_rederives_the_strain_and_stored_configs_validate_again():
    hot = load_config("li-solid-80c")
    soft = hot.updated({"conditions.substrate": "Li0.7Si0.3"})
    assert material_inputs(soft).strain == material_inputs(load_config("li-solid-lixsi")).strain
    assert material_inputs(hot.updated({"run.seed": 7})).strain == material_inputs(hot).strain
    again = validate_config(json.loads(hot.to_json()))
    assert again == hot
    # A configuration stored by an older softgrain records the derived strain beside the
    # conditions: it validates, sets up the same strain, and drops it when the conditions change.
    stored = validate_config({**json.loads(hot.to_json()),
                              "material": {**json.loads(hot.to_json())["material"], "strain": -0.03}})
    assert material_inputs(stored).strain == -0.03
    assert material_inputs(stored.updated({"conditions.substrate": "Li0.7Si0.3"})).strain == \
        material_inputs(soft).strain


def test_cli_exits_2_on_conflicting_strain(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(sys, "argv", ["softgrain", "run", "li-solid-80c", "--out", str(tmp_path / "out"),
                                      "--set", "material.strain=-0.01"])
    with pytest.raises(SystemExit) as info:
        cli.main()
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert "material.strain" in err and len(err.strip().splitlines()) == 1
