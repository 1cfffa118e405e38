"""Which requests the studio answers: Host names it is known by (against DNS rebinding) and POSTs from its own page
or a script, never from a form or script on another site."""

from __future__ import annotations

import io

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from translate.serve.guard import allowed_hosts, host_name


def upload() -> dict:
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(buffer, format="PNG")
    return {"files": {"image": ("a.png", buffer.getvalue())}, "data": {"model": "studio/export", "net": "G_AB"}}


@pytest.mark.parametrize("value, name", [("localhost:7860", "localhost"), ("LocalHost", "localhost"),
                                         ("[::1]:7860", "::1"), ("::1", "::1"), ("127.0.0.1:80", "127.0.0.1")])
def test_host_names_lose_their_port_and_case(value, name):
    assert host_name(value) == name


@pytest.mark.parametrize("host, code", [("localhost:7860", 200), ("127.0.0.1", 200), ("[::1]:7860", 200),
                                        ("evil.example", 400), ("evil.example:7860", 400),
                                        ("localhost.evil.example", 400), ("", 400)])
def test_only_the_bound_names_are_answered(make_app, host, code):
    """A DNS-rebinding page reaches 127.0.0.1 under its own name: its requests say Host: evil.example."""
    response = TestClient(make_app()[0]).get("/api/models", headers={"Host": host})
    assert response.status_code == code, response.text
    if code == 400:
        assert "unknown Host" in response.json()["detail"] and "--allowed-host" in response.json()["detail"]


def test_allowed_host_widens_the_names_and_star_allows_any(make_app):
    client = TestClient(make_app(hosts=allowed_hosts("0.0.0.0", ["Studio.lan"]))[0])
    assert client.get("/healthz", headers={"Host": "studio.lan:7860"}).status_code == 200
    assert client.get("/healthz", headers={"Host": "0.0.0.0:7860"}).status_code == 200
    assert client.get("/healthz", headers={"Host": "other.lan"}).status_code == 400
    assert allowed_hosts("127.0.0.1", ["*"]) is None
    anyone = TestClient(make_app(hosts=None)[0])
    assert anyone.get("/healthz", headers={"Host": "other.lan"}).status_code == 200


@pytest.mark.parametrize("headers, code", [
    ({"Origin": "http://evil.example"}, 403),  # a form on another site: no preflight needed, Origin says so
    ({"Origin": "http://evil.example", "X-Requested-With": "x"}, 403),  # preflighted in a browser; never granted
    ({"Origin": "null"}, 403),  # a sandboxed frame or a file: page
    ({"Origin": "http://localhost:7861"}, 403),  # another port is another origin
    ({}, 403),  # neither: a browser that sent no Origin could be a cross-site form
    ({"Origin": "http://localhost:7860"}, 200),  # the studio's own page
    ({"X-Requested-With": "curl"}, 200),  # a script
], ids=["other-site", "other-site-with-header", "null", "other-port", "bare", "same-origin", "script"])
def test_a_post_needs_its_own_origin_or_the_script_header(make_app, headers, code):
    client = TestClient(make_app()[0], base_url="http://localhost:7860")
    response = client.post("/api/translate", headers=headers, **upload())
    assert response.status_code == code, response.text
    if code == 403:
        assert "cross-site request refused" in response.json()["detail"]


def test_a_real_server_refuses_a_rebound_or_cross_site_post(make_app, live_server):
    _, url = live_server(make_app(fresh=True)[0])
    port = url.rsplit(":", 1)[1]
    assert httpx.post(f"{url}/api/translate", **upload()).status_code == 403
    assert httpx.get(f"{url}/api/models", headers={"Host": f"evil.example:{port}"}).status_code == 400
    page = httpx.post(f"{url}/api/translate", headers={"Origin": url}, **upload())
    assert page.status_code == 200 and page.content.startswith(b"\x89PNG")
