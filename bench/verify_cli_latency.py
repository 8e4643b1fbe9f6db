"""Wall time of one `linked-apps verify` (a fresh process: start-up, imports, state, key fetch, verdict).

    .venv/bin/python bench/verify_cli_latency.py [--runs 15]

Keys are served from a loopback HTTP server (`--access-url`), so the figure is the command's own cost, not
the network's. Target: about a quarter of a second. The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from base64 import urlsafe_b64encode
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import jwt  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402

from components.plan import plan, read_config_file, stack_file  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()

    outputs = plan(read_config_file(stack_file("dev"))).outputs
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    numbers = key.public_key().public_numbers()
    b64 = lambda n: urlsafe_b64encode(n.to_bytes((n.bit_length() + 7) // 8, "big")).rstrip(b"=").decode()  # noqa: E731
    body = json.dumps({"keys": [{"kty": "RSA", "kid": "k1", "e": b64(numbers.e), "n": b64(numbers.n)}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    now = int(time.time())
    token = jwt.encode({"aud": [outputs["apps"]["hr-portal"]["aud"]], "email": "ann@acme.com", "exp": now + 3600,
                        "iat": now, "nbf": now, "iss": "https://acme.cloudflareaccess.com", "type": "app",
                        "sub": "7335d417-61da-459d-899c-0a01c76a2f94"}, key, algorithm="RS256", headers={"kid": "k1"})
    script = Path(sys.executable).with_name("linked-apps")
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "outputs.json"
        state.write_text(json.dumps(outputs))
        command = [str(script), "verify", "--state", str(state), "--to", "payroll-api", "--cf-access-token", token,
                   "--access-url", f"http://127.0.0.1:{httpd.server_address[1]}", "--json"]
        baseline, times = [], []
        for _ in range(args.runs):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", "pass"], check=True)
            baseline.append(time.perf_counter() - started)
            started = time.perf_counter()
            result = subprocess.run(command, capture_output=True, text=True)
            times.append(time.perf_counter() - started)
            assert result.returncode == 0 and json.loads(result.stdout)["allowed"], result.stdout + result.stderr
    httpd.shutdown()
    median = statistics.median(times)
    print(f"python -c pass        median {statistics.median(baseline):.3f} s", file=sys.stderr)
    print(f"linked-apps verify    median {median:.3f} s  min {min(times):.3f} s  max {max(times):.3f} s "
          f"({args.runs} runs; target about 0.25 s)", file=sys.stderr)
    print(json.dumps({"median_s": round(median, 3), "min_s": round(min(times), 3), "max_s": round(max(times), 3),
                      "python_startup_s": round(statistics.median(baseline), 3)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
