"""Test support for the verifier: deployed-state fixtures, keys and tokens minted with PyJWT (an independent
implementation), and a real JWKS server on 127.0.0.1."""

from __future__ import annotations

import copy
import functools
import json
import threading
import time
from base64 import urlsafe_b64encode
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

TEAM = "acme.cloudflareaccess.com"
ISSUER = f"https://{TEAM}"
APP = "cloudflare:index/zeroTrustAccessApplication:ZeroTrustAccessApplication"
POLICY = "cloudflare:index/zeroTrustAccessPolicy:ZeroTrustAccessPolicy"


def ciphertext(tag: str = "secret") -> dict[str, str]:
    """A secret value as `pulumi stack export` writes it without --show-secrets."""
    from tests._review_export import secret

    return secret(tag)


# -- deployed state --------------------------------------------------------------------------------------
def _dev_plan() -> Any:
    from tests._review_export import dev_config, planned

    result = planned(dev_config(), "dev")
    assert not result.violations, result.violations
    return result


def dev_outputs() -> dict[str, Any]:
    """`pulumi stack output --json` of the dev stack, from the real program."""
    return copy.deepcopy(_dev_plan().outputs)


def dev_export() -> dict[str, Any]:
    """`pulumi stack export` of the dev stack (the review fixtures' document), with what Cloudflare computes
    (`aud`, `saasApp.clientId`) in each app's outputs, as the mock engine made them up for the stack outputs."""
    from tests._review_export import export_document

    result = _dev_plan()
    doc = export_document(result)
    for res in doc["deployment"]["resources"]:
        if res["type"] != APP:
            continue
        made = result.outputs["apps"][res["outputs"]["name"]]
        res["outputs"].setdefault("aud", made["aud"])
        if isinstance(res["outputs"].get("saasApp"), dict):
            res["outputs"]["saasApp"].setdefault("clientId", made["client_id"])
            res["outputs"]["saasApp"].setdefault("clientSecret", ciphertext())
    return doc


def dev_app(name: str) -> dict[str, Any]:
    return _dev_plan().outputs["apps"][name]


UID = {n: f"00000000-0000-4000-8000-00000000000{i}" for i, n in enumerate(
    ["front", "batch", "intruder", "api", "reports", "portal", "plain"], start=1)}
AUD = {n: f"{i:02d}" * 32 for i, n in enumerate(UID, start=1)}
PORTAL_CLIENT_ID = "c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6"


def _linked_rule(uid: str) -> dict[str, Any]:
    # Engine state may spell out every selector, unset ones null.
    return {"email": None, "everyone": None, "linkedAppToken": {"appUid": uid}}


def handmade_export() -> dict[str, Any]:
    """Trust made outside linked-apps: inline policies, require/exclude, an unattached policy, a SaaS target,
    an unrelated resource and ciphertext secrets.

    front -> api          inline non_identity include front
    batch -> api          reusable P-EXCL: include batch, intruder; exclude intruder
    batch -> reports      P-REQ: include front, batch; require batch (front fails the require)
    intruder              named by P-ORPHAN, attached to nothing
    front -> portal       a linked rule on a SaaS app: never grants
    portal (SaaS) -> api  inline non_identity include portal (Bearer flow)

    Shape: `pulumi stack export` version 3 (pulumi/pulumi sdk/go/common/apitype: DeploymentV3, ResourceV3) of
    another program that declares the Cloudflare resources at its top level: each one's `parent` is the stack,
    its `provider` the default `pulumi:providers:cloudflare` resource (listed too), property names camelCase as
    pulumi-cloudflare's bridge writes them, secrets as ciphertext objects; `aud` and `id` are computed outputs.
    """
    stack = "urn:pulumi:prod::other::pulumi:pulumi:Stack::other-prod"
    provider_urn = "urn:pulumi:prod::other::pulumi:providers:cloudflare::default_6_23_1"
    provider = f"{provider_urn}::5d1e6a44-0f7b-4c4b-9c1a-2b3c4d5e6f70"

    def app(name: str, typ: str, policies: list[Any], **extra: Any) -> dict[str, Any]:
        outputs = {"accountId": "0" * 32, "name": name, "type": typ, "aud": AUD[name], "id": UID[name],
                   "policies": policies, **extra}
        return {"urn": f"urn:pulumi:prod::other::{APP}::{name}", "custom": True, "id": UID[name], "type": APP,
                "inputs": {k: v for k, v in outputs.items() if k not in ("aud", "id")}, "outputs": outputs,
                "parent": stack, "provider": provider, "dependencies": []}

    def policy(pid: str, name: str, **rules: Any) -> dict[str, Any]:
        outputs = {"accountId": "0" * 32, "name": name, "decision": "non_identity", "id": pid, **rules}
        return {"urn": f"urn:pulumi:prod::other::{POLICY}::{pid}", "custom": True, "id": pid, "type": POLICY,
                "inputs": {k: v for k, v in outputs.items() if k != "id"}, "outputs": outputs,
                "parent": stack, "provider": provider, "dependencies": []}

    inline_front = {"name": "front may call", "decision": "non_identity", "includes": [_linked_rule(UID["front"])],
                    "precedence": 1}
    inline_portal = {"name": "portal may call", "decision": "non_identity", "includes": [_linked_rule(UID["portal"])],
                     "precedence": 3}
    resources = [
        {"urn": stack, "custom": False,
         "type": "pulumi:pulumi:Stack", "outputs": {"team_domain": TEAM, "db_password": ciphertext()}},
        {"urn": provider_urn, "custom": True, "id": provider.rsplit("::", 1)[1], "type": "pulumi:providers:cloudflare",
         "inputs": {"apiToken": ciphertext("apiToken"), "version": "6.23.1"},
         "outputs": {"apiToken": ciphertext("apiToken"), "version": "6.23.1"}, "parent": stack},
        {"urn": "urn:pulumi:prod::other::cloudflare:index/dnsRecord:DnsRecord::www", "custom": True,
         "type": "cloudflare:index/dnsRecord:DnsRecord", "id": "rec1", "inputs": {"name": "www"},
         "outputs": {"name": "www", "content": ciphertext()}},
        policy("p-excl", "batch but not intruder",
               includes=[_linked_rule(UID["batch"]), _linked_rule(UID["intruder"])], excludes=[_linked_rule(UID["intruder"])]),
        policy("p-req", "front or batch, batch required",
               includes=[_linked_rule(UID["front"]), _linked_rule(UID["batch"])], requires=[_linked_rule(UID["batch"])]),
        policy("p-orphan", "intruder (attached nowhere)", includes=[_linked_rule(UID["intruder"])]),
        policy("p-portal", "front to portal", includes=[_linked_rule(UID["front"])]),
        app("front", "self_hosted", [], domain="front.acme.com"),
        app("batch", "self_hosted", [], domain="batch.acme.com"),
        app("intruder", "self_hosted", [], domain="intruder.acme.com"),
        app("plain", "self_hosted", [], domain="plain.acme.com"),
        app("api", "self_hosted", [inline_front, {"id": "p-excl", "precedence": 2}, inline_portal],
            domain="api.acme.com"),
        app("reports", "self_hosted", [{"id": "p-req", "precedence": 1}], domain="reports.acme.com"),
        app("portal", "saas", [{"id": "p-portal", "precedence": 1}],
            saasApp={"authType": "oidc", "clientId": PORTAL_CLIENT_ID, "clientSecret": ciphertext()}),
    ]
    return {"version": 3, "deployment": {"manifest": {}, "secrets_providers": {"type": "passphrase"},
                                         "resources": resources}}


# -- keys and tokens -------------------------------------------------------------------------------------
def _b64(n: int) -> str:
    return urlsafe_b64encode(n.to_bytes((n.bit_length() + 7) // 8, "big")).rstrip(b"=").decode()


class SigningKey:
    """An RSA key pair named by `kid`, minting tokens with PyJWT."""

    def __init__(self, kid: str, bits: int = 2048) -> None:
        self.kid = kid
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        self.public = self.private.public_key()

    def jwk(self) -> dict[str, str]:
        numbers = self.public.public_numbers()
        return {"kid": self.kid, "kty": "RSA", "alg": "RS256", "use": "sig", "e": _b64(numbers.e), "n": _b64(numbers.n)}

    def mint(self, claims: dict[str, Any], *, headers: dict[str, Any] | None = None, kid: str | None = None) -> str:
        return jwt.encode(claims, self.private, algorithm="RS256",
                          headers={"kid": self.kid if kid is None else kid, **(headers or {})})


def jwks(*keys: SigningKey) -> dict[str, Any]:
    """The certs document: `keys` plus the `public_cert` fields a verifier must not rely on."""
    return {"keys": [k.jwk() for k in keys], "public_cert": {"kid": "ignored", "cert": "-----BEGIN CERT..."},
            "public_certs": []}


def app_claims(aud: str | list[str], *, now: float | None = None, ttl: float = 600, **extra: Any) -> dict[str, Any]:
    """Claims of a Cloudflare Access application token (CLOUDFLARE.md)."""
    now = time.time() if now is None else now
    claims = {"aud": aud if isinstance(aud, list) else [aud], "email": "ann@acme.com", "exp": int(now + ttl),
              "iat": int(now), "nbf": int(now), "iss": ISSUER, "type": "app", "identity_nonce": "n0nce",
              "sub": "7335d417-61da-459d-899c-0a01c76a2f94", "country": "NL"}
    claims.update(extra)
    return claims


def saas_claims(client_id: str, *, now: float | None = None, ttl: float = 600, **extra: Any) -> dict[str, Any]:
    """Claims of an Access-for-SaaS OIDC ID token (unverified format, CLOUDFLARE.md)."""
    now = time.time() if now is None else now
    claims = {"aud": client_id, "email": "ann@acme.com", "exp": int(now + ttl), "iat": int(now),
              "iss": f"{ISSUER}/cdn-cgi/access/sso/oidc/{client_id}", "sub": "7335d417-61da-459d-899c-0a01c76a2f94",
              "name": "Ann"}
    claims.update(extra)
    return claims


class Clock:
    """An injectable clock: tests move time instead of sleeping."""

    def __init__(self, now: float | None = None) -> None:
        self.now = time.time() if now is None else now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# -- a real JWKS server on loopback ----------------------------------------------------------------------
Route = Callable[[], tuple[int, bytes]]


class JwksServer:
    """A threaded HTTP server on 127.0.0.1 (ephemeral port). `routes[path]` answers `(status, body)`; `hits`
    counts requests per path; `delay[path]` holds an answer up to that many seconds (released on close)."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: dict[str, int] = {}
        self.delay: dict[str, float] = {}
        self.auth_routes: dict[str, Callable[[str | None], tuple[int, bytes]]] = {}
        """Routes answered from the request's Authorization header (userinfo endpoints)."""
        self._release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                path = self.path
                server.hits[path] = server.hits.get(path, 0) + 1
                if path in server.delay:
                    server._release.wait(server.delay[path])
                if path in server.auth_routes:
                    status, body = server.auth_routes[path](self.headers.get("authorization"))
                else:
                    route = server.routes.get(path)
                    status, body = route() if route else (404, b"not found")
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up (timeout test)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def serve_json(self, path: str, doc: Any) -> None:
        body = json.dumps(doc).encode()
        self.routes[path] = lambda: (200, body)

    def close(self) -> None:
        self._release.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> JwksServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


CERTS = "/cdn-cgi/access/certs"


def saas_jwks_path(client_id: str) -> str:
    return f"/cdn-cgi/access/sso/oidc/{client_id}/jwks"


def dev_jwks_server(key: SigningKey) -> JwksServer:
    """A running server publishing `key` as the team's certs and as the dev stack's SaaS app (mcp-server)."""
    server = JwksServer()
    server.serve_json(CERTS, jwks(key))
    server.serve_json(saas_jwks_path(dev_app("mcp-server")["client_id"]), jwks(key))
    return server


def userinfo_path(client_id: str) -> str:
    return f"/cdn-cgi/access/sso/oidc/{client_id}/userinfo"


def b64url(data: bytes) -> str:
    return urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_token(header: dict[str, Any], claims: Any, signature: bytes = b"") -> str:
    """A compact JWS assembled by hand (for tokens no honest library would mint)."""
    return ".".join([b64url(json.dumps(header).encode()), b64url(json.dumps(claims).encode()), b64url(signature)])


@functools.cache
def signing_key(kid: str) -> SigningKey:
    """One RSA key per kid per test process (generation is the slow part)."""
    return SigningKey(kid)


# -- App B's origin: service tokens in deployed state ----------------------------------------------------
SERVICE_TOKEN = "cloudflare:index/zeroTrustAccessServiceToken:ZeroTrustAccessServiceToken"
CI_CLIENT_ID = "4e1a2b3c5d6e7f8091a2b3c4d5e6f708.access"
"""A service token's client id as Cloudflare issues it (32 hex characters and `.access`); an origin's assertion
carries it as `common_name`."""


def service_token_resource(name: str = "ci-deploy", client_id: str = CI_CLIENT_ID) -> dict[str, Any]:
    """A ZeroTrustAccessServiceToken as `pulumi stack export` writes it. Shape: pulumi-cloudflare 6's
    zero_trust_access_service_token.py (inputs accountId, name, duration; outputs add id, clientId, clientSecret,
    clientSecretVersion, expiresAt; `additional_secret_outputs=["clientSecret"]`, so only the secret is ciphertext)."""
    inputs = {"accountId": "0" * 32, "name": name, "duration": "8760h"}
    outputs = {**inputs, "id": "3a0e5c1f-9b7d-4e2a-8c6f-1d2b3a4c5e6f", "clientId": client_id,
               "clientSecret": ciphertext("client-secret"), "clientSecretVersion": 1,
               "expiresAt": "2027-11-30T00:00:00Z"}
    return {"urn": f"urn:pulumi:dev::linked-apps::{SERVICE_TOKEN}::{name}", "custom": True,
            "id": outputs["id"], "type": SERVICE_TOKEN, "inputs": inputs, "outputs": outputs,
            "parent": "urn:pulumi:dev::linked-apps::pulumi:pulumi:Stack::linked-apps-dev",
            "provider": "urn:pulumi:dev::linked-apps::pulumi:providers:cloudflare::default_6_5_0::0c1e8a7e-1111-4c1e-8a7e-000000000000",
            "additionalSecretOutputs": ["clientSecret"]}


def with_service_token(doc: dict[str, Any], name: str = "ci-deploy", client_id: str = CI_CLIENT_ID) -> dict[str, Any]:
    """A stack export with one more resource: a deployed service token."""
    doc = copy.deepcopy(doc)
    doc["deployment"]["resources"].append(service_token_resource(name, client_id))
    return doc


def service_claims(aud: str, client_id: str = CI_CLIENT_ID, **extra: Any) -> dict[str, Any]:
    """Claims of the assertion Access sends an origin for a service token (CLOUDFLARE.md: `common_name` = the
    client id, `sub` empty, no `email`)."""
    claims = app_claims(aud, sub="", common_name=client_id, **extra)
    del claims["email"]
    return claims
