"""A real OpenID Connect provider for the tests, on 127.0.0.1 and a free port.

Built from Authlib's server components (the generic `AuthorizationServer`, the authorization-code
grant with the OpenID Connect and PKCE extensions; joserfc for the RS256 key), with the standard
library's HTTP server in a thread in front of them:

    GET  /.well-known/openid-configuration   discovery document
    GET  /jwks                               the public signing key
    GET  /authorize                          a tiny form: choose the test user (no password)
    POST /authorize                          the chosen user: a code back to the redirect URI
    POST /token                              code (+ PKCE verifier, client secret) → id_token
    GET  /logout                             end_session_endpoint: back to the post-logout URI

Every request is checked by Authlib (client, redirect URI, response type, nonce required, PKCE,
client authentication); nothing here encodes or signs a JWT by hand. `issued` keeps the claims
of every id_token the provider signed, so a test can see what the dashboard was given.
"""

from __future__ import annotations

import html
import json
import secrets
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from authlib.common.security import generate_token
from authlib.oauth2 import AuthorizationServer, OAuth2Request
from authlib.oauth2.rfc6749 import ClientMixin, grants
from authlib.oauth2.rfc6749.errors import OAuth2Error
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from authlib.oidc.core.models import AuthorizationCodeMixin
from joserfc.jwk import RSAKey


@dataclass(frozen=True)
class Person:
    """Somebody the provider can sign in: `claims` go into the id_token beside sub/email/name."""

    sub: str
    email: str
    name: str
    claims: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Client(ClientMixin):  # type: ignore[misc]
    client_id: str
    client_secret: str
    redirect_uri: str

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_allowed_scope(self, scope: str) -> str:
        allowed = {"openid", "email", "profile"}
        return " ".join(s for s in (scope or "").split() if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri == self.redirect_uri

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return endpoint != "token" or method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass
class Code(AuthorizationCodeMixin):  # type: ignore[misc]
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: Person
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int = field(default_factory=lambda: int(time.time()))

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None

    def get_code_challenge(self) -> str | None:
        return self.code_challenge

    def get_code_challenge_method(self) -> str | None:
        return self.code_challenge_method


class _Request(OAuth2Request):  # type: ignore[misc]
    def __init__(self, method: str, url: str, headers: dict[str, str], form: dict[str, str]):
        super().__init__(method=method, uri=url, headers=headers)
        self._args = dict(parse_qsl(urlsplit(url).query))
        self._form = form
        self.payload = BasicOAuth2Payload({**self._args, **form})

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


Response = tuple[int, str, list[tuple[str, str]]]


class OidcProvider:
    """The provider; use `running_provider(...)` to start and stop it."""

    def __init__(self, users: list[Person], client: Client, port: int) -> None:
        self.users = {user.sub: user for user in users}
        self.client = client
        self.issuer = f"http://127.0.0.1:{port}"
        self.key = RSAKey.generate_key(2048, parameters={"kid": "ltfu-test", "use": "sig"})
        self.codes: dict[str, Code] = {}
        self.nonces: set[str] = set()
        self.issued: list[dict[str, Any]] = []
        self.logouts: list[dict[str, str]] = []  # the end-session requests received
        self.lock = threading.Lock()
        self.server = self._authorization_server()

    # ---- Authlib wiring
    def _authorization_server(self) -> AuthorizationServer:
        provider = self

        class Server(AuthorizationServer):  # type: ignore[misc]
            def query_client(self, client_id: str) -> Client | None:
                return provider.client if client_id == provider.client.client_id else None

            def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
                return None

            def create_oauth2_request(self, request: OAuth2Request) -> OAuth2Request:
                return request

            def handle_response(
                self, status: int, body: Any, headers: list[tuple[str, str]]
            ) -> Response:
                text = body if isinstance(body, str) else json.dumps(body)
                return status, text, list(headers)

            def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
                return None

        class CodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
            TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

            def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
                data = request.payload.data
                with provider.lock:
                    provider.codes[code] = Code(
                        code=code,
                        client_id=request.client.client_id,
                        redirect_uri=data.get("redirect_uri", ""),
                        scope=request.payload.scope or "",
                        user=request.user,
                        nonce=data.get("nonce"),
                        code_challenge=data.get("code_challenge"),
                        code_challenge_method=data.get("code_challenge_method"),
                    )
                    if data.get("nonce"):
                        provider.nonces.add(data["nonce"])

            def query_authorization_code(self, code: str, client: Client) -> Code | None:
                found = provider.codes.get(code)
                return found if found and found.client_id == client.client_id else None

            def delete_authorization_code(self, authorization_code: Code) -> None:
                with provider.lock:
                    provider.codes.pop(authorization_code.code, None)

            def authenticate_user(self, authorization_code: Code) -> Person:
                return authorization_code.user

        class IdToken(OpenIDCode):  # type: ignore[misc]
            def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
                return nonce in provider.nonces

            def resolve_client_private_key(self, client: Client) -> RSAKey:
                return provider.key

            def get_client_algorithm(self, client: Client) -> str:
                return "RS256"

            def get_client_claims(self, client: Client) -> dict[str, Any]:
                return {"iss": provider.issuer, "aud": [client.client_id]}

            def generate_user_info(self, user: Person, scope: str) -> UserInfo:
                info = UserInfo(sub=user.sub, email=user.email, name=user.name)
                info.update(user.claims)
                return info

            def process_token(self, grant: Any, response: Any) -> Any:
                token = super().process_token(grant, response)
                if "id_token" in token:
                    from joserfc import jwt

                    decoded = jwt.decode(token["id_token"], provider.key)
                    provider.issued.append(dict(decoded.claims))
                return token

        server = Server(scopes_supported=["openid", "email", "profile"])
        server.register_token_generator(
            "default", BearerTokenGenerator(lambda *a, **k: generate_token(42))
        )
        server.register_grant(
            CodeGrant, [IdToken(require_nonce=True), CodeChallenge(required=True)]
        )
        return server

    # ---- endpoints
    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "end_session_endpoint": f"{self.issuer}/logout",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["sub", "email", "name", "nonce"],
        }

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.key.as_dict(private=False)]}

    def handle(
        self, method: str, url: str, headers: dict[str, str], form: dict[str, str]
    ) -> Response:
        path = urlsplit(url).path
        request = _Request(method, url, headers, form)
        if path == "/.well-known/openid-configuration":
            return _json(self.discovery())
        if path == "/jwks":
            return _json(self.jwks())
        if path == "/authorize":
            return self._authorize(request)
        if path == "/token" and method == "POST":
            result: Response = self.server.create_token_response(request)
            return result
        if path == "/logout":
            target = request.args.get("post_logout_redirect_uri", "")
            self.logouts.append(dict(request.args))
            if target != self.client.redirect_uri:
                return 400, "unknown post_logout_redirect_uri", []
            return 302, "", [("Location", target)]
        return 404, "not found", []

    def _authorize(self, request: _Request) -> Response:
        try:
            grant = self.server.get_consent_grant(request)
        except OAuth2Error as error:
            return 400, f"authorization request refused: {error.error}", []
        if request.method == "POST":
            user = self.users.get(request.form.get("user", ""))
            if user is None:
                return 400, "no such test user", []
            response: Response = self.server.create_authorization_response(
                request, grant_user=user, grant=grant
            )
            return response
        return 200, self._chooser(request), [("Content-Type", "text/html; charset=utf-8")]

    def _chooser(self, request: _Request) -> str:
        query = html.escape(urlencode(request.args))
        buttons = "".join(
            f'<p><button name="user" value="{html.escape(u.sub)}">{html.escape(u.name)}'
            f" ({html.escape(u.email)})</button></p>"
            for u in self.users.values()
        )
        return (
            "<!doctype html><title>Test institution: sign in</title>"
            "<h1>Test institution</h1><p>Choose who signs in:</p>"
            f'<form method="post" action="/authorize?{query}">{buttons}</form>'
        )


def _json(value: dict[str, Any]) -> Response:
    return 200, json.dumps(value), [("Content-Type", "application/json")]


def _handler(provider: OidcProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8") if length else ""
            form = dict(parse_qsl(body)) if method == "POST" else {}
            headers = {k: v for k, v in self.headers.items()}
            status, text, extra = provider.handle(
                method, provider.issuer + self.path, headers, form
            )
            data = text.encode("utf-8")
            self.send_response(status)
            names = {k.lower() for k, _ in extra}
            for key, value in extra:
                self.send_header(key, value)
            if "content-type" not in names:
                self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            self._serve("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._serve("POST")

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return None

    return Handler


@contextmanager
def running_provider(
    users: list[Person], client_id: str, client_secret: str, redirect_uri: str
) -> Iterator[OidcProvider]:
    """The provider serving on 127.0.0.1 (a free port) until the block ends."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = int(httpd.server_address[1])
    provider = OidcProvider(users, Client(client_id, client_secret, redirect_uri), port)
    httpd.RequestHandlerClass = _handler(provider)
    thread = threading.Thread(target=httpd.serve_forever, name="oidc-provider", daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)
