"""What is watched: Prometheus metrics, the dashboard's activity, invocation records.

Listeners on every call's result, in the gateway worker; each costs O(1) per call.
"""
