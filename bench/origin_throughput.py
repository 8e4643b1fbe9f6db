"""App B's origin decision on one core, one run.

    .venv/bin/python bench/origin_throughput.py [--seconds 2] [--http-seconds 3]

Measures, for RSA-2048 Access assertions for payroll-api against the dev stack's deployed trust:
  raw_rsa_per_s        bare RSA-2048 PKCS#1 v1.5 SHA-256 verifications with `cryptography` (the floor)
  new_per_s            origin decisions on assertions the verifier has not seen (Verifier.decide_origin)
  repeated_per_s       origin decisions on repeated assertions (a browser session sends the same one)
  pyjwt_per_s          PyJWT `jwt.decode` doing the same checks (RS256, iss, aud, exp/nbf/iat, then type/sub)
  bare_rps, guarded_rps  requests/s of a trivial endpoint under uvicorn, without and with AccessMiddleware
                       (repeated assertions); the server runs pinned to the same one core, the load generator
                       (asyncio, keep-alive connections) on another core when there is one.
Every decision and response is checked to be an allow; decision rates are per CPU second (see _jwks.rates),
requests per wall second. Targets: new >= 0.5x raw, repeated >= 40x raw,
guarded >= 0.8x bare. The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _jwks import KID, ROOT, dev_outputs, one_core, rates, raw_rsa, serve_json, signing_key

sys.path.insert(0, str(ROOT))

import jwt  # noqa: E402  - PyJWT mints the tokens and is the baseline

from linked_apps.state import graph_from_outputs  # noqa: E402
from linked_apps.verifier import Verifier  # noqa: E402

TARGET = "payroll-api"
ISSUER = "https://acme.cloudflareaccess.com"


# -- the server side (a child process: `--serve bare|guarded`) ---------------------------------------------
async def ok(scope: dict, receive: object, send: object) -> None:
    """The trivial endpoint: 200 "ok" (it reads the verdict when there is one, as a real handler would)."""
    if scope["type"] != "http":
        return
    via = (scope.get("state") or {}).get("via", "-")
    body = b"ok " + via.encode()
    await send({"type": "http.response.start", "status": 200,  # type: ignore[operator]
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})  # type: ignore[operator]


def serve(kind: str, outputs_file: str, keys_url: str, port_file: str, cpu: int) -> None:
    import uvicorn

    from linked_apps.verifier import AccessMiddleware

    one_core(cpu)
    app = ok
    if kind == "guarded":
        graph = graph_from_outputs(json.loads(Path(outputs_file).read_text()))
        app = AccessMiddleware(ok, verifier=Verifier(graph, access_url=keys_url), target=TARGET)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off",
                                           access_log=False))

    async def run() -> None:
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        Path(port_file).write_text(str(server.servers[0].sockets[0].getsockname()[1]))
        await task

    asyncio.run(run())


# -- the load generator --------------------------------------------------------------------------------------
async def _load(port: int, requests: list[bytes], seconds: float, connections: int) -> int:
    deadline = time.perf_counter() + seconds
    done = 0

    async def one(request: bytes) -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < deadline:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                status = head[9:12]
                length = int(head.lower().split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
                body = await reader.readexactly(length)
                if status != b"200":
                    raise SystemExit(f"the server answered {status.decode()}: {body[:200]!r}")
                done += 1
        finally:
            writer.close()

    await asyncio.gather(*(one(requests[i % len(requests)]) for i in range(connections)))
    return done


def http_rates(ports: dict[str, int], requests: list[bytes], seconds: float, rounds: int = 8,
               connections: int = 8) -> dict[str, float]:
    done = dict.fromkeys(ports, 0)
    for _ in range(rounds):
        for kind, port in ports.items():
            done[kind] += asyncio.run(_load(port, requests, seconds / rounds, connections))
    return {kind: n / seconds for kind, n in done.items()}


def start_servers(outputs: dict, keys_url: str, cpu: int, tmp: Path) -> tuple[dict[str, int], list]:
    outputs_file = tmp / "outputs.json"
    outputs_file.write_text(json.dumps(outputs))
    ports, children = {}, []
    for kind in ("bare", "guarded"):
        port_file = tmp / f"{kind}.port"
        children.append(subprocess.Popen([sys.executable, __file__, "--serve", kind, str(outputs_file), keys_url,
                                          str(port_file), str(cpu)], cwd=Path(__file__).parent))
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text():
            if time.monotonic() > deadline or children[-1].poll() is not None:
                raise SystemExit(f"the {kind} server did not start")
            time.sleep(0.05)
        ports[kind] = int(port_file.read_text())
    return ports, children


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve(*sys.argv[2:6], int(sys.argv[6]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per decision figure")
    parser.add_argument("--http-seconds", type=float, default=4.0, help="measuring time per HTTP figure")
    parser.add_argument("--tokens", type=int, default=1000, help="distinct assertions minted for the new run")
    args = parser.parse_args()
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
    print(one_core(cpus[0]), file=sys.stderr)

    outputs = dev_outputs()
    graph = graph_from_outputs(outputs)
    key, keys = signing_key()
    httpd, url = serve_json(keys)
    now = int(time.time())
    aud = outputs["apps"][TARGET]["aud"]
    tokens = [jwt.encode({"aud": [aud], "email": f"user{i}@acme.com", "exp": now + 3600, "iat": now, "nbf": now,
                          "iss": ISSUER, "type": "app", "identity_nonce": f"n{i}",
                          "sub": f"00000000-0000-4000-8000-{i:012d}", "country": "NL"},
                         key, algorithm="RS256", headers={"kid": KID}) for i in range(args.tokens)]
    print(f"{len(tokens)} assertions of {len(tokens[0])} characters", file=sys.stderr)
    raw = raw_rsa(tokens[0], key.public_key())

    verifier = Verifier(graph, access_url=url, cache_size=len(tokens) + 1)
    assert verifier.decide_origin(TARGET, assertion=tokens[0]).via == "user"  # fetches the keys once

    def new() -> int:
        verifier.clear_cache()  # every assertion is new to the verifier again
        decide, allowed = verifier.decide_origin, 0
        for token in tokens:
            allowed += decide(TARGET, assertion=token).allowed
        assert allowed == len(tokens)
        return len(tokens)

    repeated_tokens = tokens[:100]
    for token in repeated_tokens:
        verifier.decide_origin(TARGET, assertion=token)

    def repeated() -> int:
        decide, allowed = verifier.decide_origin, 0
        for _ in range(100):
            for token in repeated_tokens:
                allowed += decide(TARGET, assertion=token).allowed
        assert allowed == 100 * len(repeated_tokens)
        return 100 * len(repeated_tokens)

    public = key.public_key()

    sample = tokens[:200]

    def pyjwt() -> int:
        decode, allowed = jwt.decode, 0
        for token in sample:
            claims = decode(token, public, algorithms=["RS256"], audience=aud, issuer=ISSUER, leeway=30,
                            options={"require": ["exp", "iss", "aud"]})
            allowed += claims.get("type") == "app" and bool(claims.get("sub"))
        assert allowed == len(sample)
        return len(sample)

    raw_rate, new_rate, repeated_rate, pyjwt_rate = rates([raw, new, repeated, pyjwt], args.seconds)
    print(f"raw RSA-2048 verify     {raw_rate:12,.0f} /s", file=sys.stderr)
    print(f"new assertions          {new_rate:12,.0f} /s  {new_rate / raw_rate:6.2f}x raw (target >= 0.5x)",
          file=sys.stderr)
    print(f"repeated assertions     {repeated_rate:12,.0f} /s  {repeated_rate / raw_rate:6.2f}x raw "
          "(target >= 40x)", file=sys.stderr)
    print(f"PyJWT jwt.decode        {pyjwt_rate:12,.0f} /s  {pyjwt_rate / raw_rate:6.2f}x raw", file=sys.stderr)

    # HTTP: the same assertions on every request (a browser session), 8 keep-alive connections
    requests = [(f"GET / HTTP/1.1\r\nhost: payroll.acme.com\r\ncf-access-jwt-assertion: {token}\r\n"
                 "accept: */*\r\n\r\n").encode() for token in tokens[:8]]
    with tempfile.TemporaryDirectory() as tmp:
        ports, children = start_servers(outputs, url, cpus[0], Path(tmp))
        try:
            if len(cpus) > 1:
                os.sched_setaffinity(0, {cpus[1]})  # the load generator must not compete with the server
            http_rates(ports, requests, 0.5)  # warm-up: the guarded server fetches its keys
            measured = http_rates(ports, requests, args.http_seconds)
        finally:
            for child in children:
                child.terminate()
                child.wait(10)
    httpd.shutdown()
    bare, guarded = measured["bare"], measured["guarded"]
    print(f"uvicorn, bare endpoint  {bare:12,.0f} req/s", file=sys.stderr)
    print(f"uvicorn + middleware    {guarded:12,.0f} req/s  {guarded / bare:6.2f}x bare (target >= 0.8x)",
          file=sys.stderr)
    print(json.dumps({"raw_rsa_per_s": round(raw_rate), "new_per_s": round(new_rate),
                      "repeated_per_s": round(repeated_rate), "pyjwt_per_s": round(pyjwt_rate),
                      "new_x_raw": round(new_rate / raw_rate, 2), "repeated_x_raw": round(repeated_rate / raw_rate, 1),
                      "pyjwt_x_raw": round(pyjwt_rate / raw_rate, 2), "bare_rps": round(bare),
                      "guarded_rps": round(guarded), "guarded_x_bare": round(guarded / bare, 2)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
