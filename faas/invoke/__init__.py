"""The path of a call, in the gateway worker: scheduler, warm pool, environments, the Runtime API.

Everything here runs in the one gateway worker process, most of it on the thread of the call
itself (scheduler -> limits -> pool -> environment -> runtime_api/sockio). The CLI never
imports this room.
"""
