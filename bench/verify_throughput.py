"""Verifier throughput on one core, one run.

    .venv/bin/python bench/verify_throughput.py [--seconds 2]

Measures, for RSA-2048 Access tokens against the dev stack's deployed trust:
  raw_rsa_per_s  bare RSA-2048 PKCS#1 v1.5 SHA-256 verifications with `cryptography` (the floor of the work)
  cold_per_s     decisions on tokens the verifier has not seen (parse + verify + claims + decide + cache)
  warm_per_s     decisions on repeated tokens (served by the verified-token cache)
Every decision is checked to be an allow. Rates are per CPU second of this process (see _jwks.rates).
Targets: cold >= 0.5x raw, warm >= 20x raw.
The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from _jwks import KID, ROOT, dev_outputs, one_core, rates, raw_rsa, serve_json, signing_key

sys.path.insert(0, str(ROOT))

import jwt  # noqa: E402  - PyJWT mints the tokens: an implementation independent of the one measured

from linked_apps.state import graph_from_outputs  # noqa: E402
from linked_apps.verifier import Verifier  # noqa: E402

TARGET, SOURCE = "payroll-api", "hr-portal"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per figure")
    parser.add_argument("--tokens", type=int, default=1000, help="distinct tokens minted for the cold run")
    args = parser.parse_args()
    print(one_core(), file=sys.stderr)

    outputs = dev_outputs()
    graph = graph_from_outputs(outputs)
    key, keys = signing_key()
    httpd, url = serve_json(keys)
    now = int(time.time())
    aud = outputs["apps"][SOURCE]["aud"]
    tokens = [jwt.encode({"aud": [aud], "email": f"user{i}@acme.com", "exp": now + 3600, "iat": now, "nbf": now,
                          "iss": "https://acme.cloudflareaccess.com", "type": "app", "identity_nonce": f"n{i}",
                          "sub": f"00000000-0000-4000-8000-{i:012d}", "country": "NL"},
                         key, algorithm="RS256", headers={"kid": KID}) for i in range(args.tokens)]
    print(f"{len(tokens)} tokens of {len(tokens[0])} characters", file=sys.stderr)

    raw = raw_rsa(tokens[0], key.public_key())

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
    print(f"cold decisions        {cold_rate:12,.0f} /s  {cold_rate / raw_rate:6.2f}x raw (target >= 0.5x)",
          file=sys.stderr)
    print(f"warm decisions        {warm_rate:12,.0f} /s  {warm_rate / raw_rate:6.2f}x raw (target >= 20x)",
          file=sys.stderr)
    print(json.dumps({"raw_rsa_per_s": round(raw_rate), "cold_per_s": round(cold_rate),
                      "warm_per_s": round(warm_rate)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
