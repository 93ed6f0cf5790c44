"""fastckpt on S3 against plain boto3 requests and s3fs, on a loopback server, in one run.

    python benches/s3.py                                   # 1 GiB, 3 rounds, writes two sections of BENCHMARKS.md
    python benches/s3.py --size-mib 128 --rounds 1 --out -  # a quick look, printed only
    python benches/s3.py --keep-pages                       # as root, on a VM that hands freed memory back
    python benches/s3.py --parts loops                      # only the loops of small reads (their own section)

The server is s3s-fs (https://github.com/Nugine/s3s), an S3 server over a local directory, much faster than moto's
for large objects, though on a small machine still the limit (curl-get-discard, a client that does nothing, shows
its ceiling). Install it with Rust's cargo (about 10 minutes to build):

    cargo install s3s-fs@0.14.1 --features binary

and pass --s3s-fs PATH unless `s3s-fs` is on PATH. The script starts it on a free loopback port with a temporary
root (the bucket is a directory of it; --root /dev/shm puts it on a tmpfs) and stops it at the end. Where it
cannot be had, --moto runs moto's server instead (`python -m moto.server`; much slower for large objects).
Python needs fastckpt, numpy, boto3 and s3fs (s3fs pins botocore: it may need an environment of its own).

Reads (whole checkpoint into memory): fastckpt's `NewCheckpointReader(url).get_tensors()` (open included,
checksums verified); "plain GETs", boto3 range GETs of 8 MiB pieces of the data file, 16 threads, each read into
its place in one buffer allocated for the read (the limit: the same bytes, no index, no checksum); s3fs's
`cat_file` of the data file. Writes (the same bytes): fastckpt's `Saver().save`; a plain boto3 multipart upload
of 16 MiB parts, 8 threads; s3fs's `pipe_file` (its defaults: 50 MiB parts, 10 at once). For reference, curl
range GETs to /dev/null (the server with a client that does nothing), and a profile of fastckpt: request
concurrency, checksums off, the writer without the Saver's bookkeeping, unsigned payloads.

Every contender runs once untimed (and its result is checked), then --rounds times, the contenders alternating
within each round; best and median are reported, with the CPU seconds of this process and of the server during
each operation (on a small machine, the two share the cores). Benchmarks measure; no test asserts a timing.

Loops (--parts loops; a section of their own): reading a checkpoint one tensor at a time, as users do, on two
checkpoints written to the server once: --loop-tensors small tensors of 1-16 KiB, and a BERT-base-like one
(embeddings, 768x768 and 768x3072 kernels, many small biases and LayerNorm vectors; --bert-layers, --bert-vocab).
s3s-fs answers each request in about 30 ms on loopback however small (with its CPU idle), as a remote store
would: the loops making a request per tensor take a minute per 2,000 tensors, hence the default of 2,000.
Contenders: fastckpt's `get_tensors()` (the batch the loops are measured against); `reader.get_tensor(name)` over
every name, sorted and shuffled; `fastckpt.load_variable(prefix, name)` over every name (each call opens the
checkpoint again); the sorted loop with `block_cache_bytes=0` (a request per read, for reference); boto3 GETs of
each tensor's byte range, one at a time, as a hand-written loader does with the index's offsets; s3fs's
`fs.open(data file)` then seek and read per tensor (its default read-ahead cache), and `cat_file(path, start,
end)` per tensor. The offsets the boto3 and s3fs loops use come from the index before they start (they read no
index; fastckpt's figures include its open). Each run is a fresh process (empty caches), timed whole and, inside
it, from the first call to the last value ("the reads"). Requests and the bytes of their responses are counted in
the untimed run, which goes through a counting proxy in this process (the timed runs reach the server directly),
and every value it read is checked against the original.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import platform
import random
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from common import PagesKept, command_as_given, cpu_model, free_port, replace_section

MIB = 1 << 20
HERE = Path(__file__).resolve().parent
SECTION = "## Object stores (S3 on loopback)"
BUCKET = "bench"
CHECKPOINT = "model.ckpt"
DATA_KEY = f"{CHECKPOINT}.data-00000-of-00001"
# The plain contenders do what fastckpt's core does: 8 MiB range requests, 16 in flight; 16 MiB parts, 8 in flight.
PIECE, GET_THREADS = 8 * MIB, 16
PART, PUT_THREADS = 16 * MIB, 8
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}
LOOP_SECTION = "## Object stores (S3 on loopback): loops of small reads"


def keys() -> dict:
    """The test credentials as boto3's client takes them."""
    return {
        "aws_access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    }


# The server -------------------------------------------------------------------------------------------------


class Server:
    """s3s-fs on a free loopback port, over a temporary root holding the bucket's directory; or, with ``moto``,
    moto's server (in memory; the bucket made through its API)."""

    def __init__(self, binary: str, parent: "str | None" = None, moto: bool = False):
        self.moto = moto
        self.root = Path(tempfile.mkdtemp(prefix="fastckpt-s3-", dir=parent))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        if moto:
            self.binary = "moto"
            command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        else:
            found = shutil.which(binary)
            if found is None:
                raise SystemExit(f"no s3s-fs at {binary!r}: cargo install s3s-fs@0.14.1 --features binary")
            self.binary = found
            (self.root / BUCKET).mkdir()
            command = [self.binary, "--host", "127.0.0.1", "--port", str(self.port)]
            command += ["--access-key", CREDENTIALS["AWS_ACCESS_KEY_ID"]]
            command += ["--secret-key", CREDENTIALS["AWS_SECRET_ACCESS_KEY"], str(self.root)]
        self.log = open(self.root.with_suffix(".log"), "wb")
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                raise SystemExit(f"{self.binary} exited ({self.process.returncode}); see {self.log.name}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.close()
                    raise SystemExit(f"{self.binary} did not start listening within 30 s") from None
                time.sleep(0.05)
        if moto:
            import boto3

            boto3.client("s3", endpoint_url=self.url, region_name=CREDENTIALS["AWS_REGION"], **keys()).create_bucket(
                Bucket=BUCKET
            )

    def version(self) -> str:
        if self.moto:
            from importlib.metadata import version

            return f"moto {version('moto')} (its server)"
        done = subprocess.run([self.binary, "--version"], capture_output=True, text=True)
        return done.stdout.strip() or "s3s-fs"

    def where(self) -> str:
        """What the report calls the server and where it keeps the objects."""
        return "moto's server (in memory)" if self.moto else f"s3s-fs over a temporary directory ({root_fs(self.root)})"

    def cpu_seconds(self) -> float:
        """User and system time of the server so far."""
        with open(f"/proc/{self.process.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        shutil.rmtree(self.root, ignore_errors=True)
        os.unlink(self.log.name)

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# Contenders -------------------------------------------------------------------------------------------------


class Bench:
    """The data, the clients, and one function per contender returning what it read (or None)."""

    def __init__(self, server: Server, size_mib: int, tensor_mib: int):
        import boto3
        import botocore.config
        import fastckpt
        import s3fs

        self.server, self.fastckpt = server, fastckpt
        count = max(1, size_mib // tensor_mib)
        floats = tensor_mib * MIB // 4
        side = int(np.sqrt(floats))
        shape = (side, floats // side) if side * (floats // side) == floats else (floats,)
        # One buffer; the tensors are views of it in name order, so the data file holds exactly its bytes.
        self.blob = np.random.default_rng(0).random(count * floats, dtype=np.float32)
        self.tensors = {
            f"layer_{i:03d}/kernel": self.blob[i * floats : (i + 1) * floats].reshape(shape) for i in range(count)
        }
        self.nbytes = self.blob.nbytes
        self.data = self.blob.tobytes()  # for s3fs's pipe_file, which slices what it is given
        self.parts = [self.data[at : at + PART] for at in range(0, len(self.data), PART)]  # boto3 takes bytes
        config = botocore.config.Config(
            max_pool_connections=GET_THREADS + PUT_THREADS,
            s3={"addressing_style": "path"},
            retries={"mode": "standard"},
        )
        self.s3 = boto3.client("s3", endpoint_url=server.url, region_name=CREDENTIALS["AWS_REGION"], config=config)
        self.fs = s3fs.S3FileSystem(
            key=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            secret=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            endpoint_url=server.url,
            client_kwargs={"region_name": CREDENTIALS["AWS_REGION"]},
            config_kwargs={"s3": {"addressing_style": "path"}},
            skip_instance_cache=True,
        )
        self.get_pool = ThreadPoolExecutor(GET_THREADS)
        self.put_pool = ThreadPoolExecutor(PUT_THREADS)
        self.url = f"s3://{BUCKET}/{CHECKPOINT}"
        self.completes = []  # seconds the server took to complete each plain upload (it joins the parts)

    # reads

    def fastckpt_read(self, **storage_options):
        reader = self.fastckpt.NewCheckpointReader(self.url, storage_options=storage_options or None)
        return reader.get_tensors()

    def fastckpt_read_unverified(self):
        return self.fastckpt.CheckpointReader(self.url, verify_checksums=False).get_tensors()

    def plain_get(self):
        size = self.s3.head_object(Bucket=BUCKET, Key=DATA_KEY)["ContentLength"]
        out = np.empty(size, np.uint8)
        view = memoryview(out)

        def fetch(start: int) -> None:
            end = min(start + PIECE, size)
            body = self.s3.get_object(Bucket=BUCKET, Key=DATA_KEY, Range=f"bytes={start}-{end - 1}")["Body"]
            at = start
            while at < end:
                n = body.readinto(view[at:end])
                if not n:
                    raise IOError(f"short read at {at} of [{start}, {end})")
                at += n
            body.close()

        list(self.get_pool.map(fetch, range(0, size, PIECE)))
        return out

    def s3fs_read(self):
        return self.fs.cat_file(f"{BUCKET}/{DATA_KEY}")

    def curl_get(self):
        """Range GETs of the same pieces by curl, 16 at once, to /dev/null: what the server serves."""
        size = self.s3.head_object(Bucket=BUCKET, Key=DATA_KEY)["ContentLength"]
        command = ["curl", "--no-progress-meter", "--parallel", "--parallel-max", str(GET_THREADS)]
        for start in range(0, size, PIECE):
            end = min(start + PIECE, size)
            command += ["--aws-sigv4", f"aws:amz:{CREDENTIALS['AWS_REGION']}:s3"]
            command += ["--user", f"{CREDENTIALS['AWS_ACCESS_KEY_ID']}:{CREDENTIALS['AWS_SECRET_ACCESS_KEY']}"]
            command += ["-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"]
            command += ["-f", "-r", f"{start}-{end - 1}", "-o", "/dev/null", f"{self.server.url}/{BUCKET}/{DATA_KEY}"]
            command.append("--next")
        done = subprocess.run(command[:-1], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"curl failed: {done.stderr[-2000:]}")

    # writes

    def fastckpt_save(self, **storage_options):
        saver = self.fastckpt.Saver(storage_options=storage_options or None)
        saver.save(self.tensors, f"s3://{BUCKET}/save/{CHECKPOINT}")

    def fastckpt_writer(self):
        with self.fastckpt.CheckpointWriter(f"s3://{BUCKET}/writer/{CHECKPOINT}") as writer:
            writer.add_tensors(self.tensors)

    def plain_upload(self):
        key = f"plain/{DATA_KEY}"
        upload = self.s3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]

        def send(numbered) -> dict:
            number, part = numbered
            sent = self.s3.upload_part(Bucket=BUCKET, Key=key, UploadId=upload, PartNumber=number, Body=part)
            return {"PartNumber": number, "ETag": sent["ETag"]}

        parts = list(self.put_pool.map(send, enumerate(self.parts, 1)))
        start = time.perf_counter()
        self.s3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload, MultipartUpload={"Parts": parts})
        self.completes.append(time.perf_counter() - start)

    def s3fs_write(self):
        self.fs.pipe_file(f"{BUCKET}/s3fs/{DATA_KEY}", self.data)

    # checks, after the untimed round

    def check(self, name: str, result) -> None:
        if result is None:
            key = {"fastckpt-save": f"save/{DATA_KEY}", "plain-upload": f"plain/{DATA_KEY}"}.get(name)
            key = key or {"s3fs-write": f"s3fs/{DATA_KEY}", "fastckpt-writer": f"writer/{DATA_KEY}"}.get(name)
            if key is not None:
                result = np.frombuffer(self.fs.cat_file(f"{BUCKET}/{key}"), np.uint8)
        if result is None:
            return
        if isinstance(result, dict):
            ok = result.keys() == self.tensors.keys() and all(
                np.array_equal(result[k], self.tensors[k]) for k in result
            )
        else:
            ok = np.array_equal(np.frombuffer(result, np.uint8), self.blob.view(np.uint8))
        if not ok:
            raise SystemExit(f"{name}: what it read or wrote is not the checkpoint's data")


def contenders(bench: Bench, profile: bool):
    """(group, name, function) of every measurement."""
    reads = [
        ("fastckpt", bench.fastckpt_read),
        ("plain-get", bench.plain_get),
        ("s3fs-cat-file", bench.s3fs_read),
    ]
    if shutil.which("curl"):
        reads.append(("curl-get-discard", bench.curl_get))
    writes = [
        ("fastckpt-save", bench.fastckpt_save),
        ("plain-upload", bench.plain_upload),
        ("s3fs-pipe-file", bench.s3fs_write),
    ]
    groups = [("read", reads), ("write", writes)]
    if profile:
        variants = [
            (f"fastckpt concurrency={n}", lambda n=n: bench.fastckpt_read(concurrency=str(n))) for n in (4, 8, 32)
        ]
        variants.append(("fastckpt verify_checksums=False", bench.fastckpt_read_unverified))
        groups.append(("read, fastckpt profile", [("fastckpt", bench.fastckpt_read)] + variants))
        writes = [("fastckpt-save", bench.fastckpt_save), ("fastckpt CheckpointWriter", bench.fastckpt_writer)]
        writes.append(("fastckpt aws_unsigned_payload", lambda: bench.fastckpt_save(aws_unsigned_payload="true")))
        groups.append(("write, fastckpt profile", writes))
    return groups


def measure(bench: Bench, function):
    gc.collect()
    cpu, server = time.process_time(), bench.server.cpu_seconds()
    start = time.perf_counter()
    result = function()
    wall = time.perf_counter() - start
    cpu, server = time.process_time() - cpu, bench.server.cpu_seconds() - server
    return (wall, cpu, server), result


def run(bench: Bench, groups, rounds: int):
    """{(group, name): [(wall, cpu, server cpu), ...]}, rounds alternating the contenders of each group."""
    times = {}
    for group, members in groups:
        for name, function in members:  # untimed: connections made, results checked
            _, result = measure(bench, function)
            bench.check(name, result)
            del result
        for r in range(rounds):
            order = members[r % len(members) :] + members[: r % len(members)]
            for name, function in order:
                figures, result = measure(bench, function)
                del result
                times.setdefault((group, name), []).append(figures)
                print(f"  {group}: {name}: {figures[0]:.3f} s", file=sys.stderr, flush=True)
    return times


# Loops of small reads ---------------------------------------------------------------------------------------


class CountingProxy:
    """A forwarding HTTP/1.1 proxy on loopback in front of the server, counting the requests through it and the
    bytes of their response bodies (for reads: request bodies are relayed, but ``Expect: 100-continue`` is not
    handled). Each client connection gets a connection of its own to the server, kept alive as the client's is."""

    def __init__(self, upstream: str):
        self.upstream = ("127.0.0.1", int(upstream.rsplit(":", 1)[1]))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.lock = threading.Lock()
        self.connections = 0  # open client connections
        self.reset()
        threading.Thread(target=self._accept, daemon=True).start()

    def reset(self) -> None:
        with self.lock:
            self.requests, self.received, self.methods = 0, 0, Counter()

    def settle(self, timeout: float = 10.0) -> None:
        """Waits for the connections of a client that has exited to be closed, so that its every request has
        been counted (a client can have its last response before the proxy has counted it)."""
        deadline = time.monotonic() + timeout
        while self.connections and time.monotonic() < deadline:
            time.sleep(0.01)

    def close(self) -> None:
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.upstream)
        except OSError:
            upstream = None
        if upstream is None:
            client.close()
            with self.lock:
                self.connections -= 1
            return
        from_client, from_upstream = client.makefile("rb"), upstream.makefile("rb")
        try:
            while True:
                head = read_head(from_client)
                if head is None:
                    return
                method = head.split(b" ", 1)[0].upper()
                upstream.sendall(head)
                relay_body(from_client, upstream, head, False)
                reply = read_head(from_upstream)
                if reply is None:
                    return
                client.sendall(reply)
                status = int(reply.split(b" ", 2)[1])
                bodiless = method == b"HEAD" or status in (204, 304) or status < 200
                size = 0 if bodiless else relay_body(from_upstream, client, reply, True)
                with self.lock:
                    self.requests += 1
                    self.received += size
                    self.methods[method.decode()] += 1
                if size < 0:  # a body that ended with its connection
                    return
        except OSError:
            return
        finally:
            for closing in (from_client, from_upstream, client, upstream):
                closing.close()
            with self.lock:
                self.connections -= 1


def read_head(stream) -> "bytes | None":
    """A request's or response's start line and headers, up to the blank line; None at the end of the stream."""
    lines = []
    while True:
        line = stream.readline(65536)
        if not line:
            return None
        lines.append(line)
        if line in (b"\r\n", b"\n"):
            return b"".join(lines)


def relay_body(source, sink: socket.socket, head: bytes, response: bool) -> int:
    """Copies the body the headers in ``head`` announce from ``source`` to ``sink``; its size in bytes (minus one
    less than the size for a response without length, which ends with its connection)."""
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip().lower()
    if b"chunked" in headers.get(b"transfer-encoding", b""):
        size = 0
        while True:
            line = source.readline(65536)
            sink.sendall(line)
            length = int(line.split(b";")[0], 16)
            if length == 0:
                while True:  # trailers, then the blank line
                    line = source.readline(65536)
                    sink.sendall(line)
                    if line in (b"\r\n", b"\n", b""):
                        return size
            sink.sendall(source.read(length + 2))
            size += length
    if b"content-length" in headers:
        left = size = int(headers[b"content-length"])
        while left:
            piece = source.read(min(left, 1 << 20))
            if not piece:
                raise OSError("the body ended early")
            sink.sendall(piece)
            left -= len(piece)
        return size
    if not response:
        return 0
    size = 0
    while piece := source.read1(1 << 20):
        sink.sendall(piece)
        size += len(piece)
    return -1 - size


def small_tensors(count: int) -> dict:
    """``count`` float32 vectors of 1 to 16 KiB, as a model's many small variables are."""
    rng = np.random.default_rng(0)
    return {f"layer_{i:05d}/w": rng.standard_normal(int(rng.integers(256, 4097)), np.float32) for i in range(count)}


def bert_tensors(layers: int, vocab: int) -> dict:
    """The variables of a BERT-base-like model (hidden 768, intermediate 3072, ``layers`` layers, ``vocab``
    words): embeddings, kernels, biases and LayerNorm vectors, the pooler and pre-training heads, global_step."""
    rng = np.random.default_rng(1)
    hidden, inner = 768, 3072
    shapes = {
        "bert/embeddings/word_embeddings": (vocab, hidden),
        "bert/embeddings/position_embeddings": (512, hidden),
        "bert/embeddings/token_type_embeddings": (2, hidden),
        "bert/embeddings/LayerNorm/gamma": (hidden,),
        "bert/embeddings/LayerNorm/beta": (hidden,),
    }
    for i in range(layers):
        layer = f"bert/encoder/layer_{i}"
        for part in ("attention/self/query", "attention/self/key", "attention/self/value", "attention/output/dense"):
            shapes[f"{layer}/{part}/kernel"], shapes[f"{layer}/{part}/bias"] = (hidden, hidden), (hidden,)
        shapes[f"{layer}/intermediate/dense/kernel"] = (hidden, inner)
        shapes[f"{layer}/intermediate/dense/bias"] = (inner,)
        shapes[f"{layer}/output/dense/kernel"], shapes[f"{layer}/output/dense/bias"] = (inner, hidden), (hidden,)
        for norm in ("attention/output/LayerNorm", "output/LayerNorm"):
            shapes[f"{layer}/{norm}/gamma"], shapes[f"{layer}/{norm}/beta"] = (hidden,), (hidden,)
    shapes["bert/pooler/dense/kernel"], shapes["bert/pooler/dense/bias"] = (hidden, hidden), (hidden,)
    shapes["cls/predictions/transform/dense/kernel"] = (hidden, hidden)
    shapes["cls/predictions/transform/dense/bias"] = (hidden,)
    shapes["cls/predictions/transform/LayerNorm/gamma"] = (hidden,)
    shapes["cls/predictions/transform/LayerNorm/beta"] = (hidden,)
    shapes["cls/predictions/output_bias"] = (vocab,)
    shapes["cls/seq_relationship/output_weights"], shapes["cls/seq_relationship/output_bias"] = (2, hidden), (2,)
    tensors = {name: rng.standard_normal(shape, np.float32) for name, shape in shapes.items()}
    tensors["global_step"] = np.array(1000000, np.int64)
    return tensors


def digest(value) -> str:
    """A value's dtype, shape and bytes, hashed: what the loops' results are checked by."""
    value = np.ascontiguousarray(value)
    return hashlib.sha256(f"{value.dtype.str}{value.shape}".encode() + value.tobytes()).hexdigest()


# The loops, each run in a fresh process: (label, how, storage options).
LOOPS = [
    ("fastckpt get_tensors()", "get_tensors", {}),
    ("fastckpt get_tensor loop", "get_tensor", {}),
    ("fastckpt get_tensor loop, shuffled", "get_tensor shuffled", {}),
    ("fastckpt load_variable loop", "load_variable", {}),
    ("fastckpt get_tensor loop, block_cache_bytes=0", "get_tensor", {"block_cache_bytes": "0"}),
    ("boto3 range GET per tensor", "boto3", {}),
    ("s3fs open, seek and read per tensor", "s3fs open", {}),
    ("s3fs cat_file per tensor", "s3fs cat_file", {}),
]


def loop_child(spec: dict) -> None:
    """Runs one loop in this (fresh) process as ``spec`` says; prints {"seconds": the reads, "digests": ...}."""
    how, url, endpoint, options = spec["how"], spec["url"], spec["endpoint"], spec["options"] or None
    if how.startswith(("boto3", "s3fs")):
        with open(spec["ranges"]) as f:
            ranges = json.load(f)  # {name: [offset, length, dtype, shape]}, in the data file's order
        key = f"{spec['prefix']}.data-00000-of-00001"
    if how == "boto3":
        import boto3
        import botocore.config

        start = time.perf_counter()
        config = botocore.config.Config(s3={"addressing_style": "path"})
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name=CREDENTIALS["AWS_REGION"], config=config, **keys())
        values = {}
        for name, (offset, length, dtype, shape) in ranges.items():
            body = s3.get_object(Bucket=BUCKET, Key=key, Range=f"bytes={offset}-{offset + length - 1}")["Body"]
            values[name] = np.frombuffer(body.read(), dtype).reshape(shape)
    elif how.startswith("s3fs"):
        import s3fs

        start = time.perf_counter()
        fs = s3fs.S3FileSystem(
            key=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            secret=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            endpoint_url=endpoint,
            client_kwargs={"region_name": CREDENTIALS["AWS_REGION"]},
            config_kwargs={"s3": {"addressing_style": "path"}},
        )
        path, values = f"{BUCKET}/{key}", {}
        if how == "s3fs open":
            with fs.open(path, "rb") as f:
                for name, (offset, length, dtype, shape) in ranges.items():
                    f.seek(offset)
                    values[name] = np.frombuffer(f.read(length), dtype).reshape(shape)
        else:
            for name, (offset, length, dtype, shape) in ranges.items():
                data = fs.cat_file(path, start=offset, end=offset + length)
                values[name] = np.frombuffer(data, dtype).reshape(shape)
    else:
        import fastckpt

        start = time.perf_counter()
        if how == "load_variable":
            names = [name for name, _ in fastckpt.list_variables(url, storage_options=options)]
            values = {name: fastckpt.load_variable(url, name, storage_options=options) for name in names}
        else:
            reader = fastckpt.NewCheckpointReader(url, storage_options=options)
            if how == "get_tensors":
                values = reader.get_tensors()
            else:
                names = sorted(reader.get_variable_to_shape_map())
                if how == "get_tensor shuffled":
                    random.Random(0).shuffle(names)
                values = {name: reader.get_tensor(name) for name in names}
    seconds = time.perf_counter() - start
    digests = {name: digest(value) for name, value in values.items()} if spec["check"] else None
    print(json.dumps({"seconds": seconds, "digests": digests}))


class Loops:
    """The loops' checkpoints on the server, their originals' digests and byte ranges, and their runs."""

    def __init__(self, server: Server, args):
        import boto3
        import fastckpt

        self.server = server
        self.proxy = CountingProxy(server.url)
        s3 = boto3.client("s3", endpoint_url=server.url, region_name=CREDENTIALS["AWS_REGION"], **keys())
        self.work = Path(tempfile.mkdtemp(prefix="fastckpt-s3-loops-"))
        self.checkpoints = {}  # label: (prefix, {name: digest}, ranges file, tensors, bytes)
        made = [
            ("small", small_tensors(args.loop_tensors)),
            ("bert", bert_tensors(args.bert_layers, args.bert_vocab)),
        ]
        for label, tensors in made:
            # Written locally, where the index gives each tensor's byte range, then uploaded as they are.
            local = self.work / label / CHECKPOINT
            fastckpt.Saver().save(tensors, str(local), write_meta_graph=False)
            reader = fastckpt.NewCheckpointReader(str(local))
            ranges = {}
            for name in sorted(tensors):
                data_file, offset, length, _ = reader.stored_range(name)
                if not data_file.endswith(".data-00000-of-00001"):
                    raise SystemExit(f"{name} is in {data_file}: the loops expect one data file")
                value = tensors[name]
                ranges[name] = [offset, length, value.dtype.str, list(value.shape)]
            ranges_file = self.work / f"{label}.json"
            ranges_file.write_text(json.dumps(ranges))
            prefix = f"loops/{label}/{CHECKPOINT}"
            for file in sorted(local.parent.iterdir()):
                if file.name.startswith(CHECKPOINT):
                    s3.upload_file(str(file), BUCKET, f"loops/{label}/{file.name}")
            nbytes = sum(value.nbytes for value in tensors.values())
            digests = {name: digest(value) for name, value in tensors.items()}
            self.checkpoints[label] = (prefix, digests, ranges_file, len(tensors), nbytes)
            del tensors, reader
        self.counts = {}  # (checkpoint, loop): (requests, bytes received, {method: requests})
        self.times = {}  # (checkpoint, loop): [(whole process, the reads, process CPU, server CPU), ...]

    def close(self) -> None:
        self.proxy.close()
        shutil.rmtree(self.work, ignore_errors=True)

    def once(self, checkpoint: str, loop, endpoint: str, check: bool):
        """One loop in a fresh process: (whole-process seconds, the reads' seconds, its CPU, the server's), digests."""
        label, how, options = loop
        prefix, _, ranges_file, _, _ = self.checkpoints[checkpoint]
        spec = {
            "how": how,
            "url": f"s3://{BUCKET}/{prefix}",
            "prefix": prefix,
            "endpoint": endpoint,
            "options": options,
            "ranges": str(ranges_file),
            "check": check,
        }
        env = dict(os.environ, AWS_ENDPOINT_URL=endpoint)
        command = [sys.executable, str(Path(__file__).resolve()), "--loop-child", json.dumps(spec)]
        children, server = resource.getrusage(resource.RUSAGE_CHILDREN), self.server.cpu_seconds()
        start = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
        server = self.server.cpu_seconds() - server
        if done.returncode != 0:
            raise SystemExit(f"{label} on {checkpoint} failed:\n{done.stderr[-3000:]}")
        out = json.loads(done.stdout.strip().splitlines()[-1])
        return (wall, out["seconds"], cpu, server), out["digests"]

    def run(self, rounds: int) -> None:
        for checkpoint in self.checkpoints:
            for loop in LOOPS:  # untimed, through the counting proxy: requests counted, values checked
                self.proxy.reset()
                _, digests = self.once(checkpoint, loop, self.proxy.url, True)
                self.proxy.settle()
                with self.proxy.lock:
                    counted = (self.proxy.requests, self.proxy.received, dict(self.proxy.methods))
                self.counts[(checkpoint, loop[0])] = counted
                if digests != self.checkpoints[checkpoint][1]:
                    raise SystemExit(f"{loop[0]} on {checkpoint}: what it read is not the checkpoint's values")
                print(f"  loops, {checkpoint}: {loop[0]}: {counted[0]} requests", file=sys.stderr, flush=True)
            for r in range(rounds):
                order = LOOPS[r % len(LOOPS) :] + LOOPS[: r % len(LOOPS)]
                for loop in order:
                    figures, _ = self.once(checkpoint, loop, self.server.url, False)
                    self.times.setdefault((checkpoint, loop[0]), []).append(figures)
                    print(
                        f"  loops, {checkpoint}: {loop[0]}: {figures[0]:.2f} s ({figures[1]:.2f} s reading)",
                        file=sys.stderr,
                        flush=True,
                    )

    def table(self, checkpoint: str) -> list:
        _, _, _, count, nbytes = self.checkpoints[checkpoint]
        what = {"small": "many small tensors", "bert": "BERT-like"}[checkpoint]
        base = LOOPS[0][0]
        base_requests = self.counts[(checkpoint, base)][0]
        base_median = statistics.median(r[0] for r in self.times[(checkpoint, base)])
        lines = [
            f"| {what} ({count} tensors, {nbytes / 1e6:.1f} MB) | requests | x {base}'s | MB received | "
            f"whole process: best | median | x {base}'s (median) | the reads: best | median | CPU s: process | "
            "server |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for label, _, _ in LOOPS:
            requests, received, methods = self.counts[(checkpoint, label)]
            others = ", ".join(f"{n} {m}" for m, n in sorted(methods.items()) if m != "GET")
            runs = self.times[(checkpoint, label)]
            walls, reads = [r[0] for r in runs], [r[1] for r in runs]
            median = statistics.median(walls)
            lines.append(
                f"| {label} | {requests:,}{f' ({others})' if others else ''} | {requests / base_requests:.1f} | "
                f"{received / 1e6:.1f} | "
                f"{min(walls):.2f} s | {median:.2f} s | {median / base_median:.2f} | {min(reads):.2f} s | "
                f"{statistics.median(reads):.2f} s | {statistics.median(r[2] for r in runs):.2f} | "
                f"{statistics.median(r[3] for r in runs):.2f} |"
            )
        return lines


def loops_report(args, loops: Loops, loads, command: str) -> str:
    server = loops.server
    where = server.where()
    small, bert = loops.checkpoints["small"], loops.checkpoints["bert"]
    lines = [
        LOOP_SECTION,
        "",
        f"Machine: {machine(server)}; 1-minute load {loads[0]:.2f} before the timed runs, {loads[1]:.2f} after.",
        "",
        f"`{command}`: two checkpoints on {where}, on loopback: {small[3]:,} float32 vectors of 1-16 KiB "
        f"({small[4] / 1e6:.1f} MB), and a BERT-base-like one ({args.bert_layers} "
        f"layer{'s' * (args.bert_layers != 1)}, a vocabulary of "
        f"{args.bert_vocab:,}: {bert[3]} tensors, {bert[4] / 1e6:.1f} MB, from 8-byte global_step to the "
        f"{args.bert_vocab}x768 word embeddings). Every loop runs in a fresh process (its caches empty), once untimed "
        f"through a counting proxy (the requests and MB received; every value checked against the original), then "
        f"{args.rounds} round{'s' * (args.rounds != 1)} in which they alternate, straight to the server. Whole "
        "process: from starting Python to its exit (imports included); the reads: inside it, from opening the "
        "checkpoint (or making the client) to the last value. The boto3 and s3fs loops are given each tensor's "
        "byte range from the index beforehand, and read no index. CPU seconds are the process's and the server's "
        f"({os.cpu_count()} cores).",
    ]
    for checkpoint in loops.checkpoints:
        lines += ["", *loops.table(checkpoint)]
    return "\n".join(lines) + "\n"


# The report -------------------------------------------------------------------------------------------------


def machine(server: Server) -> str:
    model = cpu_model()
    from importlib.metadata import version

    import fastckpt

    # fastckpt's own version: it may be importable (from a source tree) without being installed.
    versions = ", ".join(
        [f"fastckpt {fastckpt.__version__}"] + [f"{m} {version(m)}" for m in ("numpy", "boto3", "botocore", "s3fs")]
    )
    return (
        f"{model}, {os.cpu_count()} cores (nproc {len(os.sched_getaffinity(0))}); {platform.system()} "
        f"{platform.release()}; Python {platform.python_version()}; {versions}; {server.version()}; "
        f"{time.strftime('%Y-%m-%d %H:%M %Z')}"
    )


def table(times, group: str, plain: str, nbytes: int):
    rows = {name: runs for (g, name), runs in times.items() if g == group}
    base = rows.get(plain) or next(iter(rows.values()))
    base_best, base_median = min(r[0] for r in base), statistics.median(r[0] for r in base)
    lines = [
        f"| {group} | best | median | GB/s (median) | vs {plain}: best | median | CPU s: this process | server |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, runs in rows.items():
        walls = [r[0] for r in runs]
        best, median = min(walls), statistics.median(walls)
        cpu, server = statistics.median(r[1] for r in runs), statistics.median(r[2] for r in runs)
        lines.append(
            f"| {name} | {best:.3f} s | {median:.3f} s | {nbytes / median / 1e9:.2f} | {base_best / best:.2f} | "
            f"{base_median / median:.2f} | {cpu:.2f} | {server:.2f} |"
        )
    return lines


def ratio(times, group, ours, theirs, pick):
    return pick(r[0] for r in times[(group, theirs)]) / pick(r[0] for r in times[(group, ours)])


def root_fs(path: Path) -> str:
    """The file system type of the mount holding ``path`` (tmpfs, ext4, ...)."""
    best, kind = "", "unknown file system"
    with open("/proc/mounts") as f:
        for line in f:
            _, mount, fs_type = line.split()[:3]
            if str(path).startswith(mount.rstrip("/") + "/") and len(mount) > len(best):
                best, kind = mount, fs_type
    return kind


def report(args, bench: Bench, times, loads, command: str) -> str:
    gib = bench.nbytes / (1 << 30)
    lines = [
        SECTION,
        "",
        f"Machine: {machine(bench.server)}; 1-minute load {loads[0]:.2f} before the timed runs, "
        f"{loads[1]:.2f} after (with the run's own threads)"
        + ("; free page reporting to the host paused (--keep-pages)" if args.keep_pages else "")
        + ".",
        "",
        f"`{command}`: a checkpoint of {gib:.2f} GiB of float32 ({len(bench.tensors)} tensors of "
        f"{args.tensor_mib} MiB) on {bench.server.where()}, on loopback; "
        f"every contender once untimed, then {args.rounds} round{'s' * (args.rounds != 1)} in which they alternate. "
        "Ratios are the plain contender's time over each one's (above 1: faster than plain); GB/s are of the tensor "
        "bytes; CPU seconds are those of this process (all its threads) and of the server during the operation "
        f"({os.cpu_count()} cores: the two together cannot exceed {os.cpu_count()} times the time).",
        "",
        "| target | aim | best | median |",
        "|---|---:|---:|---:|",
    ]
    aims = [
        ("read: fastckpt vs plain GETs", "read", "fastckpt", "plain-get", ">= 0.9"),
        ("read: fastckpt vs s3fs", "read", "fastckpt", "s3fs-cat-file", "> 1"),
        ("save: fastckpt vs plain multipart upload", "write", "fastckpt-save", "plain-upload", ">= 0.9"),
        ("save: fastckpt vs s3fs", "write", "fastckpt-save", "s3fs-pipe-file", "> 1"),
    ]
    for label, group, ours, theirs, aim in aims:
        best = ratio(times, group, ours, theirs, min)
        median = ratio(times, group, ours, theirs, statistics.median)
        lines.append(f"| {label} | {aim} | {best:.2f} | {median:.2f} |")
    for group, plain in (
        ("read", "plain-get"),
        ("write", "plain-upload"),
        ("read, fastckpt profile", "fastckpt"),
        ("write, fastckpt profile", "fastckpt-save"),
    ):
        if any(g == group for g, _ in times):
            lines += ["", *table(times, group, plain, bench.nbytes)]
        if group == "write" and bench.completes:
            lines += [
                "",
                f"Of plain-upload's time, `complete_multipart_upload` took {statistics.median(bench.completes):.2f} s "
                f"(median of {len(bench.completes)}): s3s-fs then reads the parts back, MD5s them and writes the "
                "object, in one stream; every contender's upload ends so.",
            ]
    return "\n".join(lines) + "\n"


def main() -> None:
    if sys.argv[1:2] == ["--loop-child"]:
        loop_child(json.loads(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--s3s-fs", default="s3s-fs", help="the s3s-fs binary (default: s3s-fs on PATH)")
    parser.add_argument("--moto", action="store_true", help="run moto's server instead of s3s-fs")
    parser.add_argument(
        "--parts", default="bulk,loops", help="bulk (whole reads and writes), loops (small reads), or both (default)"
    )
    parser.add_argument("--loop-tensors", type=int, default=2000, help="small tensors of the loops (default 2000)")
    parser.add_argument("--bert-layers", type=int, default=12, help="layers of the BERT-like checkpoint (default 12)")
    parser.add_argument("--bert-vocab", type=int, default=30522, help="its vocabulary (default 30522)")
    parser.add_argument("--size-mib", type=int, default=1024, help="checkpoint size (default 1024)")
    parser.add_argument("--tensor-mib", type=int, default=16, help="size of each tensor (default 16)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (default 3)")
    parser.add_argument(
        "--root", help="directory for the server's temporary root (default: the temp dir; a tmpfs keeps disks out)"
    )
    parser.add_argument("--no-profile", dest="profile", action="store_false", help="skip fastckpt's variants")
    parser.add_argument("--keep-pages", action="store_true", help="pause free page reporting (root; see PagesKept)")
    parser.add_argument(
        "--out", default=str(HERE.parent / "BENCHMARKS.md"), help="markdown file for the section, or - to print only"
    )
    args = parser.parse_args()
    # The command as given, but for where the report goes.
    command = command_as_given(__file__)

    parts = set(args.parts.split(","))
    if not parts or parts - {"bulk", "loops"}:
        parser.error(f"--parts: bulk, loops or bulk,loops, not {args.parts!r}")

    sections = []
    with Server(args.s3s_fs, args.root, args.moto) as server, PagesKept(args.keep_pages):
        os.environ.update(CREDENTIALS, AWS_ENDPOINT_URL=server.url, AWS_ALLOW_HTTP="true")
        if "bulk" in parts:
            bench = Bench(server, args.size_mib, args.tensor_mib)
            bench.fastckpt.Saver().save(bench.tensors, bench.url, write_meta_graph=False)  # the checkpoint read
            loads = [os.getloadavg()[0]]
            times = run(bench, contenders(bench, args.profile), args.rounds)
            loads.append(os.getloadavg()[0])
            sections.append((SECTION, report(args, bench, times, loads, command)))
            del bench
        if "loops" in parts:
            loops = Loops(server, args)
            try:
                loads = [os.getloadavg()[0]]
                loops.run(args.rounds)
                loads.append(os.getloadavg()[0])
            finally:
                loops.close()
            sections.append((LOOP_SECTION, loops_report(args, loops, loads, command)))
    for heading, section in sections:
        print(section)
        if args.out != "-":
            replace_section(Path(args.out), heading, section)
            print(f"wrote the {heading[3:]} section of {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
