"""What importing the provider loads: a DAG file that uses the operator is parsed often, so it must not pull
in the HTTP stack (requests, urllib3), which the hook loads only when it first talks to Gooten."""

import subprocess
import sys


def test_importing_the_operator_and_sensor_loads_no_http_stack():
    code = (
        "import sys, airflow.sdk\n"
        "before = {m for m in ('requests', 'urllib3') if m in sys.modules}\n"
        "import gooten_provider.operators.gooten, gooten_provider.sensors.gooten\n"
        "print(sorted({m for m in ('requests', 'urllib3') if m in sys.modules} - before))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert loaded.stdout.strip().splitlines()[-1] == "[]"
