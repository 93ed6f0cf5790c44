"""A save killed mid-upload leaves a multipart upload whose parts S3 keeps, and bills, until it is aborted: the
next save under the same name aborts it (moto's S3 server, on loopback)."""

import os
import subprocess
import time

import fastckpt
import numpy as np
from fastckpt import _fastckpt
from helpers.processes import python_command

# 40 MiB: the data file goes up as a multipart upload, in parts of 16 MiB.
KILLED_SAVE = """
import sys, numpy as np, fastckpt
fastckpt.Saver().save({"w": np.ones(10 << 20, np.float32)}, sys.argv[1], global_step=1)
"""


def uploads(client, bucket):
    return sorted(upload["Key"] for upload in client.list_multipart_uploads(Bucket=bucket).get("Uploads", []))


def test_a_save_aborts_the_uploads_a_killed_save_left(s3_server, s3_bucket, make_proxy):
    prefix = f"s3://{s3_bucket}/run/model.ckpt"
    client = s3_server.client()
    # Every request of the killed save held 2 s, so that it dies with its upload under way.
    slow = make_proxy(s3_server, delay=1.0, delay_ms=2000)
    save = subprocess.Popen(python_command(KILLED_SAVE, prefix), env={**os.environ, **s3_server.env(slow.endpoint)})
    try:
        deadline = time.monotonic() + 60
        while not uploads(client, s3_bucket):
            assert save.poll() is None and time.monotonic() < deadline, "the save ended before its upload was seen"
            time.sleep(0.05)
    finally:
        save.kill()
        save.wait()
    assert uploads(client, s3_bucket) == ["run/model.ckpt-1.data-00000-of-00001"]
    # Uploads of other names (another base name, even one that begins with this one; another directory) are
    # other savers' to finish.
    others = ["elsewhere/model.ckpt-1.index", "run/model.ckpt_best-1.index", "run/other.ckpt-1.index"]
    for key in others:
        client.create_multipart_upload(Bucket=s3_bucket, Key=key)

    fastckpt.Saver().save({"w": np.zeros(3, np.float32)}, prefix, global_step=2)

    assert uploads(client, s3_bucket) == others
    np.testing.assert_array_equal(fastckpt.load_variable(prefix + "-2", "w"), np.zeros(3, np.float32))


def test_listing_uploads_finds_only_those_under_the_prefix(s3_server, s3_bucket):
    client = s3_server.client()
    ids = {key: client.create_multipart_upload(Bucket=s3_bucket, Key=key)["UploadId"] for key in ("a/x-1", "a/y-1")}
    stores = _fastckpt.Stores()
    listed = stores.uploads(f"s3://{s3_bucket}/a/x")
    assert listed == [(f"s3://{s3_bucket}/a/x-1", ids["a/x-1"])]
    stores.abort_upload(f"s3://{s3_bucket}/a/x-1", ids["a/x-1"])
    stores.abort_upload(f"s3://{s3_bucket}/a/x-1", ids["a/x-1"])  # already gone: no error
    assert uploads(client, s3_bucket) == ["a/y-1"]
    assert stores.uploads("/tmp/a/x") == []  # local files have no uploads
