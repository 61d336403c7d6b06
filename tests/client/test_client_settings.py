"""One settings object: every client setting's default and check, the hook's merge, the connection form."""

import math

import pytest

from gooten_provider.client.settings import CONNECTION_EXTRAS, SETTINGS, ClientSettings
from gooten_provider.exceptions import GootenConfigurationError
from gooten_provider.get_provider_info import CONNECTION_TYPE

KEY = "q+Zb/7Kx9Lm2Pw+Yr4Tn8Vc1Ds6Fg0Hj3Ak5Ml7No9="
_SCHEMA_TYPES = {"number": "number", "whole": "integer", "bool": "boolean"}


@pytest.mark.parametrize("name", CONNECTION_EXTRAS)
def test_the_connection_forms_field_schema_is_the_settings_own(name):
    setting = SETTINGS[name]
    schema = CONNECTION_TYPE["conn-fields"][name]["schema"]
    assert schema["type"] == [_SCHEMA_TYPES[setting.kind], "null"]
    if setting.kind == "bool":
        assert schema["default"] is setting.default
        return
    assert schema["minimum"] == setting.minimum and not setting.above_minimum
    assert schema.get("maximum", math.inf) == setting.maximum


def test_the_form_offers_every_extra_the_client_reads_and_nothing_else_of_the_clients():
    client_fields = set(CONNECTION_TYPE["conn-fields"]) - {"admin_order_url", "rate_limit_conn_id"}
    assert client_fields == set(CONNECTION_EXTRAS)


def test_an_argument_wins_over_an_extra_which_wins_over_the_default():
    settings = ClientSettings.merged(
        recipe_id=" r ",
        billing_key=KEY,
        base_url=None,
        port=None,
        arguments={"timeout": 5, "max_retries": None},
        extras={"timeout": "12", "max_retries": "1", "adaptive_rate": "off"},
    )
    assert (settings.timeout, settings.max_retries, settings.adaptive_rate) == (5.0, 1, False)
    assert (settings.backoff_factor, settings.throttle_timeout) == (0.5, 300.0)  # defaults
    assert settings.recipe_id == "r" and settings.base_url == "https://api.print.io"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("timeout", 0),
        ("timeout", math.nan),
        ("max_retries", 11),
        ("max_retries", 2.5),
        ("max_retries", True),
        ("backoff_factor", -1),
        ("throttle_timeout", math.inf),
        ("adaptive_rate", "no"),
        ("pool_maxsize", 0),
        ("requests_per_second", 0),
    ],
)
def test_every_setting_is_checked_once_with_a_message_that_says_what_is_allowed(name, value):
    with pytest.raises(GootenConfigurationError, match=rf"^{name} must be .*, got {value!r}\.$"):
        ClientSettings("r", KEY, **{name: value})
    with pytest.raises(GootenConfigurationError, match=rf"^{name} must be"):
        ClientSettings.check_arguments(**{name: value})


def test_an_extra_written_as_text_is_named_in_the_error_as_written():
    with pytest.raises(
        GootenConfigurationError, match=r"^Gooten connection 'g': extra 'max_retries' .*'11'\.$"
    ):
        ClientSettings.merged(
            recipe_id="r",
            billing_key=KEY,
            base_url=None,
            port=None,
            arguments={},
            extras={"max_retries": "11"},
            extras_from="Gooten connection 'g'",
        )


def test_the_key_stays_out_of_the_repr():
    assert KEY not in repr(ClientSettings("r", KEY)) and "q+Zb" not in repr(ClientSettings("r", KEY))
