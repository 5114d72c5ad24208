"""JWT at the ingress gateway: Istio's `RequestAuthentication`, checked by `sextant proxy` against tokens
that PyJWT (with `cryptography`'s RSA and EC keys) signs, and JWK sets PyJWT writes.

Istio's semantics (istio.io "Authentication policy" task and the RequestAuthentication reference): a request
without a token passes; a token that fails any check gets 401 with `www-authenticate: Bearer ...`; a valid
token's claims are available to `VirtualService` routing as `@request.auth.claims.<name>` (a list claim
matches when any item does); `outputClaimToHeaders` copies claims to the upstream; the token itself is not
forwarded unless `forwardOriginalToken`. Keys come inline (`jwks`) or from `jwksUri`, fetched by the proxy.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from proxy_support import Proxy, Upstream, service_entry

ISSUER = "https://issuer.example.com"
REMOTE_ISSUER = "https://remote-issuer.example.com"
HOST = "bookinfo.example.com"


def jwk(public_key, kid: str, alg: str) -> dict:
    algo = jwt.algorithms.RSAAlgorithm if alg.startswith(("RS", "PS")) else jwt.algorithms.ECAlgorithm
    d = json.loads(algo.to_jwk(public_key))
    d.update(kid=kid, alg=alg, use="sig")
    return d


class Keys:
    def __init__(self):
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.other = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # not in any JWKS
        self.remote = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.jwks = {"keys": [jwk(self.rsa.public_key(), "rsa-1", "RS256"), jwk(self.ec.public_key(), "ec-1", "ES256")]}
        self.remote_jwks = {"keys": [jwk(self.remote.public_key(), "remote-1", "RS256")]}

    def token(self, key=None, kid="rsa-1", alg="RS256", **claims) -> str:
        now = int(time.time())
        payload = {"iss": ISSUER, "sub": "jason@example.com", "aud": "bookinfo", "iat": now, "exp": now + 600, **claims}
        return jwt.encode(payload, key or self.rsa, algorithm=alg, headers={"kid": kid})


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    keys = Keys()
    tmp = tmp_path_factory.mktemp("jwt")

    class JWKS(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            body = json.dumps(keys.remote_jwks).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    jwks_server = ThreadingHTTPServer(("127.0.0.1", 0), JWKS)
    threading.Thread(target=jwks_server.serve_forever, daemon=True).start()
    admin, anyone = Upstream("admin-app"), Upstream("public-app")
    mesh = service_entry("productpage", [(anyone, {"version": "v1"})]) + service_entry("admin", [(admin, {})]) + f"""---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: gw, namespace: default}}
spec:
  selector: {{istio: ingressgateway}}
  servers: [{{port: {{number: 8080, name: http, protocol: HTTP}}, hosts: ["*"]}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: front, namespace: default}}
spec:
  hosts: ["*"]
  gateways: [gw]
  http:
  - match:
    - headers:
        "@request.auth.claims.groups": {{exact: admin}}
    route: [{{destination: {{host: admin, port: {{number: 9080}}}}}}]
  - route: [{{destination: {{host: productpage, port: {{number: 9080}}}}}}]
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {{name: jwt, namespace: istio-system}}
spec:
  selector:
    matchLabels: {{istio: ingressgateway}}
  jwtRules:
  - issuer: {ISSUER}
    audiences: [bookinfo]
    jwks: '{json.dumps(keys.jwks)}'
    outputClaimToHeaders:
    - {{header: x-jwt-sub, claim: sub}}
  - issuer: {REMOTE_ISSUER}
    jwksUri: http://127.0.0.1:{jwks_server.server_address[1]}/keys
    forwardOriginalToken: true
"""
    p = Proxy(tmp, mesh, extra_args=["--mode", "gateway", "--label", "istio=ingressgateway"]).start()
    try:
        yield keys, p, admin, anyone
    finally:
        p.stop()
        admin.stop()
        anyone.stop()
        jwks_server.shutdown()


def call(p: Proxy, token: str | None = None, path: str = "/productpage"):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return p.request(HOST, path, headers=headers)


def test_a_request_without_a_token_passes(setup):
    _, p, _, anyone = setup
    status, _, body = call(p)
    assert status == 200 and body["name"] == "public-app"


def test_a_valid_token_routes_on_its_claims_and_is_not_forwarded(setup):
    keys, p, admin, anyone = setup
    status, _, body = call(p, keys.token(groups=["dev", "admin"]))
    assert status == 200 and body["name"] == "admin-app", body
    assert body["headers"]["x-jwt-sub"] == "jason@example.com"
    assert "authorization" not in body["headers"], "the token must not reach the app (forwardOriginalToken: false)"
    status, _, body = call(p, keys.token(groups=["dev"]))
    assert status == 200 and body["name"] == "public-app"
    # ES256 with the EC key of the same JWKS, and the token in the `access_token` query parameter.
    status, _, body = p.request(HOST, f"/productpage?access_token={keys.token(key=keys.ec, kid='ec-1', alg='ES256', groups='admin')}")
    assert status == 200 and body["name"] == "admin-app"


@pytest.mark.parametrize("case, reason", [
    ("expired", "Jwt is expired"),
    ("future", "Jwt not yet valid"),
    ("wrong key", "Jwt verification fails"),
    ("tampered", "Jwt verification fails"),
    ("unknown issuer", "Jwt issuer is not configured"),
    ("audience", "Audiences in Jwt are not allowed"),
    ("malformed", "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections"),
])
def test_an_invalid_token_gets_401(setup, case, reason):
    keys, p, admin, anyone = setup
    now = int(time.time())
    token = {
        "expired": lambda: keys.token(exp=now - 3600),
        "future": lambda: keys.token(nbf=now + 3600),
        "wrong key": lambda: keys.token(key=keys.other),
        "tampered": lambda: ".".join([(t := keys.token(groups=["dev"]).split("."))[0], keys.token(groups=["admin"]).split(".")[1], t[2]]),
        "unknown issuer": lambda: keys.token(iss="https://evil.example.com"),
        "audience": lambda: keys.token(aud="someone-else"),
        "malformed": lambda: "not-a-jwt",
    }[case]()
    before = admin.count() + anyone.count()
    status, headers, body = call(p, token)
    assert status == 401, (status, body)
    assert body == reason.encode(), body
    assert headers["www-authenticate"].startswith("Bearer realm=") and 'error="invalid_token"' in headers["www-authenticate"]
    assert admin.count() + anyone.count() == before, "a refused request must not reach an upstream"


def test_keys_from_jwks_uri_are_fetched(setup):
    keys, p, admin, anyone = setup
    token = keys.token(key=keys.remote, kid="remote-1", iss=REMOTE_ISSUER, groups="admin")
    deadline = time.monotonic() + 20
    status = 0
    while time.monotonic() < deadline:
        status, _, body = call(p, token)
        if status == 200:
            break
        assert body == b"Jwks remote fetch is failed", body
        time.sleep(0.2)
    assert status == 200 and body["name"] == "admin-app"
    assert body["headers"]["authorization"] == f"Bearer {token}", "forwardOriginalToken: true keeps the token"
