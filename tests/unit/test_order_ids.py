from collections import UserList

import pytest

from gooten_provider.order_ids import normalize_order_id, parse_order_ids


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("1-a", ["1-a"]),
        (["1-a", "1-b", "1-a"], ["1-a", "1-b"]),
        (("1-b", " 1-a "), ["1-b", "1-a"]),
        ("['1-a', '1-b']", ["1-a", "1-b"]),
        ("1-a, 1-b,1-c", ["1-a", "1-b", "1-c"]),
        ("1-a\n1-b\n\n1-a\n", ["1-a", "1-b"]),
        ([], []),
        (UserList(["1-b", "1-a", "1-b"]), ["1-b", "1-a"]),  # any sequence, e.g. Airflow's lazy XCom sequence
        (iter(["1-c"]), ["1-c"]),
        ("[]", []),
        ("", []),
    ],
)
def test_parse_order_ids(given, expected):
    assert parse_order_ids(given) == expected


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (None, "No order ids given"),
        (["1-a", None], "Invalid Gooten order id None"),
        (["1-a", ""], "Invalid Gooten order id ''"),
        ([12345], r"Invalid Gooten order id 12345 \(int\)"),
        (12345, r"Invalid order ids 12345 \(int\)"),
        ("['1-a', ", "not a valid list literal"),
        ("None", r"the template rendered nothing \(None\)"),
    ],
)
def test_bad_order_ids_say_what_was_wrong(bad, message):
    with pytest.raises(ValueError, match=message):
        parse_order_ids(bad)


def test_normalize_order_id_strips():
    assert normalize_order_id("  7-abc ") == "7-abc"
