"""One rule for status names, the operator's and the sensor's: Gooten's spelling in any letter case; another
spelling, even one from Gooten's documents (``Canceled``), is refused with the status it stands for."""

from __future__ import annotations

import jinja2
import pytest

from gooten_provider.operators.gooten import GootenOrderStatusOperator
from gooten_provider.sensors.gooten import GootenOrderStatusSensor

SAFE_ID = "115557-b5c97bb2-934d-48aa-9ad2-a565154b5cd4"


def operator(status):
    return GootenOrderStatusOperator(task_id="set_status", order_ids=[SAFE_ID], status=status)


def sensor(**kwargs):
    return GootenOrderStatusSensor(task_id="wait", order_id=SAFE_ID, **kwargs)


@pytest.mark.parametrize("spelling", ["Canceled", "canceled", " CANCELED "])
@pytest.mark.parametrize(
    "give",
    [
        pytest.param(lambda name: operator(name), id="operator status"),
        pytest.param(lambda name: sensor(target_statuses=[name], failure_statuses=()), id="sensor target"),
        pytest.param(
            lambda name: sensor(target_statuses=["Shipped"], failure_statuses=[name]), id="sensor failure"
        ),
        pytest.param(
            lambda name: sensor(target_statuses=[name], failure_statuses=(), allow_unknown_statuses=True),
            id="sensor, unknown statuses allowed",
        ),
    ],
)
def test_another_spelling_is_refused_by_both_with_gootens(give, spelling):
    with pytest.raises(ValueError, match=r"Did you mean 'Cancelled'\?") as refused:
        give(spelling)
    assert repr(spelling) in str(refused.value)


@pytest.mark.parametrize("spelling", ["cancelled", "CANCELLED", " Cancelled "])
def test_gootens_spelling_in_any_case_is_accepted_by_both(spelling):
    assert operator(spelling).status == "Cancelled"
    assert sensor(target_statuses=[spelling], failure_statuses=()).target_statuses == ("Cancelled",)


def test_a_close_typo_gets_the_suggestion_too():
    with pytest.raises(ValueError, match=r"'Shiped' is not a Gooten status known.*Did you mean 'Shipped'\?"):
        sensor(target_statuses=["Shiped"])
    with pytest.raises(ValueError, match=r"status 'Hld'.*Did you mean 'Hold'\?"):
        operator("Hld")
    with pytest.raises(ValueError) as far:
        operator("Paused")
    assert "Did you mean" not in str(far.value)


def test_a_templated_status_rendering_another_spelling_fails_at_run_before_any_request(api, ti):
    op = operator("{{ params.status }}")
    op.render_template_fields({"params": {"status": "Canceled"}}, jinja_env=jinja2.Environment())
    with pytest.raises(ValueError, match=r"status 'Canceled'.*Did you mean 'Cancelled'\?"):
        op.execute({"ti": ti})
    assert api.journal == []
