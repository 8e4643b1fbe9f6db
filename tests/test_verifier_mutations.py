"""Property: making part of a valid state unreadable never turns a deny into an allow, and nothing raises.

Starting points are real shapes: the dev stack's `pulumi stack export` and `pulumi stack output --json` (from the
real program under the SDK mocks) and the hand-made export (inline policies, require/exclude, ciphertext). Each
example makes one part unreadable, as the issue lists: a value replaced by a secret (ciphertext in an export,
"[secret]" in outputs) or by a value of the wrong type; a key the reader needs deleted (`type`, `id`, `appUid`,
...); an app or policy duplicated; an unknown selector added to a `require`/`exclude`. The mutated document goes
through the JSON reader and the state reader to real `Verifier.decide` calls for every (source, target) pair,
with tokens minted by PyJWT and the certs served through an httpx MockTransport (a network stand-in; the body
is the real certs shape). The reader may refuse the document (StateError: exit 2); anything else must be a
verdict, and every pair denied before is denied after.
"""

from __future__ import annotations

import copy
import functools
import json
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linked_apps.errors import StateError
from linked_apps.state import graph_from_export, graph_from_outputs
from linked_apps.state._pulumi import parse_state
from linked_apps.verifier import Verifier
from tests._verifier_support import (
    APP,
    POLICY,
    TEAM,
    app_claims,
    ciphertext,
    dev_export,
    dev_outputs,
    handmade_export,
    jwks,
    saas_claims,
    signing_key,
)

KEY = signing_key("mutations")
_CERTS = json.dumps(jwks(KEY)).encode()
CLIENT = httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(200, content=_CERTS)))

NEEDED_KEYS = frozenset({"type", "id", "uid", "appUid", "decision", "aud", "clientId", "client_id", "policies",
                         "includes", "saasApp", "linkedAppToken", "team_domain", "apps", "resources"})
"""Keys the reader needs: deleting one may only lose trust. (Deleting an optional key such as `excludes` makes a
different, valid policy, so it is not a mutation to unreadability.)"""


@functools.cache
def _bases() -> dict[str, dict[str, Any]]:
    return {"dev export": dev_export(), "dev outputs": dev_outputs(), "hand-made export": handmade_export()}


def base(name: str) -> dict[str, Any]:
    return copy.deepcopy(_bases()[name])


def read(doc: dict[str, Any]) -> Any:
    """Through the real JSON reader (duplicate keys, NaN, ...) and the state reader."""
    parsed = parse_state(json.dumps(doc).encode(), "mutated state")
    return graph_from_export(parsed) if "deployment" in parsed else graph_from_outputs(parsed)


@functools.cache
def tokens(name: str) -> dict[str, dict[str, str]]:
    """A valid token for every app of the unmutated state that can send one (by its flow)."""
    out: dict[str, dict[str, str]] = {}
    for app in read(base(name)).apps.values():
        if app.type == "saas" and app.client_id:
            out[app.name] = {"bearer": KEY.mint(saas_claims(app.client_id, ttl=86400))}
        elif app.aud:
            out[app.name] = {"cf_access_token": KEY.mint(app_claims(app.aud, ttl=86400))}
    return out


def allowed(name: str, graph: Any) -> set[tuple[str, str]]:
    verifier = Verifier(graph, team_domain=TEAM, client=CLIENT)
    targets = sorted(read(base(name)).apps)
    return {(source, target) for source, token in tokens(name).items() for target in targets
            if verifier.decide(target, **token).allowed}


@functools.cache
def allowed_before(name: str) -> frozenset[tuple[str, str]]:
    return frozenset(allowed(name, read(base(name))))


# -- mutations -------------------------------------------------------------------------------------------------
Path = tuple[Any, ...]


def paths(value: Any, at: Path = ()) -> list[Path]:
    out: list[Path] = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        out.append((*at, key))
        out.extend(paths(child, (*at, key)))
    return out


def parent_of(doc: Any, path: Path) -> Any:
    for key in path[:-1]:
        doc = doc[key]
    return doc


def wrong_types(value: Any) -> list[Any]:
    return [v for v in (7, "x", [], {}, True, [{"x": 1}]) if type(v) is not type(value)]


def secret_for(doc: dict[str, Any]) -> Any:
    return ciphertext("mutated") if "deployment" in doc else "[secret]"


def resources_of(doc: dict[str, Any], *types: str) -> list[dict[str, Any]]:
    return [r for r in doc.get("deployment", {}).get("resources", []) if r.get("type") in types]


def rule_lists(doc: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """Every policy (reusable or inline) as `(its props, the require/exclude key to extend)`."""
    found: list[tuple[dict[str, Any], str]] = []
    for res in resources_of(doc, POLICY):
        found += [(res["outputs"], "requires"), (res["outputs"], "excludes")]
    for res in resources_of(doc, APP):
        for entry in res["outputs"].get("policies") or []:
            if isinstance(entry, dict) and entry.get("decision"):
                found += [(entry, "requires"), (entry, "excludes")]
    return found


Spot = tuple[Any, Any]
"""A place a value lives: `(holder, key)`, holder a dict or a list."""


def spots(doc: dict[str, Any]) -> list[Spot]:
    """The places the reader needs, so that examples hit them often: policy decisions, rule lists, rule entries
    and their uids; app types, ids, AUD tags and policies lists; the stack's and the outputs' app entries."""
    found: list[Spot] = []

    def policy(props: dict[str, Any]) -> None:
        found.append((props, "decision"))
        for key in ("includes", "requires", "excludes"):
            rules = props.get(key)
            if rules is None:
                continue
            found.append((props, key))
            for i, entry in enumerate(rules):
                found.append((rules, i))
                body = entry.get("linkedAppToken") if isinstance(entry, dict) else None
                if isinstance(body, dict):
                    found.extend([(entry, "linkedAppToken"), (body, "appUid")])

    def app_entry(entry: dict[str, Any]) -> None:
        found.extend((entry, k) for k in ("type", "uid", "aud", "client_id") if k in entry)

    for res in resources_of(doc, POLICY):
        policy(res["outputs"])
    for res in resources_of(doc, APP):
        outputs = res["outputs"]
        found.extend((outputs, k) for k in ("type", "id", "aud", "policies", "saasApp", "name") if k in outputs)
        found.extend((res, k) for k in ("id", "outputs"))
        for i, entry in enumerate(outputs.get("policies") or []):
            found += [(outputs["policies"], i), (entry, "id")] if "id" in entry else [(outputs["policies"], i)]
            if entry.get("decision"):
                policy(entry)
    for res in resources_of(doc, "pulumi:pulumi:Stack"):
        apps = res["outputs"].get("apps")
        if not isinstance(apps, dict):
            continue
        found += [(res["outputs"], "apps"), *((apps, k) for k in apps)]
        for entry in apps.values():
            app_entry(entry)
    if "apps" in doc:
        found += [(doc, "apps"), *((doc["apps"], k) for k in doc["apps"]), (doc, "links")]
        for entry in doc["apps"].values():
            app_entry(entry)
        for link in doc.get("links", []):
            found.extend((link, k) for k in ("from", "to", "policy_id"))
    return found


def anywhere(doc: dict[str, Any]) -> list[Spot]:
    return [(parent_of(doc, p), p[-1]) for p in paths(doc)]


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, dict[str, Any], str]:
    name = draw(st.sampled_from(sorted(_bases())))
    doc = base(name)
    kind = draw(st.sampled_from(["secret", "wrong type", "delete", "duplicate", "unknown selector"]))
    if kind in ("secret", "wrong type", "delete"):
        places = draw(st.sampled_from([spots, spots, anywhere]))(doc)
        if kind == "delete":
            places = [(h, k) for h, k in places if isinstance(k, str) and k in NEEDED_KEYS]
        holder, key = draw(st.sampled_from(places))
        if kind == "delete":
            del holder[key]
        else:
            holder[key] = secret_for(doc) if kind == "secret" else draw(st.sampled_from(wrong_types(holder[key])))
        return name, doc, f"{kind} at {key!r} of {json.dumps(holder)[:200]}"
    if kind == "duplicate":
        if "deployment" in doc:
            original = draw(st.sampled_from(resources_of(doc, APP, POLICY)))
            twin = copy.deepcopy(original)
            if draw(st.booleans()) and twin["type"] == APP:
                twin["outputs"]["name"] = "copy"
            doc["deployment"]["resources"].append(twin)
            return name, doc, f"duplicate {original.get('urn')}"
        app = draw(st.sampled_from(sorted(doc["apps"])))
        doc["apps"][f"{app}-copy"] = copy.deepcopy(doc["apps"][app])
        return name, doc, f"duplicate app {app}"
    lists = rule_lists(doc)
    if not lists:  # stack outputs hold no policy rules: hide a link's target instead
        doc["links"][draw(st.integers(0, len(doc["links"]) - 1))]["to"] = "[secret]"
        return name, doc, "secret link target"
    props, key = draw(st.sampled_from(lists))
    selector = draw(st.sampled_from(["quantumEntanglement", "futureSelector", "linkedAppTokens"]))
    props[key] = [*(props.get(key) or []), {selector: {"id": "x"}}]
    return name, doc, f"unknown selector {selector} in {props.get('name')}.{key}"


def test_every_base_grants_something() -> None:
    """The property means something only if there are allows to lose and denies to keep."""
    for name in _bases():
        before = allowed_before(name)
        assert before, name
        assert len(before) < len(tokens(name)) * len(read(base(name)).apps)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_an_unreadable_part_never_turns_a_deny_into_an_allow(case: tuple[str, dict[str, Any], str]) -> None:
    name, doc, what = case
    try:
        graph = read(doc)
    except StateError:
        return  # the state as a whole is unusable: exit 2, never a verdict
    after = allowed(name, graph)
    assert after <= allowed_before(name), f"{what}: newly allowed {sorted(after - allowed_before(name))}"


