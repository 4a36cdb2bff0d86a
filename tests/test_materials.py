"""Materials loader: shipped data, interpolation, and error messages that name file and field."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from softgrain.materials.metals import ORIENTATIONS, available_metals, load_metal, load_metal_file
from softgrain.materials.records import MaterialDataError
from softgrain.physics.theory import TheoryParameters

LI_TOML = Path(str(load_metal("Li").source_file))


def li_text() -> str:
    return LI_TOML.read_text(encoding="utf-8")


def write_variant(tmp_path: Path, text: str, name: str = "bad.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def drop_table(text: str, header: str) -> str:
    """Remove one ``[header]`` table (up to the next table header) from a TOML text."""
    pattern = re.compile(rf"^\[{re.escape(header)}\]\n(?:(?!\[).*\n)*", re.MULTILINE)
    out, n = pattern.subn("", text)
    assert n == 1, header
    return out


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


# ---------------------------------------------------------------------------------------------
# Shipped data
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("symbol", available_metals())
def test_shipped_metals_load(symbol):
    metal = load_metal(symbol)
    assert metal.symbol == symbol
    assert set(metal.surface_energy_table) == set(ORIENTATIONS)
    assert set(metal.diffusion_barrier_eV) == set(ORIENTATIONS)
    assert metal.strain_range[0] <= 0.0 <= metal.strain_range[1]


def test_load_metal_case_insensitive():
    assert load_metal("li").symbol == "Li"


def test_li_paper_barriers():
    li = load_metal("Li")
    assert li.barrier("001") == pytest.approx(0.14)  # paper, Fig. 3A parameters
    assert li.barrier("101") == pytest.approx(0.02)  # paper, Fig. 3A parameters


def test_li_strained_calibration_window():
    # dft-values.md: a crossover between 25 and 80 °C needs E_s(001) − E_s(101) in
    # −0.109 … −0.098 J/m² at −3 %, and the unstrained difference in −0.086 … 0 J/m².
    li = load_metal("Li")
    strained = li.surface_energy("001", -0.03) - li.surface_energy("101", -0.03)
    unstrained = li.surface_energy("001", 0.0) - li.surface_energy("101", 0.0)
    assert -0.109 < strained < -0.098
    assert -0.086 < unstrained < 0.0


def test_interpolation_is_linear_between_points():
    li = load_metal("Li")
    for orientation in ORIENTATIONS:
        table = li.surface_energy_table[orientation]
        points = li.strain_points
        for i in range(len(points) - 1):
            for w in (0.0, 0.25, 0.5, 0.9, 1.0):
                strain = (1 - w) * points[i] + w * points[i + 1]
                expected = (1 - w) * table[i] + w * table[i + 1]
                assert li.surface_energy(orientation, strain) == pytest.approx(expected, abs=1e-12)


def test_strain_out_of_range_names_file_and_strain():
    li = load_metal("Li")
    with pytest.raises(MaterialDataError) as info:
        li.surface_energy("001", -0.05)
    message = str(info.value)
    assert "li.toml" in message and "-0.0500" in message


def test_unknown_orientation_names_it():
    with pytest.raises(MaterialDataError, match="'112'"):
        load_metal("Li").surface_energy("112")
    with pytest.raises(MaterialDataError, match="'112'"):
        load_metal("Li").barrier("112")


def test_unknown_metal_names_it():
    with pytest.raises(MaterialDataError, match=r"unknown metal 'Cs'.*Li, Na, K"):
        load_metal("Cs")


# ---------------------------------------------------------------------------------------------
# Bad files
# ---------------------------------------------------------------------------------------------

def test_copy_of_li_loads(tmp_path):
    metal = load_metal_file(write_variant(tmp_path, li_text(), "li-copy.toml"))
    np.testing.assert_allclose(metal.surface_energy_table["101"], load_metal("Li").surface_energy_table["101"])


BAD_VARIANTS = {
    "missing orientation": (
        lambda t: drop_table(t, 'surface_energy."111"'),
        'surface_energy."111"',
    ),
    "negative energy": (
        lambda t: replace_once(t, "values = [0.442, 0.462, 0.470]", "values = [-0.442, 0.462, 0.470]"),
        'surface_energy."001".values',
    ),
    "missing source": (
        lambda t: replace_once(
            t, 'source = "paper, Fig. 3A parameters: lowest barrier (Jäckle et al. 2018)"\n', ""
        ),
        'diffusion_barrier."101".source',
    ),
    "wrong surface-energy unit": (
        lambda t: replace_once(t, 'unit = "J/m^2"', 'unit = "meV/A^2"'),
        "surface_energy.unit",
    ),
    "wrong barrier unit": (
        lambda t: replace_once(t, 'unit = "eV"\nnote', 'unit = "kJ/mol"\nnote'),
        "diffusion_barrier.unit",
    ),
    "strain in percent": (
        lambda t: replace_once(t, "strain = [-0.03, 0.0, 0.03]", "strain = [-3.0, 0.0, 3.0]"),
        "surface_energy.strain",
    ),
    "energy in mJ/m^2": (
        lambda t: replace_once(t, "values = [0.560, 0.540, 0.530]", "values = [560, 540, 530]"),
        'surface_energy."111".values',
    ),
    "unknown label": (
        lambda t: replace_once(t, 'value = 0.14\nlabel = "PAPER"', 'value = 0.14\nlabel = "GUESS"'),
        'diffusion_barrier."001".label',
    ),
    "value not a number": (
        lambda t: replace_once(t, "value = 0.14\n", 'value = "0.14 eV"\n'),
        'diffusion_barrier."001".value',
    ),
    "too few values": (
        lambda t: replace_once(t, "values = [0.545, 0.465, 0.430]", "values = [0.545, 0.465]"),
        'surface_energy."101".values',
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_VARIANTS))
def test_bad_file_message_names_file_and_field(tmp_path, case):
    mutate, field = BAD_VARIANTS[case]
    path = write_variant(tmp_path, mutate(li_text()))
    with pytest.raises(MaterialDataError) as info:
        load_metal_file(path)
    message = str(info.value)
    assert str(path) in message
    assert field in message


def test_malformed_toml_names_file(tmp_path):
    path = write_variant(tmp_path, li_text().replace("[metal]", "[metal", 1))
    with pytest.raises(MaterialDataError) as info:
        load_metal_file(path)
    assert str(path) in str(info.value) and "malformed TOML" in str(info.value)


def test_missing_file_names_it(tmp_path):
    with pytest.raises(MaterialDataError, match="nope.toml"):
        load_metal_file(tmp_path / "nope.toml")


def test_theory_unit_checked_when_parameters_are_read(tmp_path):
    text = replace_once(li_text(), 'value = 10e-6\nunit = "m"\nlabel = "PAPER"\nsource = "paper, Fig. 3A: grain size',
                        'value = 10\nunit = "um"\nlabel = "PAPER"\nsource = "paper, Fig. 3A: grain size')
    path = write_variant(tmp_path, text)
    metal = load_metal_file(path)
    with pytest.raises(MaterialDataError) as info:
        TheoryParameters.from_data(metal)
    assert str(path) in str(info.value) and "theory.grain_size.unit" in str(info.value)


def test_incomplete_theory_section_named(tmp_path):
    path = write_variant(tmp_path, drop_table(li_text(), "theory.beta"))
    with pytest.raises(MaterialDataError) as info:
        TheoryParameters.from_data(load_metal_file(path))
    assert str(path) in str(info.value) and "theory.beta" in str(info.value)
