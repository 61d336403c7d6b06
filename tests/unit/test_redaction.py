import logging

from gooten_provider.client import GootenClient
from gooten_provider.client.billing_key import billing_key_forms
from gooten_provider.redaction import reveals_secret

KEY = "q+Zb/7Kx9Lm2Pw+Yr4Tn8Vc1Ds6Fg0Hj3Ak5Ml7No9="
URL = (
    "/api/ordersearch?recipeid=r&partnerBillingKey=q%2BZb%2F7Kx9Lm2Pw%2BYr4Tn8Vc1Ds6Fg0Hj3Ak5Ml7No9%3D&page=1"
)


def test_every_urllib3_logger_is_redacted(caplog):
    GootenClient("r", KEY)  # installs the filters
    with caplog.at_level(logging.DEBUG, logger="urllib3"):
        # urllib3.connection logs the whole request target when a response's headers are malformed
        logging.getLogger("urllib3.connection").warning("Failed to parse headers (url=%s): %s", URL, "oops")
        logging.getLogger("urllib3.connectionpool").debug('"GET %s HTTP/1.1" 200 0', URL)
        logging.getLogger("urllib3.util.retry").debug("Incremented Retry for (url='%s'): %r", URL, None)
    assert caplog.text.count("partnerBillingKey=***") == 3
    assert "q%2BZb" not in caplog.text


def test_a_non_ascii_key_percent_encoded_from_latin1_bytes_in_mixed_hex_case_is_revealed():
    key = "Zx+9/aé=B"
    echoed = "Zx%2b9%2Fa%E9%3dB"  # Latin-1 bytes, hex case mixed: no listed form matches it as written
    assert not any(form in echoed for form in billing_key_forms(key))
    assert reveals_secret(f'{{"Message": "The value {echoed} is not valid."}}', [key])
