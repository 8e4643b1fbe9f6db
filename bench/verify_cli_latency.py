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
import time
from pathlib import Path

import jwt
from _jwks import KID, dev_outputs, serve_json, signing_key


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()

    outputs = dev_outputs()
    key, keys = signing_key()
    httpd, url = serve_json(keys)
    now = int(time.time())
    token = jwt.encode({"aud": [outputs["apps"]["hr-portal"]["aud"]], "email": "ann@acme.com", "exp": now + 3600,
                        "iat": now, "nbf": now, "iss": "https://acme.cloudflareaccess.com", "type": "app",
                        "sub": "7335d417-61da-459d-899c-0a01c76a2f94"}, key, algorithm="RS256", headers={"kid": KID})
    script = Path(sys.executable).with_name("linked-apps")
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "outputs.json"
        state.write_text(json.dumps(outputs))
        command = [str(script), "verify", "--state", str(state), "--to", "payroll-api", "--cf-access-token", token,
                   "--access-url", url, "--json"]
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
