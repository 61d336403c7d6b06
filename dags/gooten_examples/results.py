"""Where the example DAGs keep their Gooten results files (``results_path`` of ``GootenOrderStatusOperator``).

The root is the Airflow Variable ``gooten_results_root`` (a URI: ``file:///...``, ``s3://conn_id@bucket/...``);
``make demo`` and ``make airflow`` point it at their own folder. Each task instance of each run gets its
own folder under it, so a retry of the task resumes from its own records.
"""

from __future__ import annotations

#: Used when the Variable is not set.
DEFAULT_RESULTS_ROOT = "file:///tmp/gooten-results"

#: A templated ``results_path``: ``<root>/<dag_id>/<run_id>/<task_id>[/<map_index>]``.
RESULTS_PATH = (
    "{{ var.value.get('gooten_results_root', '" + DEFAULT_RESULTS_ROOT + "') }}"
    "/{{ dag.dag_id }}/{{ run_id }}/{{ task.task_id }}"
    "{% if ti.map_index is not none and ti.map_index >= 0 %}/{{ ti.map_index }}{% endif %}"
)
