import pytest

from gooten_provider.statuses import (
    CHANGEABLE_FROM_STATUSES,
    TARGET_STATUSES,
    can_change_from,
    normalize_known_status,
    normalize_target_status,
)


@pytest.mark.parametrize(
    ("given", "expected"),
    [("hold", "Hold"), ("HOLD", "Hold"), (" cancelled ", "Cancelled"), ("new", "New"), ("Test", "Test")],
)
def test_target_status_is_matched_case_insensitively_and_normalised(given, expected):
    assert normalize_target_status(given) == expected


@pytest.mark.parametrize("bad", ["Canceled", "Shipped", "", "Pending", None, 3])
def test_invalid_target_status_names_the_allowed_values(bad):
    with pytest.raises(ValueError, match="Invalid Gooten target status") as info:
        normalize_target_status(bad)
    for name in TARGET_STATUSES:
        assert name in str(info.value)


def test_the_nine_statuses_gooten_allows_a_change_from():
    assert len(CHANGEABLE_FROM_STATUSES) == 9
    assert "Hold" not in CHANGEABLE_FROM_STATUSES
    assert "ReadyForImageDl" in CHANGEABLE_FROM_STATUSES


def test_can_change_from_needs_every_item_eligible():
    assert can_change_from(["New", "AddressIssue"])
    assert not can_change_from(["New", "InProduction"])
    assert not can_change_from(["Hold"])
    assert not can_change_from([])


def test_known_status_lookup():
    assert normalize_known_status("shipped") == "Shipped"
    assert normalize_known_status("Teleported") is None


def test_aliases_from_gootens_documents():
    assert normalize_known_status("ReadyForImageDI") == "ReadyForImageDl"
    assert normalize_known_status("canceled") == "Cancelled"
