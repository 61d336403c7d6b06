import pytest

from gooten_provider.client.base_url import DEFAULT_BASE_URL, normalize_base_url
from gooten_provider.exceptions import GootenConfigurationError


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        (None, None, DEFAULT_BASE_URL),
        ("", None, DEFAULT_BASE_URL),
        ("api.print.io", None, "https://api.print.io"),
        ("staging-api.print.io", 8443, "https://staging-api.print.io:8443"),
        ("https://api.print.io/", None, "https://api.print.io"),
        ("https://api.print.io/api/", None, "https://api.print.io"),
        ("https://api.print.io:444", 8443, "https://api.print.io:444"),
        ("http://127.0.0.1:8089", None, "http://127.0.0.1:8089"),
        ("http://localhost", 8089, "http://localhost:8089"),
        ("http://[::1]:8089", None, "http://[::1]:8089"),
        ("https://proxy.example.com/gooten", None, "https://proxy.example.com/gooten"),
    ],
)
def test_base_url_forms(host, port, expected):
    assert normalize_base_url(host, port) == expected


@pytest.mark.parametrize("host", ["http://api.print.io", "http://10.0.0.5:8080", "HTTP://example.com"])
def test_plain_http_is_refused_for_hosts_that_are_not_loopback(host):
    with pytest.raises(GootenConfigurationError, match=r"Refusing plain http:// .* travel unencrypted"):
        normalize_base_url(host)


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("ftp://api.print.io", "scheme must be https"),
        ("https://user:pw@api.print.io", "give only scheme://host"),
        ("https://api.print.io/?partnerBillingKey=x", "give only scheme://host"),
        ("https://api.print.io:notaport", "Invalid Gooten API base URL"),
    ],
)
def test_malformed_base_urls(host, message):
    with pytest.raises(GootenConfigurationError, match=message) as info:
        normalize_base_url(host)
    assert "user:pw" not in str(info.value)
    assert "partnerBillingKey=x" not in str(info.value)
