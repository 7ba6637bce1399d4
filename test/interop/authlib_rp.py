"""A relying party written with authlib (Debian's python3-authlib), for authlib.test.ts.

authlib's own OAuth 2.0 / OpenID Connect client, as its web integrations use it, served by the
standard library's HTTP server instead of a web framework: discovery, the authorization URL with
state and nonce (and PKCE when RP_PKCE=S256), the code exchanged at the token endpoint with
client_secret_basic (authlib's default), the ID token checked by authlib (signature against the
JWKS, iss, aud, exp, iat, nonce, at_hash if present) and userinfo fetched with the access token.

  GET /login     redirects the browser to the provider
  GET /callback  answers JSON: {"sub", "id_token_claims", "userinfo", "scope", "pkce"}, or
                 {"error", "error_description"} with status 400 (the provider's or authlib's refusal)

Configured by the environment: RP_ISSUER, RP_CLIENT_ID, RP_CLIENT_SECRET, RP_REDIRECT_URI, RP_PORT,
RP_PKCE (optional, "S256"). Nothing secret (client secret, codes, tokens) is ever printed.
"""

import json
import os
import secrets
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from authlib.common.errors import AuthlibBaseError
from authlib.integrations.base_client import BaseApp, OAuth2Mixin, OpenIDMixin
from authlib.integrations.base_client.framework_integration import FrameworkIntegration
from authlib.integrations.requests_client import OAuth2Session

ISSUER = os.environ["RP_ISSUER"]
CLIENT_ID = os.environ["RP_CLIENT_ID"]
CLIENT_SECRET = os.environ["RP_CLIENT_SECRET"]
REDIRECT_URI = os.environ["RP_REDIRECT_URI"]
PORT = int(os.environ["RP_PORT"])
PKCE = os.environ.get("RP_PKCE") or None
SESSION_COOKIE = "authlib_rp_session"


class Framework(FrameworkIntegration):
    """authlib's framework hooks: the state data lives in our own server-side session."""

    def update_token(self, token, refresh_token=None, access_token=None):
        pass


class RelyingParty(OAuth2Mixin, OpenIDMixin, BaseApp):
    """The same composition as authlib's Flask client (FlaskOAuth2App), without Flask."""

    client_cls = OAuth2Session


client_kwargs = {"scope": "openid profile"}
if PKCE:
    client_kwargs["code_challenge_method"] = PKCE
app = RelyingParty(
    Framework("bridge"),
    name="bridge",
    client_id=CLIENT_ID,
    client_secret=CLIENT_SECRET,
    server_metadata_url=f"{ISSUER}/.well-known/openid-configuration",
    client_kwargs=client_kwargs,
)

sessions = {}
sessions_lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, format, *args):
        # The path only: query strings carry codes and states.
        sys.stderr.write(f"authlib_rp: {self.command} {urlsplit(self.path).path}\n")

    def session(self):
        cookies = self.headers.get("Cookie", "")
        sid = None
        for part in cookies.split(";"):
            name, _, value = part.strip().partition("=")
            if name == SESSION_COOKIE:
                sid = value
        with sessions_lock:
            if sid not in sessions:
                sid = secrets.token_urlsafe(16)
                sessions[sid] = {}
            return sid, sessions[sid]

    def answer(self, status, body, headers=()):
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urlsplit(self.path)
        try:
            if url.path == "/login":
                self.login()
            elif url.path == "/callback":
                self.callback({k: v[0] for k, v in parse_qs(url.query).items()})
            else:
                self.answer(404, {"error": "not_found"})
        except AuthlibBaseError as error:
            self.answer(400, {"error": error.error, "error_description": error.description})
        except Exception as error:  # anything else: say what, never a token
            self.answer(500, {"error": type(error).__name__, "error_description": str(error)})

    def login(self):
        sid, session = self.session()
        # As authlib's authorize_redirect: state, nonce (an "openid" scope) and the PKCE verifier.
        rv = app.create_authorization_url(REDIRECT_URI)
        app.framework.set_state_data(session, rv["state"], {"redirect_uri": REDIRECT_URI, **rv})
        self.send_response(302)
        self.send_header("Location", rv["url"])
        self.send_header("Set-Cookie", f"{SESSION_COOKIE}={sid}; Path=/; HttpOnly; SameSite=Lax")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def callback(self, query):
        _, session = self.session()
        if "error" in query:
            self.answer(400, {"error": query["error"], "error_description": query.get("error_description")})
            return
        # As authlib's authorize_access_token: the state's data, the code exchanged, the ID token
        # parsed and validated with the nonce sent.
        params = {"code": query.get("code"), "state": query.get("state")}
        state_data = app.framework.get_state_data(session, params["state"])
        app.framework.clear_state_data(session, params["state"])
        params = app._format_state_params(state_data, params)
        token = app.fetch_access_token(**params)
        metadata = app.load_server_metadata()
        claims = app.parse_id_token(
            token,
            nonce=state_data["nonce"],
            claims_options={
                "iss": {"essential": True, "values": [metadata["issuer"]]},
                "aud": {"essential": True, "values": [CLIENT_ID]},
            },
        )
        userinfo = app.userinfo(token=token)
        self.answer(
            200,
            {
                "sub": claims["sub"],
                "id_token_claims": dict(claims),
                "userinfo": dict(userinfo),
                "scope": token.get("scope"),
                "pkce": "code_verifier" in params,
            },
        )


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    sys.stderr.write(f"authlib_rp: listening on 127.0.0.1:{PORT}\n")
    sys.stderr.flush()
    server.serve_forever()
