"""A time-stamping authority on 127.0.0.1 for the tests: ``openssl ts -reply`` behind a small HTTP handler.

:func:`make_tsa` makes a test TSA: a root CA and a TSA certificate under it (extendedKeyUsage timeStamping,
critical, as RFC 3161 2.3 and ``openssl ts`` require), valid 2000-2099 so that the machine's date (which
``openssl ts`` stamps with) never matters, and an ``openssl ts`` configuration with its ``[tsa]`` section.
:class:`LocalTsa` serves it on an ephemeral port of 127.0.0.1 only (never a network TSA) and can be told to
misbehave (answer with a redirect elsewhere, with garbage, or stop answering). The ``tsa`` fixture
(tests/conftest.py) starts one per test and stops it after.

The TSA's private key rests in the test's own folder, outside every workspace (the secret scan looks there).
"""

from __future__ import annotations

import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

Behaviour = Literal["answer", "redirect", "garbage", "refuse", "slow"]
#: The policy the test TSA stamps under (a private arc, as openssl's examples use).
POLICY = "1.2.3.4.1"
_VALID = (datetime(2000, 1, 1, tzinfo=timezone.utc), datetime(2099, 12, 31, tzinfo=timezone.utc))


@dataclass(frozen=True)
class TestTsa:
    """A test TSA's files: ``chain`` (its certificate, then its root's: what a workspace names), ``root``."""

    directory: Path
    key: Path
    certificate: Path
    root: Path
    chain: Path
    config: Path

    __test__ = False  # not a test class, whatever pytest thinks of the name


def _certificate(subject: str, key: ec.EllipticCurvePrivateKey, issuer: tuple[str, ec.EllipticCurvePrivateKey] | None,
                 *, ca: bool) -> x509.Certificate:  # fmt: skip
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Workbench tests")])  # fmt: skip
    issuer_name = name if issuer is None else x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, issuer[0]),
         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Workbench tests")]
    )  # fmt: skip
    signer = key if issuer is None else issuer[1]
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_VALID[0])
        .not_valid_after(_VALID[1])
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False)
    )
    if ca:
        usage = x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                              data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                              encipher_only=False, decipher_only=False)  # fmt: skip
    else:
        usage = x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                              data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                              encipher_only=False, decipher_only=False)  # fmt: skip
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
    return builder.add_extension(usage, critical=True).sign(signer, hashes.SHA256())


def make_tsa(directory: Path, name: str = "Test TSA") -> TestTsa:
    """A test TSA in ``directory`` (made there, with its ``openssl ts`` configuration)."""
    directory.mkdir(parents=True, exist_ok=True)
    root_key, tsa_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root = _certificate(f"{name} Root", root_key, None, ca=True)
    tsa = _certificate(name, tsa_key, (f"{name} Root", root_key), ca=False)
    pem = serialization.Encoding.PEM
    paths = TestTsa(directory, directory / "tsa.key", directory / "tsa.pem", directory / "root.pem",
                    directory / "chain.pem", directory / "openssl-ts.cnf")  # fmt: skip
    paths.key.write_bytes(tsa_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    paths.key.chmod(0o600)
    paths.certificate.write_bytes(tsa.public_bytes(pem))
    paths.root.write_bytes(root.public_bytes(pem))
    paths.chain.write_bytes(tsa.public_bytes(pem) + root.public_bytes(pem))
    (directory / "serial").write_text("01\n")
    paths.config.write_text(
        "# openssl ts -reply: the test TSA (tests/support/tsa.py)\n"
        "[tsa]\n"
        "default_tsa = test_tsa\n"
        "[test_tsa]\n"
        f"dir = {directory}\n"
        "serial = $dir/serial\n"
        "crypto_device = builtin\n"
        "signer_cert = $dir/tsa.pem\n"
        # no ``certs``: openssl writes the SET of certificates unsorted, which strict DER (rfc3161-client) refuses;
        # the response carries the TSA's own certificate, the workspace names the chain.
        "signer_key = $dir/tsa.key\n"
        "signer_digest = sha256\n"
        f"default_policy = {POLICY}\n"
        "digests = sha256, sha384, sha512\n"
        "accuracy = secs:1\n"
        "ordering = no\n"
        "tsa_name = yes\n"
        "ess_cert_id_chain = no\n"
        "ess_cert_id_alg = sha256\n"
    )
    return paths


def reply(tsa: TestTsa, query: bytes) -> bytes:
    """``openssl ts -reply`` to one DER TimeStampReq (the response, DER)."""
    with tempfile.TemporaryDirectory(dir=tsa.directory) as work:
        request, response = Path(work) / "query.tsq", Path(work) / "reply.tsr"
        request.write_bytes(query)
        subprocess.run(["openssl", "ts", "-reply", "-config", str(tsa.config), "-queryfile", str(request),
                        "-out", str(response)], check=True, capture_output=True, timeout=30)  # fmt: skip
        return response.read_bytes()


@dataclass
class LocalTsa:
    """A test TSA served over HTTP on 127.0.0.1; ``behaviour`` may be changed while it runs."""

    tsa: TestTsa
    behaviour: Behaviour = "answer"
    #: How many requests it has answered (any behaviour).
    requests: int = 0
    _server: ThreadingHTTPServer | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _port: int = 0

    @property
    def url(self) -> str:
        """Its address (kept after :meth:`stop`: then nothing answers there, as for a TSA out of reach)."""
        assert self._port, "the TSA was never started"
        return f"http://127.0.0.1:{self._port}/tsa"

    def start(self) -> LocalTsa:
        local = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                local.requests += 1
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if local.behaviour == "redirect":
                    self.send_response(307)
                    self.send_header("Location", "http://192.0.2.1/tsa")  # TEST-NET-1: never reached
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if local.behaviour == "refuse":
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if local.behaviour == "slow":
                    threading.Event().wait(5)
                data = b"not a timestamp response" if local.behaviour == "garbage" else reply(local.tsa, body)
                self.send_response(200)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's name
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        self._port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="test-tsa", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join(timeout=10)
            self._server = None


def name_tsa(workspace: Path, local: LocalTsa, *, timeout: float = 2.0) -> Path:
    """Make the workspace at ``workspace`` name ``local`` as its TSA (``timestamping:`` in its workspace.yaml, the
    chain copied to ``timestamping/tsa-chain.pem``); returns the chain's path in the workspace."""
    chain = workspace / "timestamping" / "tsa-chain.pem"
    chain.parent.mkdir(mode=0o755, exist_ok=True)
    chain.write_bytes(local.tsa.chain.read_bytes())
    config = workspace / "workspace.yaml"
    named = (
        f"timestamping:\n  url: {local.url}\n  certificate: timestamping/tsa-chain.pem\n  timeout_seconds: {timeout}\n"
    )
    config.write_text(config.read_text() + named)
    return chain


def seal_transcript(transcript: Path, clock: object = None) -> Path:
    """A small sealed transcript at ``transcript`` (a start, one step and its seal, with a throwaway P-256 key)."""
    from ceremony.record.transcript import Transcript

    log = Transcript(transcript, clock)  # type: ignore[arg-type]
    log.start(transcript.stem, "token-init", {})
    log.step("initialise", "initialise the token", actors=["alice"])
    log.seal(ec.generate_private_key(ec.SECP256R1()), key_label="ceremony-seal")
    return transcript
