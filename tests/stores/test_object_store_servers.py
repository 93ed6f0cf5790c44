"""The object-store test servers work: moto's S3 and fake-gcs-server answer, the fault proxy fails, drops,
delays and counts requests as configured (tests/helpers/object_stores.py)."""

import http.client
import json
import os
import socket
from concurrent.futures import ThreadPoolExecutor

import pytest
from helpers.object_stores import FAIL_503, FaultProxy, http_request


def _fast_retries(max_attempts=10):
    # botocore's standard retry mode: 503 (and SlowDown) and dropped connections are retried.
    return {"retries": {"max_attempts": max_attempts, "mode": "standard"}}


def test_moto_put_get_range_and_env(s3_server, s3_bucket):
    assert s3_server.endpoint.startswith("http://127.0.0.1:")
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": s3_server.endpoint,
        "AWS_ALLOW_HTTP": "true",
    }.items():
        assert os.environ[name] == value
    client = s3_server.client()
    client.put_object(Bucket=s3_bucket, Key="dir/blob", Body=b"0123456789")
    assert client.get_object(Bucket=s3_bucket, Key="dir/blob")["Body"].read() == b"0123456789"
    part = client.get_object(Bucket=s3_bucket, Key="dir/blob", Range="bytes=2-4")
    assert (part["Body"].read(), part["ContentRange"]) == (b"234", "bytes 2-4/10")
    assert [o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket)["Contents"]] == ["dir/blob"]


def test_fake_gcs_server_serves_what_its_json_api_put(gcs_server, gcs_bucket):
    assert os.environ["GOOGLE_ALLOW_HTTP"] == "true"
    assert json.loads(os.environ["GOOGLE_SERVICE_ACCOUNT_KEY"])["gcs_base_url"] == gcs_server.endpoint
    assert gcs_server.upload(gcs_bucket, "dir/a.b-c", b"0123456789")["size"] == "10"
    assert gcs_server.download(gcs_bucket, "dir/a.b-c") == b"0123456789"
    assert gcs_server.keys(gcs_bucket) == ["dir/a.b-c"]
    # The XML API object_store speaks, its object names percent-encoded as it encodes them.
    status, headers, body = http_request(
        "GET", f"{gcs_server.endpoint}/{gcs_bucket}/dir%2Fa%2Eb%2Dc", headers={"Range": "bytes=2-4"}
    )
    assert (status, body, headers["content-range"]) == (206, b"234", "bytes 2-4/10")


def test_a_proxy_sends_fake_gcs_server_its_own_host(gcs_server, gcs_bucket, make_proxy):
    gcs_server.upload(gcs_bucket, "k", b"z")
    # fake-gcs-server serves the XML API only to requests whose Host is its -public-host.
    assert http_request("GET", f"{make_proxy(gcs_server).endpoint}/{gcs_bucket}/k")[0] == 404
    proxy = make_proxy(gcs_server, upstream_host=True)
    assert http_request("GET", f"{proxy.endpoint}/{gcs_bucket}/k")[::2] == (200, b"z")
    assert proxy.records[0].headers["host"] == f"127.0.0.1:{proxy.port}"  # recorded as the client sent it


def test_moto_conditional_put(s3_server, s3_bucket):
    client = s3_server.client()
    etag = client.put_object(Bucket=s3_bucket, Key="k", Body=b"a", IfNoneMatch="*")["ETag"]
    with pytest.raises(client.exceptions.ClientError) as failed:
        client.put_object(Bucket=s3_bucket, Key="k", Body=b"b", IfNoneMatch="*")
    assert failed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    with pytest.raises(client.exceptions.ClientError) as failed:
        client.put_object(Bucket=s3_bucket, Key="k", Body=b"b", IfMatch='"0000"')
    assert failed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    client.put_object(Bucket=s3_bucket, Key="k", Body=b"b", IfMatch=etag)


def test_boto3_retries_through_503s(s3_server, s3_bucket, make_proxy):
    proxy = make_proxy(s3_server, fail_503=0.3, seed=1)
    client = s3_server.client(proxy.endpoint, **_fast_retries())
    blobs = {f"blob{i}": bytes([i]) * (100 + i) for i in range(8)}
    for key, data in blobs.items():
        client.put_object(Bucket=s3_bucket, Key=key, Body=data)
    for key, data in blobs.items():
        assert client.get_object(Bucket=s3_bucket, Key=key)["Body"].read() == data
    assert proxy.count_503 > 0
    assert proxy.requests_seen == 16 + proxy.count_503
    failed = [r for r in proxy.records if r.action == FAIL_503]
    assert all(r.status == 503 and r.upstream_status is None for r in failed)
    assert all(r.status == 200 for r in proxy.records if r.action != FAIL_503)


def test_503_body_is_an_s3_error(s3_server, make_proxy):
    proxy = make_proxy(s3_server, fail_503=1.0)
    status, headers, body = http_request("GET", proxy.endpoint + "/")
    assert status == 503
    assert headers["content-type"] == "application/xml"
    assert b"<Code>ServiceUnavailable</Code>" in body and int(headers["content-length"]) == len(body)
    proxy.configure(error_code="SlowDown")
    assert b"<Code>SlowDown</Code>" in http_request("GET", proxy.endpoint + "/")[2]


def test_accounting_records_method_path_range_and_sizes(s3_server, s3_bucket, s3_proxy):
    s3_server.client().put_object(Bucket=s3_bucket, Key="ckpt/data", Body=bytes(range(256)) * 4)
    client = s3_server.client(s3_proxy.endpoint)
    client.head_object(Bucket=s3_bucket, Key="ckpt/data")
    assert client.get_object(Bucket=s3_bucket, Key="ckpt/data", Range="bytes=0-99")["Body"].read() == bytes(range(100))
    client.get_object(Bucket=s3_bucket, Key="ckpt/data", Range="bytes=1000-")["Body"].read()
    head, first, last = s3_proxy.records
    assert (head.method, head.path, head.range, head.status, head.response_bytes) == (
        "HEAD",
        f"/{s3_bucket}/ckpt/data",
        None,
        200,
        0,
    )
    assert (first.method, first.range, first.status, first.response_bytes) == ("GET", "bytes=0-99", 206, 100)
    assert (last.range, last.response_bytes) == ("bytes=1000-", 24)
    assert s3_proxy.summary() == {
        "requests": 3,
        "response_bytes": 124,
        "request_bytes": 0,
        "by_method": {"HEAD": 1, "GET": 2},
        "faults": {},
    }
    s3_proxy.reset()
    assert s3_proxy.records == [] and s3_proxy.requests_seen == 0


def test_concurrent_ranged_reads_through_faults(s3_server, s3_bucket, make_proxy):
    data = bytes(range(256)) * 64
    s3_server.client().put_object(Bucket=s3_bucket, Key="big", Body=data)
    proxy = make_proxy(s3_server, fail_503=0.2, drop=0.1, delay=0.3, delay_ms=20, seed=3)
    client = s3_server.client(proxy.endpoint, **_fast_retries(), max_pool_connections=8)

    def read(i):
        start = i * 1024
        return client.get_object(Bucket=s3_bucket, Key="big", Range=f"bytes={start}-{start + 1023}")["Body"].read()

    with ThreadPoolExecutor(8) as pool:
        assert b"".join(pool.map(read, range(16))) == data
    served = [r for r in proxy.records if r.status == 206]
    assert len(served) == 16 and sum(r.response_bytes for r in served) == len(data)
    assert sorted(r.range for r in served) == sorted(f"bytes={i * 1024}-{i * 1024 + 1023}" for i in range(16))


@pytest.mark.parametrize("mode", ["mid_request", "before_response", "after_upstream"])
def test_boto3_retries_dropped_connections(s3_server, s3_bucket, make_proxy, mode):
    proxy = make_proxy(s3_server, rule=lambda r: mode if r.index == 0 else None)
    client = s3_server.client(proxy.endpoint, **_fast_retries())
    client.put_object(Bucket=s3_bucket, Key="k", Body=b"x" * 1000)
    assert [r.action for r in proxy.records] == [mode, "pass"]
    assert proxy.count_dropped == 1
    assert proxy.records[0].status is None
    # after_upstream: the first PUT was done before its response was lost
    assert proxy.records[0].upstream_status == (200 if mode == "after_upstream" else None)
    assert s3_server.client().get_object(Bucket=s3_bucket, Key="k")["Body"].read() == b"x" * 1000


def test_mid_response_drop_truncates_the_body(s3_server, make_proxy):
    bucket = s3_server.create_bucket(public=True)
    s3_server.client().put_object(Bucket=bucket, Key="k", Body=b"y" * 1000)
    proxy = make_proxy(s3_server, drop=1.0, drop_modes=["mid_response"])
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    conn.request("GET", f"/{bucket}/k")
    response = conn.getresponse()
    assert response.status == 200 and response.getheader("Content-Length") == "1000"
    with pytest.raises(http.client.IncompleteRead) as short:
        response.read()
    assert len(short.value.partial) == 500 == proxy.records[0].response_bytes
    conn.close()


def test_keep_alive_and_chunked_bodies(s3_server, s3_proxy):
    bucket = s3_server.create_bucket(public=True)
    conn = http.client.HTTPConnection("127.0.0.1", s3_proxy.port, timeout=10)
    chunks = [b"abc" * 1000, b"", b"def" * 7]
    conn.request("PUT", f"/{bucket}/chunked", body=iter(chunks), encode_chunked=True)
    response = conn.getresponse()
    response.read()
    assert response.status == 200
    sock = conn.sock
    conn.request("GET", f"/{bucket}/chunked")
    response = conn.getresponse()
    assert response.read() == b"".join(chunks)
    assert conn.sock is sock  # the same connection served both requests
    conn.close()
    put, get = s3_proxy.records
    assert put.headers["transfer-encoding"] == "chunked" and put.request_bytes == 3021
    assert get.response_bytes == 3021


def test_pipelined_requests_on_one_connection(s3_server, s3_proxy):
    bucket = s3_server.create_bucket(public=True)
    s3_server.client().put_object(Bucket=bucket, Key="k", Body=b"z" * 10)
    request = f"GET /{bucket}/k HTTP/1.1\r\nHost: 127.0.0.1:{s3_proxy.port}\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", s3_proxy.port), timeout=10) as sock:
        sock.sendall(request * 3)
        received = b""
        while received.count(b"z" * 10) < 3:
            data = sock.recv(65536)
            assert data, received
            received += data
    assert received.count(b"HTTP/1.1 200 OK") == 3
    assert s3_proxy.requests_seen == 3


def test_fault_selection_is_deterministic(s3_server, make_proxy):
    def actions(seed):
        proxy = make_proxy(s3_server, fail_503=0.3, drop=0.2, delay=0.5, delay_ms=1, seed=seed)
        for _ in range(20):
            try:
                http_request("GET", proxy.endpoint + "/")
            except (OSError, http.client.HTTPException):
                pass  # a dropped connection
        return [(r.action, r.delay_ms) for r in proxy.records]

    first = actions(7)
    assert first == actions(7)
    assert first != actions(8)
    kinds = {action for action, _ in first}
    assert {"pass", "503"} <= kinds and kinds & {"mid_request", "before_response"}
    assert {delay for _, delay in first} == {0, 1}


def test_delay(s3_server, make_proxy):
    import time

    proxy = make_proxy(s3_server, delay=1.0, delay_ms=200)
    started = time.monotonic()
    assert http_request("GET", proxy.endpoint + "/")[0] == 200
    assert time.monotonic() - started >= 0.2
    assert proxy.count_delayed == 1


def test_proxy_rejects_bad_configuration():
    with pytest.raises(ValueError):
        FaultProxy("https://127.0.0.1:1")
    with pytest.raises(ValueError):
        FaultProxy("http://127.0.0.1:1", fail_503=0.7, drop=0.7)
