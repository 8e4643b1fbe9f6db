"""What the verifier benchmarks share: the dev stack's outputs, an RSA signing key, its JWKS on loopback, pinning
to one core and interleaved rate measurement."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from base64 import urlsafe_b64encode
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa

ROOT = Path(__file__).resolve().parent.parent
KID = "k1"


def dev_outputs() -> dict:
    """The dev stack's outputs from the real program, planned in a child process: a verifier service does not
    load Pulumi, and neither does a benchmark of one (a large heap would bill its garbage collections to it)."""
    code = ("import json; from linked_apps.review.plan import plan, read_config_file, stack_file; "
            "from pathlib import Path; root = Path.cwd(); "
            "print(json.dumps(plan(read_config_file(stack_file('dev', root)), program=root / '__main__.py').outputs))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def signing_key() -> tuple[rsa.RSAPrivateKey, dict]:
    """A fresh RSA-2048 key and the JWKS (`kid` KID) that publishes its public half."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    numbers = key.public_key().public_numbers()

    def b64(n: int) -> str:
        return urlsafe_b64encode(n.to_bytes((n.bit_length() + 7) // 8, "big")).rstrip(b"=").decode()

    return key, {"keys": [{"kty": "RSA", "kid": KID, "alg": "RS256", "use": "sig", "e": b64(numbers.e),
                           "n": b64(numbers.n)}]}


def serve_json(doc: dict) -> tuple[ThreadingHTTPServer, str]:
    """Serve `doc` at every path of a loopback HTTP server; returns the server and its base URL."""
    body = json.dumps(doc).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}"


def one_core(cpu: int | None = None) -> str:
    """Pin this process to one CPU (the lowest it may use, unless given)."""
    try:
        cpu = min(os.sched_getaffinity(0)) if cpu is None else cpu
        os.sched_setaffinity(0, {cpu})
        return f"pinned to CPU {cpu}"
    except (AttributeError, OSError):
        return "not pinned (no sched_setaffinity)"


def rates(fns: list, seconds: float, rounds: int = 8) -> list[float]:
    """Operations per CPU second of each fn (which returns how many it did), measured in interleaved rounds so
    that a change in the machine's load touches every figure alike; `seconds` of measuring per figure. CPU time
    of this process, not wall time: on a shared machine, time spent waiting for the core is not the code's."""
    done, spent = [0] * len(fns), [0.0] * len(fns)
    clock = time.process_time
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            started = clock()
            while (elapsed := clock() - started) < seconds / rounds:
                done[i] += fn()
            spent[i] += elapsed
    return [d / s for d, s in zip(done, spent)]


def raw_rsa(token: str, public: rsa.RSAPublicKey) -> Callable[[], int]:
    """The floor of the work: the bare RSA-2048 PKCS#1 v1.5 SHA-256 check of `token`'s signature, 200 at a time."""
    from base64 import urlsafe_b64decode

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    head, payload, sig = token.split(".")
    message, signature = f"{head}.{payload}".encode(), urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
    pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()

    def raw() -> int:
        verify = public.verify
        for _ in range(200):
            verify(signature, message, pkcs1, sha256)
        return 200

    return raw
