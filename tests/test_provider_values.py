"""Values as the provider takes them: what `plan` passes, Cloudflare accepts.

Each bad value exits 2 with the expected form in the message; the valid forms still plan. The rules come from
terraform-provider-cloudflare v5's application schema and the Cloudflare API (see linked_apps/model/rules.py).
"""

from __future__ import annotations

import pytest

from linked_apps.model.rules import check_access_token_lifetime, check_session_duration
from linked_apps.model.topology import topology_from_config

from .conftest import EXISTING_UID, config, link, problems, saas, self_hosted
from .test_cli_plan import run, write

BAD = [
    ({"a": self_hosted("a.acme.com", sessionDuration="1d")},
     "linked-apps:apps.a.sessionDuration: '1d' is not a duration; write e.g. 24h or 2h45m"),
    ({"a": self_hosted("a.acme.com", sessionDuration="8 hours")},
     "linked-apps:apps.a.sessionDuration: '8 hours' is not a duration; write e.g. 24h or 2h45m"),
    ({"m": saas(accessTokenLifetime="1d")},
     "linked-apps:apps.m.accessTokenLifetime: '1d' is not a token lifetime; write minutes or hours, e.g. 15m"),
    ({"m": saas(accessTokenLifetime="25h")},
     "linked-apps:apps.m.accessTokenLifetime: '25h' is out of range; an access token lifetime lies between 1m and 24h"),
    ({"m": saas(accessTokenLifetime="30s")}, "linked-apps:apps.m.accessTokenLifetime: '30s' is not a token lifetime"),
    ({"m": saas(grantTypes=["password"])},
     "linked-apps:apps.m.grantTypes: 'password' is not an OIDC grant type; use authorization_code, "
     "authorization_code_with_pkce, refresh_tokens, hybrid or implicit"),
    ({"m": saas(scopes=["openid", "offline_access"])},
     "linked-apps:apps.m.scopes: 'offline_access' is not an OIDC scope; use openid, groups, email or profile; "
     "Cloudflare adds offline_access itself"),
    ({"a": self_hosted("https://a.acme.com/")},
     "linked-apps:apps.a.domain: 'https://a.acme.com/' is not an Access domain; write the host and optional path "
     "without a scheme, e.g. payroll.acme.com"),
    ({"a": {"type": "self_hosted", "destinations": ["http://a.acme.com/api"]}},
     "linked-apps:apps.a.destinations: 'http://a.acme.com/api' is not an Access domain"),
    ({"a": self_hosted("a.acme.com", allowEmailDomains=["@acme.com"])},
     "linked-apps:apps.a.allowEmailDomains: '@acme.com' is not an email domain; write the part after the @, e.g. acme.com"),
    ({"x": {"type": "self_hosted", "uid": EXISTING_UID, "lookup": "X"}},
     "linked-apps:apps.x.lookup: `uid` and `lookup` cannot be combined: an app managed elsewhere is found by exactly "
     "one of `uid`, `lookup` or `stack`; keep one"),
    ({"x": {"type": "self_hosted", "lookup": "X", "domain": "x.acme.com"}},
     "linked-apps:apps.x.domain: `domain` does not apply to this app; it belongs to self_hosted apps managed here"),
    ({"a": self_hosted("a.acme.com", sessionDuration=24)},
     "linked-apps:apps.a.sessionDuration: 24 was read as a number; quote it in the YAML, with its unit"),
]


@pytest.mark.parametrize("apps, expected", BAD, ids=[e.split(":", 2)[1].split(" ")[0] for _, e in BAD])
def test_bad_values_are_refused_with_the_expected_form(apps, expected):
    found = problems(config(apps))
    assert any(p.startswith(expected) for p in found), found


def test_an_unquoted_all_digit_account_id_is_told_to_quote_it():
    values = config({"a": self_hosted("a.acme.com")})
    values["linked-apps:accountId"] = 1234567890  # what YAML makes of `accountId: 1234567890`
    [problem] = problems(values)
    assert problem.startswith("linked-apps:accountId: 1234567890 was read as a number (unquoted digits in the YAML); "
                              "quote the account id")


def test_an_account_id_of_the_wrong_shape_is_refused():
    values = config({"a": self_hosted("a.acme.com")})
    values["linked-apps:accountId"] = "acme"
    [problem] = problems(values)
    assert problem.startswith("linked-apps:accountId: 'acme' is not an account id; copy the 32 hex characters")


def test_every_problem_of_a_config_comes_in_one_round():
    values = config({"a": self_hosted("https://a.acme.com", sessionDuration="1d"),
                     "m": saas(grantTypes=["password"])},
                    [link("a", "m")],
                    assertions=[{"from": "nobody", "to": "a", "expect": "deny"}])
    found = problems(values)
    assert sorted(p.split(":", 2)[1].split(" ")[0] for p in found) == [
        "apps.a.domain", "apps.a.sessionDuration", "apps.m.grantTypes", "assertions[0].from", "links[0]"], found
    assert any(p.endswith("[target-not-self-hosted]") for p in found)


VALID = {
    "a": self_hosted("a.acme.com/api", sessionDuration="2h45m", allowEmailDomains=["Acme.com"],
                     destinations=["*.acme.com/admin"]),
    "b": {"type": "self_hosted", "destinations": ["b.acme.com", "b.acme.com/v1/*"], "sessionDuration": "300ms"},
    "m": saas(accessTokenLifetime="1h30m", grantTypes=["authorization_code_with_pkce", "Refresh_Tokens"],
              scopes=["openid", "groups", "email", "profile"]),
}


def test_valid_values_parse_normalised_as_the_provider_compares_them():
    topo = topology_from_config(config(VALID))
    assert topo.apps["a"].allow_email_domains == ["acme.com"]
    assert topo.apps["m"].grant_types == ["authorization_code_with_pkce", "refresh_tokens"]


@pytest.mark.parametrize("good", ["24h", "2h45m", "300ms", "1.5h", "90s", "10us", "10µs"])
def test_go_durations_are_session_durations(good):
    assert check_session_duration(good) == good


@pytest.mark.parametrize("bad", ["", "24", "1d", "h", "-1h", "1h 30m", "0s", "1H"])
def test_other_texts_are_not_session_durations(bad):
    with pytest.raises(ValueError, match="is not a duration"):
        check_session_duration(bad)


@pytest.mark.parametrize("value, ok", [("1m", True), ("24h", True), ("0.5m", False), ("24h1m", False), ("90s", False)])
def test_access_token_lifetime_bounds(value, ok):
    if ok:
        assert check_access_token_lifetime(value) == value
    else:
        with pytest.raises(ValueError):
            check_access_token_lifetime(value)


def test_plan_exits_2_on_bad_values_and_0_on_valid_ones(tmp_path):
    bad = write(tmp_path, config({**VALID, "c": self_hosted("c.acme.com", sessionDuration="1d")}))
    out = run("plan", "--config", str(bad))
    assert out.returncode == 2 and "sessionDuration: '1d' is not a duration; write e.g. 24h or 2h45m" in out.stderr
    assert "Traceback" not in out.stderr
    good = write(tmp_path, config(VALID))
    out = run("plan", "--config", str(good), "--format", "json")
    assert out.returncode == 0, out.stderr


def test_a_key_given_twice_in_the_yaml_names_both_lines(tmp_path):
    path = tmp_path / "Pulumi.dup.yaml"
    path.write_text(
        "config:\n"
        "  linked-apps:accountId: 0123456789abcdef0123456789abcdef\n"
        "  linked-apps:teamDomain: acme.cloudflareaccess.com\n"
        "  linked-apps:apps:\n"
        "    payroll:\n"                    # line 5
        "      type: self_hosted\n"
        "      domain: payroll.acme.com\n"
        "    payroll:\n"                    # line 8: the last would silently win
        "      type: self_hosted\n"
        "      domain: pay.acme.com\n")
    out = run("plan", "--config", str(path))
    assert out.returncode == 2
    assert "line 8: key 'payroll' is given twice (first at line 5)" in out.stderr, out.stderr


@pytest.mark.parametrize("apps, expected", [
    ({"a": {"type": "selfhosted", "uid": EXISTING_UID}},
     "linked-apps:apps.a.type: 'selfhosted' is not one of self_hosted, saas, ssh, vnc, app_launcher, warp, biso, "
     "bookmark, dash_sso, infrastructure, rdp, mcp, mcp_portal, proxy_endpoint; did you mean `self_hosted`?"),
    ({"a": self_hosted("a.acme.com", allowEmailDomains="acme.com")},
     "linked-apps:apps.a.allowEmailDomains: 'acme.com' is a single value; write a list, e.g. [acme.com]"),
    ({"x": {"type": "self_hosted", "lookup": ""}}, "linked-apps:apps.x.lookup: must not be empty"),
])
def test_stock_phrases_become_the_expected_form(apps, expected):
    assert problems(config(apps)) == [expected]
