import logging
from urllib.parse import quote, quote_plus

from gooten_provider.client.billing_key import billing_key_forms, prepare_billing_key

KEY = "q+Zb/7Kx9Lm2Pw+Yr4Tn8Vc1Ds6Fg0Hj3Ak5Ml7No9="


def test_raw_key_is_kept(caplog):
    with caplog.at_level(logging.WARNING):
        assert prepare_billing_key(f" {KEY} ") == KEY
    assert not caplog.records


def test_pre_encoded_key_is_decoded_once_with_a_warning_that_shows_no_part_of_it(caplog):
    with caplog.at_level(logging.WARNING):
        assert prepare_billing_key(quote(KEY, safe="")) == KEY
    assert "looks URL-encoded already" in caplog.text
    for fragment in (KEY[:6], quote(KEY, safe="")[:8], "Zb", "No9"):
        assert fragment not in caplog.text


def test_forms_cover_raw_encoded_and_double_encoded():
    forms = billing_key_forms(KEY)
    assert {KEY, quote(KEY, safe=""), quote_plus(KEY), quote(quote(KEY, safe=""), safe="")} <= set(forms)
    assert list(forms) == sorted(forms, key=len, reverse=True)  # longest first, so redaction is complete


def test_forms_cover_quote_with_its_default_safe_slash_and_lower_case_hex():
    forms = set(billing_key_forms(KEY))
    assert quote(KEY) in forms  # keeps "/" as is
    assert quote(quote(KEY)) in forms
    lower_hex = quote(KEY, safe="").replace("%2B", "%2b").replace("%2F", "%2f").replace("%3D", "%3d")
    assert lower_hex in forms


def test_forms_cover_a_non_ascii_key_percent_encoded_from_utf8_and_from_latin1_bytes_in_either_hex_case():
    key = "Zx+9/aé=B"
    forms = set(billing_key_forms(key))
    latin1 = quote(key, safe="", encoding="latin-1")
    assert latin1 == "Zx%2B9%2Fa%E9%3DB"
    assert {latin1, "Zx%2b9%2fa%e9%3dB"} <= forms  # upper- and lower-case hex
    assert {"Zx%2B9%2Fa%C3%A9%3DB", "Zx%2b9%2fa%c3%a9%3dB"} <= forms  # the UTF-8 bytes, as sent
    assert {quote_plus(key, encoding="latin-1"), quote(latin1, safe="")} <= forms


def test_a_key_latin1_cannot_encode_has_only_its_utf8_forms():
    forms = set(billing_key_forms("ab€"))
    assert forms == {"ab€", "ab%E2%82%AC", "ab%e2%82%ac", "ab%25E2%2582%25AC"}
