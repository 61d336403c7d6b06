import logging

from gooten_provider.client import GootenClient

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
