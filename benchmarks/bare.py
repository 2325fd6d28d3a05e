"""A bare FastAPI endpoint on the gateway's uvicorn settings: the intake baseline.

It reads the same JSON body and answers 201 with a new id, with no
credentials, no validation, no Postgres and no Kafka.

    python -m benchmarks.bare PORT
"""

from __future__ import annotations

import sys
import uuid

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

app = FastAPI()


@app.post("/set/notifier")
async def create_job(request: Request) -> JSONResponse:
    body = await request.json()
    return JSONResponse({"id": str(uuid.uuid4()), "fields": len(body)}, 201)


def main() -> None:
    # The same options as `loopitis gateway` (cli.py).
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
        timeout_keep_alive=75,
    )


if __name__ == "__main__":
    main()
