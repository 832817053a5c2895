"""A real redis-server that speaks only TLS, with certificates made in a test's tmp dir.

The certificates are made with `cryptography` (already in the lock, so no tool is assumed): a
certificate authority, a server certificate for 127.0.0.1 and localhost signed by it, a client
certificate signed by it (the server asks for one, as `tls-auth-clients` does by default), and a
second authority that signed nothing here, for the wrong-CA case.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from redis.backoff import NoBackoff
from redis.retry import Retry

from swarmlab.cluster import PORT_ATTEMPTS, PortTaken, free_port, port_taken


@dataclass(frozen=True)
class Certificates:
    ca: Path
    other_ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[str, ec.EllipticCurvePrivateKey] | None,
    names: list[x509.GeneralName] | None = None,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    issuer_name, issuer_key = issuer or (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if issuer is None:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def make_certificates(folder: Path) -> Certificates:
    folder.mkdir(parents=True, exist_ok=True)
    paths = Certificates(
        ca=folder / "ca.crt",
        other_ca=folder / "other-ca.crt",
        server_cert=folder / "server.crt",
        server_key=folder / "server.key",
        client_cert=folder / "client.crt",
        client_key=folder / "client.key",
    )
    ca_key = ec.generate_private_key(ec.SECP256R1())
    other_key = ec.generate_private_key(ec.SECP256R1())
    pem = serialization.Encoding.PEM
    paths.ca.write_bytes(_certificate("swarmlab test CA", ca_key, None).public_bytes(pem))
    paths.other_ca.write_bytes(_certificate("another CA", other_key, None).public_bytes(pem))
    here = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
    for cert, key_path, subject, names in (
        (paths.server_cert, paths.server_key, "redis", here),
        (paths.client_cert, paths.client_key, "lab", None),
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        signed = _certificate(subject, key, ("swarmlab test CA", ca_key), names)
        cert.write_bytes(signed.public_bytes(pem))
        _write_key(key, key_path)
    return paths


class TlsRedis:
    """`with TlsRedis(folder) as server: server.url()` - TLS only, loopback, stopped by PID."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.certificates = make_certificates(folder / "certs")
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, ca: Path | None = None, **options: str) -> str:
        """A `rediss://` URL of this server, trusting `ca` (its own by default), with the
        client certificate, and any other `options`."""
        certs = self.certificates
        query = {
            "ssl_ca_certs": str(ca or certs.ca),
            "ssl_certfile": str(certs.client_cert),
            "ssl_keyfile": str(certs.client_key),
        } | options
        return f"rediss://127.0.0.1:{self.port}/0?{urlencode(query)}"

    def __enter__(self) -> TlsRedis:
        """Start the server on a free port; one taken by another process before the server
        binds it is picked again, as the lab's own RedisServer does."""
        for attempt in range(1, PORT_ATTEMPTS + 1):
            try:
                return self._start_once()
            except PortTaken:
                if attempt == PORT_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    def _start_once(self) -> TlsRedis:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        certs, self.port = self.certificates, free_port()
        options = {
            "port": "0",  # TLS only: nothing answers in the clear
            "tls-port": str(self.port),
            "bind": "127.0.0.1",
            "tls-cert-file": str(certs.server_cert),
            "tls-key-file": str(certs.server_key),
            "tls-ca-cert-file": str(certs.ca),
            "save": "",
            "appendonly": "no",
            "dir": str(self.folder),
        }
        log = self.folder / f"redis-{self.port}.log"
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [binary, *(part for k, v in options.items() for part in (f"--{k}", v))],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        client = redis.Redis.from_url(  # each probe once, bounded: the loop is the retry
            self.url(), socket_connect_timeout=0.5, socket_timeout=0.5, retry=Retry(NoBackoff(), 0)
        )
        give_up = time.monotonic() + 10
        try:
            while True:
                if self.process.poll() is not None:
                    if port_taken(log.read_text(errors="replace")):
                        raise PortTaken(self.port)
                    raise RuntimeError(f"redis-server (TLS) exited with {self.process.returncode}")
                try:
                    client.ping()
                    return self
                except redis.RedisError:
                    if time.monotonic() > give_up:
                        raise
                    time.sleep(0.05)
        except BaseException:
            self.__exit__()
            raise
        finally:
            client.close()

    def __exit__(self, *exc: object) -> None:
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
