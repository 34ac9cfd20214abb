"""gunicorn settings for running the gateway by hand:

    FAAS_STATE_DIR=... gunicorn -c gateway/gunicorn.conf.py

`faas up` uses the same settings through gateway.server.serve(). One worker (the
Platform is in-process state), a thread per connection, at most Config.threads requests at once, the app built in the
worker after fork, the platform shut down by worker_exit and leftovers removed by
on_exit. Config comes from faas.yaml and the FAAS_* variables, read when gunicorn
starts (this file is executed then, not imported by faas).
"""

from faas.config import Config
from gateway.server import settings

wsgi_app = "gateway.app:create_app()"
globals().update(settings(Config.load()))
