"""The plausibility rule, table-tested: what each product can send, what moves how fast, when a key is confirmed."""

import pytest

from pvmonit_exporter.ble.plausible import KeyConfirmation, Rating, implausible, jumps, rating_of


@pytest.mark.parametrize(("product", "rating"), [
    ("BlueSolar MPPT 75/15", Rating(amps=15)),
    ("SmartSolar MPPT VE.Can 250/100 rev2", Rating(amps=100)),
    ("SmartSolar MPPT RS 450/200", Rating(amps=200)),
    ("SmartShunt 500A/50mV", Rating(amps=500)),
    ("SmartShunt IP65 1000A/50mV", Rating(amps=1000)),
    ("BMV-712 Smart", Rating()),
    ("Smart Battery Sense", Rating()),
    ("Phoenix Inverter 24V 800VA 230Vac 64k HS", Rating(battery_volts=24, volt_amperes=800, ac_volts=230)),
    ("Smart Phoenix Inverter 12V 3000VA 120V", Rating(battery_volts=12, volt_amperes=3000, ac_volts=120)),
    ("Orion Smart 12V/24V-10A DC-DC Converter", Rating(input_volts=12, battery_volts=24, amps=10)),
    ("Orion Smart 24V/48V-8.5A DC-DC Converter", Rating(input_volts=24, battery_volts=48, amps=8.5)),
    ("Blue Smart IP22 Charger 12/30 (1)", Rating(battery_volts=12, amps=30, outputs=1)),
    ("Blue Smart IP22 Charger 24|16 (3)", Rating(battery_volts=24, amps=16, outputs=3)),
    ("Phoenix Smart IP43 Charger 12/50 (1+1)", Rating(battery_volts=12, amps=50, outputs=2)),
    ("Blue Smart IP65 Charger 12/25", Rating(battery_volts=12, amps=25, outputs=1)),
    ("Skylla-IP65 24V/35A (3)", Rating(battery_volts=24, amps=35, outputs=3)),
    ("IMPULSE-II 24/6 Smart IP44", Rating(battery_volts=24, amps=6)),
    ("Unknown product 0xBEEF", Rating()),
])
def test_rating_from_the_product_name(product: str, rating: Rating) -> None:
    assert rating_of(product) == rating


MPPT_75_15 = Rating(amps=15)
SHUNT_500 = Rating(amps=500)
INVERTER_12_800 = Rating(battery_volts=12, volt_amperes=800, ac_volts=230)
ORION_12_12 = Rating(input_volts=12, battery_volts=12, amps=18)
CHARGER_12_30_1 = Rating(battery_volts=12, amps=30, outputs=1)
CHARGER_12_50_3 = Rating(battery_volts=12, amps=50, outputs=3)

SOLAR = {"CS": "3", "ERR": "0", "V": "13880", "I": "1400", "H20": "3", "PPV": "19", "IL": "0"}
SHUNT = {"V": "12530", "I": "-3125", "CE": "-50000", "SOC": "500", "TTG": "754", "AR": "0", "VS": "12620"}
SENSE = {"V": "12220", "AR": "0", "T": "22.5"}
INVERTER = {"CS": "9", "AR": "0", "V": "12900", "AC_OUT_S": "184", "AC_OUT_V": "23001", "AC_OUT_I": "8"}
ORION = {"CS": "3", "ERR": "0", "DC_IN_V": "1385", "V": "14210", "OR": "0x00000000"}
CHARGER = {"CS": "6", "ERR": "0", "V": "13490", "I": "400", "T": "21"}


@pytest.mark.parametrize(("record", "block", "rating", "nonsense"), [
    # Records as real devices send them make sense, unknown codes included.
    ("solar_charger", SOLAR, MPPT_75_15, ()),
    ("solar_charger", {**SOLAR, "CS": "99", "ERR": "222"}, MPPT_75_15, ()),
    ("battery_monitor", SHUNT, SHUNT_500, ()),
    ("battery_monitor", {**SHUNT, "AR": "5"}, SHUNT_500, ()),
    ("smart_battery_sense", SENSE, Rating(), ()),
    ("inverter", INVERTER, INVERTER_12_800, ()),
    ("dcdc_converter", {**ORION, "OR": "0x00000081"}, ORION_12_12, ()),
    ("ac_charger", CHARGER, CHARGER_12_30_1, ()),
    ("ac_charger", {**CHARGER, "V2": "13500", "I2": "200", "V3": "12900", "I3": "0"}, CHARGER_12_50_3, ()),
    # What the wrong key printed for a solar charger.
    ("solar_charger", {**SOLAR, "V": "120140", "I": "-460900", "PPV": "41753"}, MPPT_75_15,
     ("V 120.14 V", "I -460.9 A", "PPV 41753 W")),
    ("solar_charger", {**SOLAR, "I": "20000"}, MPPT_75_15, ("I 20 A",)),
    ("solar_charger", {**SOLAR, "I": "10000"}, MPPT_75_15, ("V 13.88 V × I 10 A out of PPV 19 W",)),
    ("solar_charger", {**SOLAR, "H20": "65000"}, MPPT_75_15, ("H20 650.00 kWh",)),
    ("solar_charger", SOLAR, MPPT_75_15, ("unused bits clear",)),  # spare_bits_set=False below
    ("battery_monitor", {**SHUNT, "I": "-1500000"}, SHUNT_500, ("I -1500 A",)),
    ("battery_monitor", {**SHUNT, "I": "-1500000"}, Rating(), ()),  # a BMV's shunt can be any size
    ("battery_monitor", {**SHUNT, "AR": "256"}, SHUNT_500, ("AR 256 (bits this product does not have)",)),
    ("battery_monitor", {**SHUNT, "SOC": "1020"}, SHUNT_500, ("SOC 102.0 %",)),
    ("battery_monitor", {**SHUNT, "CE": "-30000000"}, SHUNT_500, ("CE -30000.0 Ah",)),
    ("battery_monitor", {**SHUNT, "VS": "-8000"}, SHUNT_500, ("VS -8 V",)),
    ("battery_monitor", {**SHUNT, "VS": "-20"}, SHUNT_500, ()),  # an empty aux input
    ("battery_monitor", {"V": "12530", "AR": "0", "VM": "13000"}, SHUNT_500, ()),
    ("battery_monitor", {"V": "12530", "AR": "0", "VM": "26000"}, SHUNT_500, ("VM 26 V above V 12.53 V",)),
    ("battery_monitor", {"V": "12530", "AR": "0", "T": "160.5"}, SHUNT_500, ("T 160.5 °C",)),
    ("smart_battery_sense", {**SENSE, "I": "0", "SOC": "500"}, Rating(),
     ("I 0 A (not measured by this product)", "SOC 50.0 % (not measured by this product)")),
    ("inverter", {**INVERTER, "V": "25120"}, INVERTER_12_800, ("V 25.12 V",)),
    ("inverter", {**INVERTER, "AC_OUT_S": "2000", "AC_OUT_I": "87"}, INVERTER_12_800,
     ("AC_OUT_S 2000 VA", "AC_OUT_I 8.7 A")),
    ("inverter", {**INVERTER, "AC_OUT_S": "700"}, INVERTER_12_800,
     ("AC_OUT_S 700 VA ≠ AC_OUT_V 230.01 V × AC_OUT_I 0.8 A",)),
    ("inverter", {**INVERTER, "AR": "16384"}, INVERTER_12_800, ("AR 16384 (bits this product does not have)",)),
    ("dcdc_converter", {**ORION, "OR": "0x00010000"}, ORION_12_12,
     ("OR 0x00010000 (bits this product does not have)",)),
    ("dcdc_converter", {**ORION, "DC_IN_V": "4800"}, ORION_12_12, ("DC_IN_V 48 V",)),
    ("ac_charger", {**CHARGER, "V2": "13500", "I2": "2000"}, CHARGER_12_30_1,
     ("V2 13.5 V (this charger has 1 output)", "I2 2 A (this charger has 1 output)")),
    ("ac_charger", {**CHARGER, "I": "40000", "I2": "30000", "V2": "13000"}, CHARGER_12_50_3,
     ("70 A from outputs rated 50 A in all",)),
    ("ac_charger", {**CHARGER, "V": "60000"}, Rating(), ("V 60 V",)),  # Victron's AC chargers: 12 V and 24 V
])
def test_implausible(record: str, block: dict[str, str], rating: Rating, nonsense: tuple[str, ...]) -> None:
    spare_bits_set = nonsense != ("unused bits clear",)
    assert implausible(record, block, rating, spare_bits_set=spare_bits_set) == nonsense


@pytest.mark.parametrize(("before", "after", "seconds", "moved"), [
    ({"V": "12800"}, {"V": "11200"}, 1, ()),  # an inverter starts
    ({"V": "12800"}, {"V": "25600"}, 1, ("V 12.8 V → 25.6 V",)),
    ({"SOC": "920"}, {"SOC": "1000"}, 1, ()),  # synchronised: 100 % at once
    ({"SOC": "920"}, {"SOC": "400"}, 1, ("SOC 92.0 % → 40.0 %",)),
    ({"T": "22.5"}, {"T": "23"}, 1, ()),
    ({"T": "22.5"}, {"T": "61"}, 1, ("T 22.5 °C → 61 °C",)),
    ({"CE": "-50000"}, {"CE": "0"}, 1, ()),  # synchronised
    ({"CE": "-50000"}, {"CE": "-950000"}, 1, ("CE -50.0 Ah → -950.0 Ah",)),
    ({"CE": "-50000"}, {"CE": "-950000"}, 3600, ()),  # an hour out of range at 900 A
    ({"H20": "120"}, {"H20": "121"}, 1, ()),
    ({"H20": "120"}, {"H20": "0"}, 1, ()),  # a new day
    ({"H20": "120"}, {"H20": "80"}, 1, ("H20 1.20 kWh → 0.80 kWh",)),
    ({"V": "12800"}, {"I": "5000"}, 1, ()),  # nothing in common
])
def test_jumps(before: dict[str, str], after: dict[str, str], seconds: float, moved: tuple[str, ...]) -> None:
    assert jumps(before, after, seconds) == moved


def test_a_key_is_confirmed_by_three_new_adverts_in_a_row() -> None:
    check = KeyConfirmation()
    assert not check.sensible(1, SENSE, 0.0)
    assert check.doubt == "the key looks wrong until 3 adverts in a row make sense (1 so far)"
    assert not check.sensible(1, SENSE, 1.0)  # the same advert again proves nothing
    assert not check.sensible(2, SENSE, 2.0)
    assert check.doubt == "the key looks wrong until 3 adverts in a row make sense (2 so far)"
    assert check.sensible(3, {**SENSE, "V": "12230"}, 3.0)
    assert check.confirmed
    check.nonsense(("V 120.14 V",))  # the device's own odd advert: the key stays confirmed
    assert check.sensible(4, {**SENSE, "V": "24000"}, 4.0)  # a real jump is shown


def test_nonsense_or_a_jump_starts_the_count_again() -> None:
    check = KeyConfirmation()
    check.sensible(1, SENSE, 0.0)
    check.sensible(2, SENSE, 1.0)
    check.nonsense(("V 120.14 V", "T 160.5 °C"))
    assert check.doubt == "the key looks wrong: an advert's values make no sense (V 120.14 V, T 160.5 °C)"
    assert not check.sensible(3, SENSE, 2.0)
    assert not check.sensible(4, SENSE, 3.0)
    assert not check.sensible(5, {**SENSE, "V": "25000"}, 4.0)
    assert check.doubt == "the key looks wrong: values jumped between two adverts (V 12.22 V → 25 V)"
    assert not check.sensible(6, {**SENSE, "V": "25010"}, 5.0)
    assert check.sensible(7, {**SENSE, "V": "25020"}, 6.0)
