"""Verifier throughput on one core, one run.

    .venv/bin/python bench/verify_throughput.py [--seconds 2]

Measures, for RSA-2048 Access tokens against the dev stack's deployed trust:
  raw_rsa_per_s  bare RSA-2048 PKCS#1 v1.5 SHA-256 verifications with `cryptography` (the floor of the work)
  cold_per_s     decisions on tokens the verifier has not seen (parse + verify + claims + decide + cache)
  warm_per_s     decisions on repeated tokens (served by the verified-token cache)
Every decision is checked to be an allow. Targets: cold >= 0.35x raw, warm >= 20x raw.
The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from base64 import urlsafe_b64decode, urlsafe_b64encode
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import jwt  # noqa: E402  - PyJWT mints the tokens: an implementation independent of the one measured
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding, rsa  # noqa: E402

from components.state import graph_from_outputs  # noqa: E402
from components.verifier import Verifier  # noqa: E402

TARGET, SOURCE = "payroll-api", "hr-portal"


def one_core() -> str:
    try:
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"pinned to CPU {cpu}"
    except (AttributeError, OSError):
        return "not pinned (no sched_setaffinity)"


def serve_jwks(doc: dict) -> tuple[ThreadingHTTPServer, str]:
    body = json.dumps(doc).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}"


def dev_outputs() -> dict:
    """The dev stack's outputs from the real program, planned in a child process: a verifier service does not
    load Pulumi, and neither does this one (a large heap would bill its garbage collections to the verifier)."""
    code = ("import json; from components.plan import plan, read_config_file, stack_file; "
            "print(json.dumps(plan(read_config_file(stack_file('dev'))).outputs))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def rates(fns: list, seconds: float, rounds: int = 8) -> list[float]:
    """Operations per second of each fn (which returns how many it did), measured in interleaved rounds so that
    a change in the machine's load touches every figure alike; `seconds` of measuring per figure."""
    done, spent = [0] * len(fns), [0.0] * len(fns)
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            started = time.perf_counter()
            while (elapsed := time.perf_counter() - started) < seconds / rounds:
                done[i] += fn()
            spent[i] += elapsed
    return [d / s for d, s in zip(done, spent)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per figure")
    parser.add_argument("--tokens", type=int, default=1000, help="distinct tokens minted for the cold run")
    args = parser.parse_args()
    print(one_core(), file=sys.stderr)

    outputs = dev_outputs()
    graph = graph_from_outputs(outputs)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    numbers = key.public_key().public_numbers()
    b64 = lambda n: urlsafe_b64encode(n.to_bytes((n.bit_length() + 7) // 8, "big")).rstrip(b"=").decode()  # noqa: E731
    httpd, url = serve_jwks({"keys": [{"kty": "RSA", "kid": "k1", "alg": "RS256", "use": "sig",
                                       "e": b64(numbers.e), "n": b64(numbers.n)}]})
    now = int(time.time())
    aud = outputs["apps"][SOURCE]["aud"]
    tokens = [jwt.encode({"aud": [aud], "email": f"user{i}@acme.com", "exp": now + 3600, "iat": now, "nbf": now,
                          "iss": "https://acme.cloudflareaccess.com", "type": "app", "identity_nonce": f"n{i}",
                          "sub": f"00000000-0000-4000-8000-{i:012d}", "country": "NL"},
                         key, algorithm="RS256", headers={"kid": "k1"}) for i in range(args.tokens)]
    print(f"{len(tokens)} tokens of {len(tokens[0])} characters", file=sys.stderr)

    # raw: the signature check alone, on a real token's signing input
    head, payload, sig = tokens[0].split(".")
    message, signature = f"{head}.{payload}".encode(), urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
    public, pkcs1, sha256 = key.public_key(), padding.PKCS1v15(), hashes.SHA256()

    def raw() -> int:
        verify = public.verify
        for _ in range(200):
            verify(signature, message, pkcs1, sha256)
        return 200

    verifier = Verifier(graph, access_url=url, cache_size=len(tokens) + 1)
    assert verifier.decide(TARGET, cf_access_token=tokens[0]).allowed  # fetches the keys once

    def cold() -> int:
        verifier.clear_cache()  # every token is new to the verifier again
        decide, allowed = verifier.decide, 0
        for token in tokens:
            allowed += decide(TARGET, cf_access_token=token).allowed
        assert allowed == len(tokens)
        return len(tokens)

    warm_tokens = tokens[:100]
    for token in warm_tokens:
        verifier.decide(TARGET, cf_access_token=token)

    def warm() -> int:
        decide, allowed = verifier.decide, 0
        for _ in range(100):
            for token in warm_tokens:
                allowed += decide(TARGET, cf_access_token=token).allowed
        assert allowed == 100 * len(warm_tokens)
        return 100 * len(warm_tokens)

    raw_rate, cold_rate, warm_rate = rates([raw, cold, warm], args.seconds)
    httpd.shutdown()
    print(f"raw RSA-2048 verify   {raw_rate:12,.0f} /s", file=sys.stderr)
    print(f"cold decisions        {cold_rate:12,.0f} /s  {cold_rate / raw_rate:6.2f}x raw (target >= 0.35x)",
          file=sys.stderr)
    print(f"warm decisions        {warm_rate:12,.0f} /s  {warm_rate / raw_rate:6.2f}x raw (target >= 20x)",
          file=sys.stderr)
    print(json.dumps({"raw_rsa_per_s": round(raw_rate), "cold_per_s": round(cold_rate),
                      "warm_per_s": round(warm_rate)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
