"""A triggerer in a process of its own, for tests that kill it: ``-m tests.interruption.trigger_child``.

Rebuilds a trigger as the triggerer does, from its class path and the JSON of its kwargs (argv[1]:
``{"classpath": ..., "kwargs": ...}``), runs it in an event loop and prints its first event as JSON. The
connection comes from ``AIRFLOW_CONN_GOOTEN_DEFAULT`` in the environment.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys


def main() -> None:
    args = json.loads(sys.argv[1])
    module, _, name = args["classpath"].rpartition(".")
    trigger = getattr(importlib.import_module(module), name)(**args["kwargs"])

    async def first_event() -> object:
        print(json.dumps({"started": True}), flush=True)
        return (await trigger.run().asend(None)).payload

    print(json.dumps({"event": asyncio.run(first_event())}), flush=True)


if __name__ == "__main__":
    main()
