"""A loopback fake of the Cloudflare API v4, for the reads linked-apps makes of an account.

The network is faked, never the formats. Shapes, from the API reference (developers.cloudflare.com/api,
"Access applications", "Access reusable policies", "Zero Trust organization") and the official SDK's types
(`cloudflare` 5.x: `types/zero_trust/access/application_list_response.py`, `policy_list_response.py`,
`types/zero_trust/organization.py`, `pagination.py`):
- every answer is the v4 envelope `{"success", "errors": [{"code", "message"}], "messages", "result"}`; lists add
  `"result_info": {"page", "per_page", "count", "total_count"}` (`V4PagePaginationArray`), and the SDK asks for
  `page=1, 2, ...` until a page comes back empty;
- an application carries `id` (and `uid`, the same UUID, as the Linked App Token page's example shows), `aud`,
  `type`, `name`, `domain`, `destinations`, `session_duration`, timestamps and `policies[]`: each attached policy in
  full (`id`, `name`, `decision`, `include`, `exclude`, `require`, `precedence`, timestamps), reusable or not;
  a SaaS app carries `saas_app` (`auth_type: oidc`, `client_id`, `redirect_uris`, `grant_types`, `scopes`,
  `access_token_lifetime`; the client secret is not returned on reads);
- rules are snake_case objects, e.g. `{"linked_app_token": {"app_uid": "<uid>"}}`, `{"email_domain": {"domain": ...}}`;
- `GET /accounts/{id}/access/organizations` answers one object whose `auth_domain` is the team domain;
- a bad token is `403` with `{"code": 10000, "message": "Authentication error"}`; throttling is `429` with a
  `Retry-After` header (seconds) and code 971.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests._verifier_support import APP, POLICY

SECRET_SIG = "4dabf18193072939515e22adb298388d"
"""The key that marks a secret in `pulumi stack export` (sdk/go/common/resource/sig)."""

ACCOUNT = "0123456789abcdef0123456789abcdef"
TOKEN = "fake-api-token-0123456789"
STAMP = "2026-11-02T09:30:00Z"


def envelope(result: Any, *, info: Mapping[str, int] | None = None, errors: list[dict[str, Any]] | None = None,
             success: bool = True) -> dict[str, Any]:
    doc: dict[str, Any] = {"success": success, "errors": errors or [], "messages": [], "result": result}
    if info is not None:
        doc["result_info"] = dict(info)
    return doc


def api_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    """A rule as the API spells it: snake_case keys (`linkedAppToken.appUid` -> `linked_app_token.app_uid`)."""
    def snake(name: str) -> str:
        return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)

    return {snake(k): ({snake(ik): iv for ik, iv in v.items()} if isinstance(v, Mapping) else v)
            for k, v in rule.items() if v is not None}


def api_policy(pid: str, props: Mapping[str, Any], *, precedence: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": pid, "name": props.get("name"), "decision": props.get("decision"),
        "include": [api_rule(r) for r in props.get("includes") or props.get("include") or []],
        "exclude": [api_rule(r) for r in props.get("excludes") or props.get("exclude") or []],
        "require": [api_rule(r) for r in props.get("requires") or props.get("require") or []],
        "session_duration": "24h", "created_at": STAMP, "updated_at": STAMP,
    }
    if precedence is not None:
        out["precedence"] = precedence
    return out


def account_from_export(export: Mapping[str, Any]) -> dict[str, Any]:
    """The trust of a `pulumi stack export`, as the API would list it for the account: apps with their attached
    policies in full, the reusable policies, and the organization. Only the API's own field names appear."""
    resources = export["deployment"]["resources"]
    stack = next(r for r in resources if r["type"] == "pulumi:pulumi:Stack")
    exported_apps = (stack.get("outputs") or {}).get("apps") or {}
    policies = {r["id"]: r["outputs"] for r in resources if r["type"] == POLICY and not r.get("delete")}
    # Reusable policies the stack attaches by id but does not manage (`policyIds`) exist in the account too.
    for res in resources:
        for attached in (res.get("outputs") or {}).get("policies") or [] if res["type"] == APP else []:
            policies.setdefault(attached["id"], {"name": "Finance admins", "decision": "allow",
                                                 "includes": [{"emailDomain": {"domain": "acme.com"}}]})
    apps = []
    for res in resources:
        if res["type"] != APP or res.get("delete"):
            continue
        out = res["outputs"]
        app: dict[str, Any] = {
            "id": res["id"], "uid": res["id"], "aud": out.get("aud"), "type": out["type"], "name": out["name"],
            "session_duration": out.get("sessionDuration") or "24h", "created_at": STAMP, "updated_at": STAMP,
            "app_launcher_visible": True, "allowed_idps": [],
            "policies": [api_policy(p["id"], policies.get(p["id"], {}), precedence=p.get("precedence"))
                         for p in out.get("policies") or []],
        }
        if out["type"] == "saas":
            # The export holds `saasApp` as ciphertext (the provider marks its client secret sensitive); the
            # account knows it in clear: the settings the program sent (inputs) and the client id it exported.
            saas = out.get("saasApp") if SECRET_SIG not in (out.get("saasApp") or {}) else None
            saas = saas or {**(res.get("inputs") or {}).get("saasApp", {}),
                            "clientId": exported_apps.get(out["name"], {}).get("client_id")}
            app["saas_app"] = {"auth_type": "oidc", "client_id": saas.get("clientId"),
                               "redirect_uris": saas.get("redirectUris") or [],
                               "grant_types": saas.get("grantTypes") or ["authorization_code"],
                               "scopes": saas.get("scopes") or ["openid", "email", "profile"],
                               "access_token_lifetime": saas.get("accessTokenLifetime") or "5m"}
        else:
            app["domain"] = out.get("domain")
            app["destinations"] = [{"type": "public", "uri": out.get("domain")}]
        apps.append(app)
    # The account also holds the apps the stack only names (existing, looked up): its `apps` output has them.
    known = {a["id"] for a in apps}
    for name, entry in (stack.get("outputs", {}).get("apps") or {}).items():
        uid = entry.get("uid") if isinstance(entry, Mapping) else None
        if isinstance(uid, str) and uid not in known and not entry.get("managed", True):
            apps.append({"id": uid, "uid": uid, "aud": entry.get("aud") or uid.replace("-", "") * 2,
                         "type": entry["type"], "name": name, "domain": f"{name}.acme.com",
                         "destinations": [{"type": "public", "uri": f"{name}.acme.com"}], "session_duration": "24h",
                         "created_at": STAMP, "updated_at": STAMP, "policies": []})
    reusable = [api_policy(pid, props) | {"reusable": True,
                                          "app_count": sum(pid in [p["id"] for p in a["policies"]] for a in apps)}
                for pid, props in policies.items()]
    return {"apps": apps, "policies": reusable,
            "organization": {"auth_domain": "acme.cloudflareaccess.com", "name": "acme",
                             "created_at": STAMP, "updated_at": STAMP, "is_ui_read_only": False}}


class FakeCloudflare:
    """A threaded HTTP server on 127.0.0.1 serving one account's Access apps, policies and organization.

    `throttle[path]` answers 429 (Retry-After: 1) that many times first; `requests` records every
    `(path, query)`; only `Authorization: Bearer TOKEN` is accepted.
    """

    def __init__(self, account: Mapping[str, Any], *, account_id: str = ACCOUNT) -> None:
        self.account = account
        self.account_id = account_id
        self.throttle: dict[str, int] = {}
        self.requests: list[tuple[str, dict[str, list[str]]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                server.requests.append((parts.path, query))
                status, headers, doc = server.answer(parts.path, query, self.headers.get("authorization"))
                body = json.dumps(doc).encode()
                self.send_response(status)
                for key, value in {"content-type": "application/json", "content-length": str(len(body)),
                                   **headers}.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/client/v4"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    def answer(self, path: str, query: Mapping[str, list[str]],
               authorization: str | None) -> tuple[int, dict[str, str], dict[str, Any]]:
        if authorization != f"Bearer {TOKEN}":
            return 403, {}, envelope(None, success=False, errors=[{"code": 10000, "message": "Authentication error"}])
        if self.throttle.get(path, 0) > 0:
            self.throttle[path] -= 1
            return 429, {"retry-after": "1"}, envelope(None, success=False, errors=[
                {"code": 971, "message": "Please wait and consider throttling your request speed"}])
        base = f"/client/v4/accounts/{self.account_id}/access"
        if path == f"{base}/organizations":
            return 200, {}, envelope(self.account["organization"])
        listed = {f"{base}/apps": self.account["apps"], f"{base}/policies": self.account["policies"]}.get(path)
        if listed is None:
            return 404, {}, envelope(None, success=False, errors=[{"code": 7003, "message": "Could not route to "
                                                                   f"{path}, perhaps your object identifier is invalid?"}])
        page = int((query.get("page") or ["1"])[0])
        per_page = int((query.get("per_page") or ["25"])[0])
        chunk = listed[(page - 1) * per_page: page * per_page]
        return 200, {}, envelope(chunk, info={"page": page, "per_page": per_page, "count": len(chunk),
                                              "total_count": len(listed)})

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> FakeCloudflare:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
