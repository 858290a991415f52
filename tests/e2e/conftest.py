"""A moto server on 127.0.0.1 that the real CLI subprocess reaches through AWS_ENDPOINT_URL."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator

import pytest

REGION = "eu-west-1"


def _post(url: str, data: dict) -> None:
    request = urllib.request.Request(
        url, data=json.dumps(data).encode(), method="POST",
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def moto_url(moto_server: str) -> str:
    """A clean moto state per test, with Lambda told not to look for Docker."""
    _post(f"{moto_server}/moto-api/reset", {})
    _post(f"{moto_server}/moto-api/config", {"lambda": {"use_docker": False}})
    return moto_server


@pytest.fixture
def aws_env(moto_url: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }


@pytest.fixture
def boto(moto_url: str):
    """boto3 clients against the same server, to look at what the CLI made."""
    import boto3

    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )

    def client(service: str):
        return session.client(service, endpoint_url=moto_url)

    return client


def queue_lambda_results(moto_url: str, results: list[dict]) -> None:
    """moto's Lambda runs no code: queue the responses the next invocations return."""
    _post(
        f"{moto_url}/moto-api/static/lambda-simple/response",
        {"results": [json.dumps(r) for r in results], "region": REGION},
    )
