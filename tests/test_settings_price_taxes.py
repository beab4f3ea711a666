"""`VOLTLINE_PRICE_CHARGES` and `VOLTLINE_PRICE_VAT`: spec/smart-charging.md R-63's per-zone consumer-price config."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from voltline.cli import main
from voltline.domain.prices import NO_TAXES
from voltline.errors import SettingsError
from voltline.settings import load_settings


def test_without_the_variables_no_zone_pays_charges_or_vat() -> None:
    """spec/smart-charging.md R-63: charges and VAT default to 0."""
    settings = load_settings({})
    assert (settings.price_charges, settings.price_vat) == ("", "")
    assert settings.consumer_taxes == NO_TAXES
    assert settings.consumer_taxes.consumer_price("NL", Decimal(100)) == Decimal(100)


def test_zone_lists_are_read_upper_cased_and_a_missing_zone_means_zero() -> None:
    """spec/smart-charging.md R-63: `ZONE=decimal` lists; the two lists need not name the same zones."""
    settings = load_settings(
        {"VOLTLINE_PRICE_CHARGES": "nl=0.1228, DE-LU=0.15", "VOLTLINE_PRICE_VAT": "NL=0.21,se3=0.25"}
    )
    taxes = settings.consumer_taxes
    assert taxes.charges == {"NL": Decimal("0.1228"), "DE-LU": Decimal("0.15")}
    assert taxes.vat == {"NL": Decimal("0.21"), "SE3": Decimal("0.25")}
    assert taxes.consumer_price("NL", Decimal(100)) == Decimal("269.588")  # (0.1 + 0.1228) x 1.21
    assert taxes.consumer_price("DE-LU", Decimal(100)) == Decimal(250)  # 0.1 + 0.15, no VAT configured
    assert taxes.consumer_price("SE3", Decimal(100)) == Decimal(125)  # no charges configured
    assert taxes.consumer_price("FR", Decimal(100)) == Decimal(100)


def test_explicit_overrides_are_checked_like_the_environment() -> None:
    """The settings the tests and the CLI pass as overrides go through the same checks."""
    assert load_settings({}, price_vat="NL=0.21").consumer_taxes.vat == {"NL": Decimal("0.21")}
    with pytest.raises(SettingsError, match="VOLTLINE_PRICE_VAT: NL: 21 is out of range"):
        load_settings({}, price_vat="NL=21")


@pytest.mark.parametrize(
    ("name", "value", "text"),
    [
        ("VOLTLINE_PRICE_CHARGES", "NL", "VOLTLINE_PRICE_CHARGES: 'NL' is not ZONE=decimal"),
        ("VOLTLINE_PRICE_CHARGES", "NL=abc", "VOLTLINE_PRICE_CHARGES: NL: 'abc' is not a decimal number"),
        ("VOLTLINE_PRICE_CHARGES", "NL=inf", "VOLTLINE_PRICE_CHARGES: NL: 'inf' is not a decimal number"),
        ("VOLTLINE_PRICE_CHARGES", "NL=12.28", "VOLTLINE_PRICE_CHARGES: NL: 12.28 is out of range; use EUR/kWh"),
        ("VOLTLINE_PRICE_CHARGES", "Holland=0.1", "VOLTLINE_PRICE_CHARGES: 'Holland' is not a price zone"),
        ("VOLTLINE_PRICE_VAT", "NL=21", "VOLTLINE_PRICE_VAT: NL: 21 is out of range; use a fraction from 0 to 1"),
        ("VOLTLINE_PRICE_VAT", "NL=-0.21", "VOLTLINE_PRICE_VAT: NL: -0.21 is out of range"),
        ("VOLTLINE_PRICE_VAT", "NL=nan", "VOLTLINE_PRICE_VAT: NL: 'nan' is not a decimal number"),
        ("VOLTLINE_PRICE_VAT", "NL=0.21,NL=0.19", "VOLTLINE_PRICE_VAT: zone NL is listed twice"),
    ],
)
def test_bad_zone_lists_raise_a_clear_settings_error(name: str, value: str, text: str) -> None:
    """spec/smart-charging.md R-63: a malformed configuration stops the start with the variable's name."""
    with pytest.raises(SettingsError, match=text):
        load_settings({name: value})


def test_the_cli_refuses_to_start_with_one_line_naming_the_variable(tmp_path: Path) -> None:
    """A bad setting is a one-line error and exit code 2, as for every other setting."""
    runner = CliRunner(
        env={"VOLTLINE_DATA_DIR": str(tmp_path / "data"), "VOLTLINE_DATABASE_URL": "", "VOLTLINE_PRICE_VAT": "NL=21"}
    )
    result = runner.invoke(main, ["tokens", "list", "--email", "ops@example.com"], catch_exceptions=False)
    assert result.exit_code == 2
    # The message is one line; the console may wrap it at the terminal's width.
    text = " ".join(result.output.split())
    assert text == "error: VOLTLINE_PRICE_VAT: NL: 21 is out of range; use a fraction from 0 to 1 (0.21, not 21)"
