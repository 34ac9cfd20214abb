"""Web pages on this machine cannot drive the gateway: Host and Origin checks (gateway/browser_guard.py)."""

from __future__ import annotations

import pytest

from gateway.app import create_app
from gateway.browser_guard import BrowserGuard, BrowserRefused
from tests.fakes import FakePlatform

GUARD = BrowserGuard(["localhost", "127.0.0.1", "devbox", "faas.internal"])


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1:8080",
        "127.0.0.1",
        "[::1]:8080",
        "10.1.2.3:80",
        "localhost:8080",
        "LOCALHOST",
        "app.localhost:9000",
        "devbox:8080",
        "faas.internal",
        "localhost.:8080",
        "",
    ],
)
def test_names_of_this_gateway_pass(host: str) -> None:
    GUARD.check("/ui/api/overview", host, None)


@pytest.mark.parametrize(
    "host", ["evil.example:8080", "evil.example", "127.0.0.1.evil.example", "localhost.evil.example:80", "devbox.evil"]
)
def test_other_names_are_refused_on_every_route_but_function_urls(host: str) -> None:
    for path in ("/ui/api/overview", "/system/functions", "/2015-03-31/functions", "/2015-03-31/functions/f/invocations"):
        with pytest.raises(BrowserRefused) as info:
            GUARD.check(path, host, None)
        assert info.value.status == 403 and "FAAS_ALLOWED_HOSTS" in info.value.message
    GUARD.check("/function/site/index.html", host, None)  # the user's own web endpoint


@pytest.mark.parametrize(
    "origin",
    ["http://evil.example", "ftp://127.0.0.1:8080", "http://127.0.0.1:9999", "null", "file://", "http://localhost:8080"],
)
def test_a_foreign_origin_is_refused(origin: str) -> None:
    with pytest.raises(BrowserRefused) as info:
        GUARD.check("/2015-03-31/functions", "127.0.0.1:8080", origin)
    assert "web page" in info.value.message


def test_the_gateways_own_pages_pass() -> None:
    GUARD.check("/2015-03-31/functions/f/invocations", "127.0.0.1:8080", "http://127.0.0.1:8080")
    GUARD.check("/ui/api/overview", "localhost:8080", "http://LOCALHOST:8080")


def test_extra_names_come_from_the_environment() -> None:
    guard = BrowserGuard.for_gateway("127.0.0.1", {"FAAS_ALLOWED_HOSTS": "gw.test, other.test"})
    guard.check("/system/functions", "gw.test:8080", None)
    guard.check("/system/functions", "other.test", None)
    with pytest.raises(BrowserRefused):
        guard.check("/system/functions", "third.test", None)


def test_the_app_refuses_a_cross_site_post_and_changes_nothing() -> None:
    fake = FakePlatform()
    client = create_app(fake).test_client()
    r = client.post(
        "/2015-03-31/functions",
        data='{"FunctionName": "x"}',
        headers={"Origin": "http://evil.example", "Content-Type": "text/plain"},
    )
    assert r.status_code == 403 and r.headers["x-amzn-ErrorType"] == "AccessDeniedException"
    assert fake.deploys == []
    rebound = client.get("/ui/api/overview", headers={"Host": "evil.example:8080"})
    assert rebound.status_code == 403
    assert client.get("/ui/api/overview").status_code == 200
