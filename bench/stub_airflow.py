"""A stand-in of the three routes of Airflow's REST API the relay uses, for the accept benchmark.

``python -m bench.stub_airflow --port N`` answers ``POST /auth/token``, ``GET /api/v2/assets`` (one asset,
``gooten://orders``, id 1) and ``POST /api/v2/assets/events`` (counted, with the time each arrived), at
once. It lets the benchmark load the relay with its whole work, delivery included, without a real
Airflow competing for the same two cores; the delay to a real Airflow is measured separately.
``GET /stats`` returns ``{"events": n, "arrivals": [unix times]}``.
"""

from __future__ import annotations

import argparse
import time

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

ARRIVALS: list[float] = []


async def token(request: Request) -> JSONResponse:
    return JSONResponse({"access_token": "stub-token"}, status_code=201)


async def assets(request: Request) -> JSONResponse:
    return JSONResponse({"assets": [{"id": 1, "uri": "gooten://orders"}], "total_entries": 1})


async def events(request: Request) -> JSONResponse:
    await request.body()
    ARRIVALS.append(time.time())
    return JSONResponse({"id": len(ARRIVALS), "asset_id": 1})


async def stats(request: Request) -> JSONResponse:
    return JSONResponse({"events": len(ARRIVALS), "arrivals": ARRIVALS})


app = Starlette(
    routes=[
        Route("/auth/token", token, methods=["POST"]),
        Route("/api/v2/assets", assets, methods=["GET"]),
        Route("/api/v2/assets/events", events, methods=["POST"]),
        Route("/stats", stats, methods=["GET"]),
    ]
)

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    port = parser.parse_args().port
    uvicorn.run(app, host="127.0.0.1", port=port, access_log=False, log_level="warning")
