"""The HTTP gateway: Lambda's Invoke API, HTTP triggers and the admin API."""
