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
    assert parse_order_ids(given, check_shape=False) == expected


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (None, "No order ids given"),
        (["1-a", None], "Invalid Gooten order id None"),
        (["1-a", ""], "Invalid Gooten order id ''"),
        ([12345], r"Invalid Gooten order id 12345 \(int\)"),
        (12345, r"Invalid order ids 12345 \(int\)"),
        ("['1-a', ", "not a valid list literal"),
        ("None", r"what a template or a serialiser writes for a missing value"),
    ],
)
def test_bad_order_ids_say_what_was_wrong(bad, message):
    with pytest.raises(ValueError, match=message):
        parse_order_ids(bad, check_shape=False)


def test_normalize_order_id_strips():
    assert normalize_order_id("  7-abc ") == "7-abc"


SAFE_A = "115557-b5c97bb2-934d-48aa-9ad2-a565154b5cd4"
SAFE_B = "115558-0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0ff"


def test_safe_ids_pass_the_shape_check_and_duplicates_ignore_letter_case():
    assert parse_order_ids([SAFE_A, SAFE_B.upper(), SAFE_A.upper(), SAFE_B]) == [SAFE_A, SAFE_B.upper()]
    assert parse_order_ids(f"{SAFE_A},\n{SAFE_B}") == [SAFE_A, SAFE_B]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("none", "a missing value"),
        ("NULL", "a missing value"),
        ("undefined", "a missing value"),
        ([SAFE_A, "undefined"], "what a template or a serialiser writes for a missing value"),
        ("{{ ti.xcom_pull('x') }}", "an unrendered template"),
        ([SAFE_A, "{{ params.ids }}"], "an unrendered template"),
        (f"{{'{SAFE_A}', '{SAFE_B}'}}", "a set literal; pass a list"),
        ({SAFE_A, SAFE_B}, "a set, whose order is random"),
        (f"{SAFE_A} {SAFE_B}", "looks like 2 ids joined by spaces"),
        (f"{SAFE_A};{SAFE_B}", "looks like 2 ids joined by spaces"),
        (f"{SAFE_A}\t{SAFE_B}", "looks like 2 ids joined by spaces"),
        (f"{SAFE_A}\u200b", "U\\+200B ZERO WIDTH SPACE at position 44"),
        (f"\x07{SAFE_A}", "U\\+0007"),
        (f"{SAFE_A}\ud800", "a lone surrogate"),
        ("1-a", "does not have the shape of a Gooten Safe ID.*check_order_ids=False"),
        ("115557-b5c97bb2", "does not have the shape"),
    ],
)
def test_ids_that_cannot_be_safe_ids_are_refused_before_any_request(bad, message):
    with pytest.raises(ValueError, match=message):
        parse_order_ids(bad)


def test_the_shape_check_can_be_turned_off_but_not_the_hygiene_checks():
    assert parse_order_ids(["A-1", "a-1", "ORD 7"[:3]], check_shape=False) == ["A-1", "ORD"]
    with pytest.raises(ValueError, match="ZERO WIDTH SPACE"):
        parse_order_ids(["A-1\u200b"], check_shape=False)
