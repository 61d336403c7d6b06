"""The words the operator and the connection read alike: one boolean parser, one template detector."""

import pytest

from gooten_provider.client.settings import SETTINGS
from gooten_provider.exceptions import GootenConfigurationError
from gooten_provider.operators.gooten import GootenOrderStatusOperator

ORDER = "115557-b5c97bb2-934d-48aa-9ad2-a565154b5cd4"


def operator_reads(word):
    try:
        GootenOrderStatusOperator(task_id="t", order_ids=[ORDER], status="Hold", dry_run=word)
    except ValueError:
        return "refused"
    return "accepted"


def extra_reads(word):
    try:
        SETTINGS["adaptive_rate"].parse(word)
    except GootenConfigurationError:
        return "refused"
    return "accepted"


@pytest.mark.parametrize(
    "word", ["true", "False", " yes ", "NO", "y", "N", "on", "off", "1", "0", "maybe", "none", "2", "t"]
)
def test_dry_run_and_a_boolean_extra_accept_the_same_words(word):
    assert operator_reads(word) == extra_reads(word)


@pytest.mark.parametrize(
    "status", ["{{ params.status }}", "{% if params.hold %}Hold{% else %}Cancelled{% endif %}"]
)
def test_a_templated_status_is_checked_when_rendered_not_when_the_dag_is_parsed(status):
    operator = GootenOrderStatusOperator(task_id="t", order_ids=[ORDER], status=status)
    assert operator.status == status
