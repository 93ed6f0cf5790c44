"""HTTPS object stores: fastckpt's TLS (rustls, its cryptography by ring) against moto's S3 server speaking TLS on
loopback, with a certificate authority made for the test and named by SSL_CERT_FILE, as a private CA is.

Reads and writes through s3:// URLs whose endpoint is https://, reads of https:// URLs, and a server whose
certificate no trusted authority signed refused.
"""

import datetime
import http.client
import ipaddress
import ssl
import sys
import time
from typing import NamedTuple

import boto3
import fastckpt
import numpy as np
import pytest
from botocore.config import Config
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from fastckpt import errors
from helpers.checkpoints import Expected, check_against_expected
from helpers.object_stores import (
    LOOPBACK,
    S3_ACCESS_KEY,
    S3_REGION,
    S3_SECRET_KEY,
    ServerProcess,
    apply_env,
    s3_env,
    unique_bucket_name,
    upload,
)
from helpers.processes import free_port

KIND = "sharded"  # a fixture TensorFlow wrote: several data files, read by ranges


class TlsServer(NamedTuple):
    endpoint: str  # https://127.0.0.1:<port>
    ca_file: str  # the authority that signed its certificate
    other_ca_file: str  # an authority that did not
    client: object  # boto3's S3 client of it


def _write_pem(path, *objects) -> str:
    with open(path, "wb") as out:
        for item in objects:
            if isinstance(item, x509.Certificate):
                out.write(item.public_bytes(serialization.Encoding.PEM))
            else:
                out.write(
                    item.private_bytes(
                        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                    )
                )
    return str(path)


def _certificate(subject: str, key, issuer: str, issuer_key, authority: bool) -> x509.Certificate:
    """A certificate valid for a day: an authority's, or a server's for 127.0.0.1 signed by ``issuer_key``."""
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=authority, path_length=None), critical=True)
    )
    if authority:
        usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)  # certificates, CRLs
        builder = builder.add_extension(usage, critical=True)
    else:
        names = [x509.IPAddress(ipaddress.ip_address(LOOPBACK)), x509.DNSName("localhost")]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _authority(directory, name: str):
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = _certificate(name, key, name, key, authority=True)
    return key, _write_pem(directory / f"{name}.pem", certificate)


def _wait_for_tls(port: int, ca_file: str, server: ServerProcess, timeout: float = 30.0) -> None:
    """Polls until the server completes a TLS handshake and answers; RuntimeError with its log if it doesn't."""
    context = ssl.create_default_context(cafile=ca_file)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"moto (TLS) exited with code {server.process.returncode}:\n{server.log()}")
        connection = http.client.HTTPSConnection(LOOPBACK, port, context=context, timeout=2.0)
        try:
            connection.request("GET", "/")
            connection.getresponse().read()
            return
        except (OSError, http.client.HTTPException):
            time.sleep(0.05)
        finally:
            connection.close()
    server.stop()
    raise RuntimeError(f"moto (TLS) did not answer on port {port} within {timeout:.0f} s:\n{server.log()}")


@pytest.fixture(scope="module")
def tls_s3(tmp_path_factory) -> TlsServer:
    """moto's S3 server over TLS, with a certificate for 127.0.0.1 signed by an authority of the test's own."""
    directory = tmp_path_factory.mktemp("tls")
    ca_key, ca_file = _authority(directory, "fastckpt-test-ca")
    _, other_ca_file = _authority(directory, "fastckpt-other-ca")
    server_key = ec.generate_private_key(ec.SECP256R1())
    certificate = _certificate("localhost", server_key, "fastckpt-test-ca", ca_key, authority=False)
    cert_file = _write_pem(directory / "server.pem", certificate)
    key_file = _write_pem(directory / "server-key.pem", server_key)
    port = free_port()
    command = [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(port), "-c", cert_file, "-k", key_file]
    server = ServerProcess("moto-tls", command, port, directory / "moto.log")
    try:
        _wait_for_tls(port, ca_file, server)
        endpoint = f"https://{LOOPBACK}:{port}"
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            verify=ca_file,
            aws_access_key_id=S3_ACCESS_KEY,
            aws_secret_access_key=S3_SECRET_KEY,
            region_name=S3_REGION,
            config=Config(s3={"addressing_style": "path"}),
        )
        yield TlsServer(endpoint, ca_file, other_ca_file, client)
    finally:
        server.stop()


@pytest.fixture
def tls_bucket(tls_s3, monkeypatch):
    """A public bucket on the TLS server holding a TensorFlow fixture under sharded/, the AWS_* variables set to
    reach the server and SSL_CERT_FILE to trust its authority; the fixture's Expected, its path made the URL."""
    bucket = unique_bucket_name("tls")
    tls_s3.client.create_bucket(Bucket=bucket)
    tls_s3.client.put_bucket_acl(Bucket=bucket, ACL="public-read")
    expected = Expected(KIND)
    upload(tls_s3.client, bucket, expected.dir, KIND)
    apply_env(monkeypatch, {**s3_env(tls_s3.endpoint), "AWS_ALLOW_HTTP": "false"})
    monkeypatch.setenv("SSL_CERT_FILE", tls_s3.ca_file)
    return bucket, expected


def _moved(expected: Expected, root: str) -> Expected:
    expected.path = f"{root}/{KIND}/{expected.path[len(str(expected.dir)) + 1 :]}"
    return expected


def test_s3_over_https_reads_as_tensorflow_read_and_writes(tls_bucket):
    bucket, expected = tls_bucket
    check_against_expected(_moved(expected, f"s3://{bucket}"))
    prefix = f"s3://{bucket}/written/model.ckpt"
    with fastckpt.CheckpointWriter(prefix) as writer:
        writer.add("v", np.arange(1000, dtype=np.float32))
    np.testing.assert_array_equal(fastckpt.load_variable(prefix, "v"), np.arange(1000, dtype=np.float32))


def test_https_urls_read_as_tensorflow_read(tls_s3, tls_bucket):
    bucket, expected = tls_bucket
    check_against_expected(_moved(expected, f"{tls_s3.endpoint}/{bucket}"))


def test_a_certificate_no_trusted_authority_signed_is_refused(tls_s3, tls_bucket, monkeypatch):
    bucket, expected = tls_bucket
    url = _moved(expected, f"s3://{bucket}").path
    monkeypatch.setenv("SSL_CERT_FILE", tls_s3.other_ca_file)
    # Stores are kept per configuration: options of their own make this one anew, with the other authority.
    with pytest.raises(errors.UnavailableError, match="certificate") as refused:
        fastckpt.NewCheckpointReader(url, storage_options={"max_retries": "0"})
    assert url in str(refused.value)
    monkeypatch.setenv("SSL_CERT_FILE", tls_s3.ca_file)
    trusted = fastckpt.NewCheckpointReader(url, storage_options={"max_retries": "1"})
    name = "c/.ATTRIBUTES/VARIABLE_VALUE"
    np.testing.assert_array_equal(trusted.get_tensor(name), expected.value(name))
