"""The baseline for throughput and warm latency: a bare Flask route under gunicorn, with no
container behind it, answering what functions/hello answers.

bench/invoke.py runs it as `gunicorn --chdir bench -w 1 --threads 8 flask_baseline:app`
(gunicorn's threaded worker, one process: the shape of the faas gateway before its own
worker) and loads it with the same client and load generator as faas, in the same run.
"""

from __future__ import annotations

import json

from flask import Flask, Response, request

app = Flask(__name__)


@app.post("/2015-03-31/functions/<name>/invocations")
def invoke(name: str) -> Response:
    event = json.loads(request.get_data() or b"{}")
    who = event.get("name") or "world"
    return Response(json.dumps({"message": f"Hello, {who}!"}), mimetype="application/json")
