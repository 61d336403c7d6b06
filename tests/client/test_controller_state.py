"""The controller's shared state and the numbers a store keeps of it: the wire format between versions."""

import dataclasses
import json
import math

import pytest

from gooten_provider.client.controller_state import ControllerState

NOW = 1000.0  # times below are exact in binary, so offsets round-trip to the same float


def a_state(*, flags: bool = True, mark: tuple[float, int, int] | None = (980.25, 41, 7)) -> ControllerState:
    """A state with a distinct value in every field (``flags``: every flag set, or none)."""
    return ControllerState(
        paced=flags,
        pace=37.5,
        estimate=42.25,
        margin=0.875,
        hold=3.5,
        upper=45.125,
        last_peak=44.0,
        last_retry_after=1.5 if flags else 0.0,
        probing=flags,
        crossing=flags,
        cut_at=996.5,
        resumed=1001.75,
        last_refused=999.0,
        cut_counts=(120, 9),
        mark=mark,
    )


# What a pacer of the previous release published for a_state() at NOW: a pacer of this release must write
# the same (key by key, in this order, counts as integers) and read it back, or the two cannot share a store.
PREVIOUS_RELEASE_WIRE = (
    '{"paced": 1.0, "pace": 37.5, "estimate": 42.25, "margin": 0.875, "hold": 3.5, "upper": 45.125, '
    '"last_peak": 44.0, "last_retry_after": 1.5, "probing": 1.0, "crossing": 1.0, "cut_at": -3.5, '
    '"resumed": 1.75, "last_refused": -1.0, "cut_accepted": 120, "cut_refused": 9, "mark_ticket": -19.75, '
    '"mark_accepted": 41, "mark_refused": 7}'
)


def every_field(state: ControllerState | None) -> tuple[object, ...] | None:
    # equality leaves some fields out (see ControllerState): a round trip must keep every one
    return None if state is None else dataclasses.astuple(state)


def test_the_numbers_are_the_previous_releases():
    assert json.dumps(a_state().to_values(NOW)) == PREVIOUS_RELEASE_WIRE


def test_the_previous_releases_numbers_read_back_as_the_state():
    values = json.loads(PREVIOUS_RELEASE_WIRE)
    assert every_field(ControllerState.from_values(values, NOW)) == every_field(a_state())


@pytest.mark.parametrize("flags", [True, False], ids=["flags set", "flags clear"])
@pytest.mark.parametrize("mark", [(980.25, 41, 7), None], ids=["with a mark", "without a mark"])
def test_every_field_survives_the_round_trip(flags, mark):
    state = a_state(flags=flags, mark=mark)
    values = state.to_values(NOW)
    assert every_field(ControllerState.from_values(values, NOW)) == every_field(state)
    assert ("mark_ticket" in values) is (mark is not None)


def test_times_travel_as_offsets_from_the_publication():
    # read by a client whose clock reads the publication as 2.0 s later than the publisher's
    read = ControllerState.from_values(a_state().to_values(NOW), NOW + 2.0)
    assert read is not None
    assert (read.cut_at, read.resumed, read.last_refused) == (998.5, 1003.75, 1001.0)
    assert read.mark == (982.25, 41, 7)
    assert (read.pace, read.hold, read.cut_counts) == (37.5, 3.5, (120, 9))  # rates, durations, counts: as is


REQUIRED = [
    "paced", "pace", "estimate", "margin", "hold", "upper", "last_peak", "last_retry_after", "probing",
    "cut_at", "resumed", "last_refused", "cut_accepted", "cut_refused",
]  # fmt: skip


@pytest.mark.parametrize("key", REQUIRED)
def test_a_state_without_one_of_its_numbers_is_not_read(key):
    values = a_state().to_values(NOW)
    del values[key]
    assert ControllerState.from_values(values, NOW) is None


@pytest.mark.parametrize("key", [*REQUIRED, "crossing", "mark_ticket", "mark_accepted", "mark_refused"])
@pytest.mark.parametrize("bad", ["fast", None, [1.0]])
def test_a_state_with_a_value_that_is_no_number_is_not_read(key, bad):
    values: dict[str, object] = dict(a_state().to_values(NOW))
    values[key] = bad
    assert ControllerState.from_values(values, NOW) is None


@pytest.mark.parametrize("key", ["cut_accepted", "cut_refused", "mark_accepted", "mark_refused"])
@pytest.mark.parametrize("bad", [math.inf, math.nan])
def test_a_state_with_a_count_that_is_no_count_is_not_read(key, bad):
    values = a_state().to_values(NOW)
    values[key] = bad
    assert ControllerState.from_values(values, NOW) is None


def test_another_controllers_state_is_not_read():
    # the CUBIC controller's, which a Redis store may hold for an hour after an upgrade
    assert ControllerState.from_values({"learnt": 5.0, "w_max": 6.0}, NOW) is None


def test_a_state_written_before_the_crossing_was_shared_reads_as_not_crossing():
    values = a_state().to_values(NOW)
    del values["crossing"]
    read = ControllerState.from_values(values, NOW)
    assert every_field(read) == every_field(dataclasses.replace(a_state(), crossing=False))


@pytest.mark.parametrize("missing", ["mark_ticket", "mark_accepted", "mark_refused"])
def test_a_mark_missing_a_part_reads_as_no_mark(missing):
    values = a_state().to_values(NOW)
    del values[missing]
    read = ControllerState.from_values(values, NOW)
    assert read is not None
    assert read.mark is None


# The pacer publishes after a 429 when its state is unequal to the one before: these fields make it so ...
COMPARED = {
    "pace": 1.0, "estimate": 1.0, "margin": 0.5, "hold": 9.0, "upper": 1.0, "crossing": False, "cut_at": 1.0,
    "resumed": 1.0, "last_refused": 1.0, "mark": None,
}  # fmt: skip
# ... and these never did alone (the release before this record compared a tuple of the others)
NOT_COMPARED = {
    "paced": False, "last_peak": 1.0, "last_retry_after": 0.0, "probing": False, "cut_counts": (0, 0),
}  # fmt: skip


@pytest.mark.parametrize(("field", "value"), COMPARED.items())
def test_a_change_of_what_the_pacer_publishes_on_makes_another_state(field, value):
    assert dataclasses.replace(a_state(), **{field: value}) != a_state()


@pytest.mark.parametrize(("field", "value"), NOT_COMPARED.items())
def test_a_change_of_the_rest_alone_makes_no_other_state(field, value):
    assert dataclasses.replace(a_state(), **{field: value}) == a_state()


def test_every_field_is_either_compared_or_not():
    assert COMPARED.keys() | NOT_COMPARED.keys() == {f.name for f in dataclasses.fields(ControllerState)}
