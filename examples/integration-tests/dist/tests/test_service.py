"""Integration tests of the service the job's environment names in SERVICE_URL."""

import json
import os
import urllib.request

BASE = os.environ["SERVICE_URL"].rstrip("/")


def get_json(path):
    with urllib.request.urlopen(f"{BASE}{path}", timeout=10) as response:
        assert response.status == 200
        return json.load(response)


def test_health_reports_ok():
    assert get_json("/health")["status"] == "ok"


def test_version_is_reported():
    assert get_json("/version")["version"]


def test_orders_can_be_listed():
    assert isinstance(get_json("/orders")["orders"], list)
