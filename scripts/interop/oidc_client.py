"""An outside OpenID Connect relying party (Authlib, with joserfc) signing a person in with a
node of ortaq, the way a national portal would.

    oidc_client.py PROVIDER CLIENT_ID KEY_PEM CERT_PEM LOGIN PASSWORD

The client is the node the federation's trust list names by CLIENT_ID; it authenticates with
private_key_jwt, signed with that node's signing key (KEY_PEM) and carrying its certificate
(x5c). It reads the provider's discovery document, sends the person's browser (played here by
requests, cookies kept by hand because they are Secure) to the authorization endpoint with PKCE
and a nonce, signs in on the provider's form, exchanges the code, and checks the ID token with
the provider's published JWKS and the iss, aud, exp and nonce claims. Prints what it saw as
JSON; the Rust test judges it.
"""

import base64
import html
import json
import re
import secrets
import sys
from urllib.parse import urljoin

import requests
from authlib.integrations.requests_client import OAuth2Session
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from joserfc import jwt
from joserfc.jwk import KeySet, OKPKey


def pem_der(pem):
    return base64.b64decode("".join(l for l in pem.splitlines() if not l.startswith("-----")))


def pem_to_der_b64(pem):
    return base64.b64encode(pem_der(pem)).decode()


def ed25519_pkcs8_v1(pem):
    """The node's key as PKCS#8 v1. The PKI writes v2 (RFC 5958, with the public key), which
    the cryptography package does not read; the private key is the same 32 bytes."""
    der = pem_der(pem)
    at = der.find(b"\x04\x22\x04\x20")
    seed = der[at + 4:at + 36]
    key = Ed25519PrivateKey.from_private_bytes(seed)
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()


class Browser:
    """A person's browser: cookies per site, redirects followed by the caller."""

    def __init__(self):
        self.jar = {}

    def _site(self, url):
        return "/".join(url.split("/")[:3])

    def _send(self, method, url, **kw):
        site = self._site(url)
        cookies = "; ".join(f"{k}={v}" for k, v in self.jar.get(site, {}).items())
        headers = {"cookie": cookies, "origin": site, "accept-language": "kk"}
        r = requests.request(method, url, headers=headers, allow_redirects=False, timeout=10, **kw)
        for c in r.raw.headers.getlist("set-cookie"):
            k, v = c.split(";")[0].split("=", 1)
            self.jar.setdefault(site, {})[k] = v
        loc = r.headers.get("location")
        return r, (urljoin(url, loc) if loc else None)

    def get(self, url):
        return self._send("GET", url)

    def post(self, url, form):
        return self._send("POST", url, data=form)


def main(provider, client_id, key_pem, cert_pem, login, password):
    meta = requests.get(provider + "/.well-known/openid-configuration", timeout=10).json()
    key = OKPKey.import_key(ed25519_pkcs8_v1(open(key_pem).read()))
    x5c = [pem_to_der_b64(open(cert_pem).read())]
    token_endpoint = meta["token_endpoint"]
    redirect_uri = client_id + "/oidc/callback"
    client = OAuth2Session(
        client_id,
        key,
        token_endpoint_auth_method=PrivateKeyJWT(token_endpoint, headers={"x5c": x5c}, alg="EdDSA"),
        scope="openid profile",
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
    )
    verifier = secrets.token_urlsafe(48)
    nonce = secrets.token_urlsafe(16)
    url, state = client.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )

    b = Browser()
    r, to = b.get(url)
    assert r.status_code == 303 and "/signin?next=" in to, (r.status_code, to)
    r, _ = b.get(to)
    form = re.search(r'name="form" value="([^"]+)"', r.text).group(1)
    nxt = html.unescape(re.search(r'name="next" value="([^"]+)"', r.text).group(1))
    r, to = b.post(provider + "/kk/signin", {"form": form, "next": nxt, "login": login, "password": password})
    assert r.status_code == 303, (r.status_code, r.text[:500])
    r, to = b.get(to)
    assert r.status_code == 303 and to.startswith(redirect_uri), (r.status_code, to)

    token = client.fetch_token(token_endpoint, authorization_response=to, code_verifier=verifier)
    keys = KeySet.import_key_set(requests.get(meta["jwks_uri"], timeout=10).json())
    decoded = jwt.decode(token["id_token"], keys, algorithms=["EdDSA"])
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": meta["issuer"]},
        aud={"essential": True, "value": client_id},
        nonce={"essential": True, "value": nonce},
        exp={"essential": True},
    ).validate(decoded.claims)
    print(json.dumps({"discovery_issuer": meta["issuer"], "claims": decoded.claims}, ensure_ascii=False))


if __name__ == "__main__":
    main(*sys.argv[1:7])
