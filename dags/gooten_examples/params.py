"""The trigger-form fields several example DAGs ask for alike: the Gooten order ids.

Each DAG calls :func:`order_ids_param` for its own ``Param`` (a DAG's params are its own objects); Airflow
is imported only then, as the package's other modules keep it out of their imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Param

#: The field's help text where a DAG has nothing to add.
ORDER_IDS_DESCRIPTION = "Gooten order ids (Safe IDs), one per line."


def order_ids_param(description: str = ORDER_IDS_DESCRIPTION, *, required: bool = True) -> Param:
    """The ``order_ids`` field: a list of Gooten order ids, none of them empty, one per line in the form.

    :param description: the help text under the field.
    :param required: the form refuses an empty list; ``False`` for a DAG that also runs without ids (on
        events, say).
    """
    from airflow.providers.common.compat.sdk import Param  # the same name on every Airflow 3 line

    at_least_one = {"minItems": 1} if required else {}
    return Param(
        [],
        type="array",
        items={"type": "string", "minLength": 1},
        **at_least_one,
        title="Order ids",
        description=description,
    )
