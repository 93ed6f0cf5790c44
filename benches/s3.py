"""fastckpt on S3 against plain boto3 requests and s3fs, on a loopback server, in one run.

    python benches/s3.py                                   # 1 GiB, 3 rounds, writes a section of BENCHMARKS.md
    python benches/s3.py --size-mib 128 --rounds 1 --out -  # a quick look, printed only
    python benches/s3.py --keep-pages                       # as root, on a VM that hands freed memory back

The server is s3s-fs (https://github.com/Nugine/s3s), an S3 server over a local directory, much faster than moto's
for large objects, though on a small machine still the limit (curl-get-discard, a client that does nothing, shows
its ceiling). Install it with Rust's cargo (about 10 minutes to build):

    cargo install s3s-fs@0.14.1 --features binary

and pass --s3s-fs PATH unless `s3s-fs` is on PATH. The script starts it on a free loopback port with a temporary
root (the bucket is a directory of it; --root /dev/shm puts it on a tmpfs) and stops it at the end.
Python needs fastckpt, numpy, boto3 and s3fs.

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
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
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


# The server -------------------------------------------------------------------------------------------------


class Server:
    """s3s-fs on a free loopback port, over a temporary root holding the bucket's directory."""

    def __init__(self, binary: str, parent: "str | None" = None):
        found = shutil.which(binary)
        if found is None:
            raise SystemExit(f"no s3s-fs at {binary!r}: cargo install s3s-fs@0.14.1 --features binary")
        self.binary = found
        self.root = Path(tempfile.mkdtemp(prefix="fastckpt-s3-", dir=parent))
        (self.root / BUCKET).mkdir()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(self.root.with_suffix(".log"), "wb")
        self.process = subprocess.Popen(
            [self.binary, "--host", "127.0.0.1", "--port", str(self.port)]
            + ["--access-key", CREDENTIALS["AWS_ACCESS_KEY_ID"], "--secret-key", CREDENTIALS["AWS_SECRET_ACCESS_KEY"]]
            + [str(self.root)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                raise SystemExit(f"s3s-fs exited ({self.process.returncode}); see {self.log.name}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.close()
                    raise SystemExit("s3s-fs did not start listening within 30 s") from None
                time.sleep(0.05)

    def version(self) -> str:
        done = subprocess.run([self.binary, "--version"], capture_output=True, text=True)
        return done.stdout.strip() or "s3s-fs"

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


# The report -------------------------------------------------------------------------------------------------


def machine(server: Server) -> str:
    model = cpu_model()
    from importlib.metadata import version

    versions = ", ".join(f"{m} {version(m)}" for m in ("fastckpt", "numpy", "boto3", "botocore", "s3fs"))
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
        f"{args.tensor_mib} MiB) on s3s-fs over a temporary directory ({root_fs(bench.server.root)}), on loopback; "
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
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--s3s-fs", default="s3s-fs", help="the s3s-fs binary (default: s3s-fs on PATH)")
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

    with Server(args.s3s_fs, args.root) as server, PagesKept(args.keep_pages):
        os.environ.update(CREDENTIALS, AWS_ENDPOINT_URL=server.url, AWS_ALLOW_HTTP="true")
        bench = Bench(server, args.size_mib, args.tensor_mib)
        bench.fastckpt.Saver().save(bench.tensors, bench.url, write_meta_graph=False)  # the checkpoint read
        loads = [os.getloadavg()[0]]
        times = run(bench, contenders(bench, args.profile), args.rounds)
        loads.append(os.getloadavg()[0])
    section = report(args, bench, times, loads, command)
    print(section)
    if args.out != "-":
        replace_section(Path(args.out), SECTION, section)
        print(f"wrote the {SECTION[3:]} section of {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
