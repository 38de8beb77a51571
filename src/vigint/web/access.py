"""Who may see a customer's page: one-time sign-in links and signed session cookies.

A sign-in link is `<page>/sign-in/<token>`, 256 random bits, valid `sign_in_minutes` and once. Opening it
shows a button; only pressing it (a POST) spends the link, so a mail scanner that fetches every link in an
email cannot spend it first. The session cookie is `<token>.<HMAC of the token>`: a forged or altered cookie
is refused without a database lookup; a real one is looked up, so it ends when it expires, at sign-out, and at
once when its client is revoked or deleted. Only SHA-256 hashes of tokens are stored.
"""

import hashlib
import hmac
import re
import secrets
import time
from urllib.parse import urlsplit, urlunsplit

from vigint.config import Settings, WebSettings
from vigint.store import Client, Store

SESSION_COOKIE = "vigint_session"
TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)
COOKIE = re.compile(r"([A-Za-z0-9_-]{43})\.([0-9a-f]{64})")


def page_url(settings: Settings, port: int | None = None) -> str:
    """Return the base of the customer's page: `[web] public_url`, else this server's own address."""
    if settings.web.public_url:
        return settings.web.public_url.rstrip("/")
    scheme = "https" if settings.server.tls_cert else "http"
    return f"{scheme}://{settings.server.host}:{settings.web.port if port is None else port}"


def stream_url(settings: Settings, port: int | None = None) -> str:
    """Return the address agents stream to, as a customer's VIGINT_SERVER_URL: `[alerts] public_url` (the
    stream port's public address) as ws:// or wss://, else this server's own address."""
    if settings.alerts.public_url:
        public = urlsplit(settings.alerts.public_url.rstrip("/"))
        scheme = {"https": "wss", "http": "ws"}.get(public.scheme, public.scheme)
        return urlunsplit(public._replace(scheme=scheme))
    scheme = "wss" if settings.server.tls_cert else "ws"
    return f"{scheme}://{settings.server.host}:{settings.server.port if port is None else port}"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def new_sign_in_link(store: Store, web: WebSettings, base_url: str, client_id: int,
                           now: float | None = None) -> str:
    """Record and return a one-time sign-in link for a client (Raises NotFoundError for an unknown client)."""
    await store.get_client(client_id)
    now = time.time() if now is None else now
    token = secrets.token_urlsafe(32)
    await store.add_sign_in_link(client_id, token_hash(token), now, now + web.sign_in_minutes * 60)
    return f"{base_url}/sign-in/{token}"


class Sessions:
    """Signs browsers in and tells which client a request's cookie is signed in as."""

    def __init__(self, store: Store, web: WebSettings, secret: str):
        self._store = store
        self._web = web
        self._secret = secret.encode()

    def _signature(self, token: str) -> str:
        return hmac.new(self._secret, f"session:{token}".encode(), hashlib.sha256).hexdigest()

    async def sign_in(self, link_token: str) -> str | None:
        """Spend a sign-in link; return the new session's cookie value, or None if the link is malformed,
        unknown, spent, expired or its client revoked."""
        if not TOKEN.fullmatch(link_token):
            return None
        now = time.time()
        client_id = await self._store.use_sign_in_link(token_hash(link_token), now)
        if client_id is None:
            return None
        token = secrets.token_urlsafe(32)
        await self._store.add_session(client_id, token_hash(token), now, now + self.lifetime)
        return f"{token}.{self._signature(token)}"

    @property
    def lifetime(self) -> int:
        """How long a session lasts, in seconds (the cookie's Max-Age)."""
        return int(self._web.session_days * 86_400)

    def session(self, cookie: str | None) -> str | None:
        """Return the stored hash of a session cookie's token (to look up again later), None if the cookie is
        malformed or forged."""
        token = self._token(cookie)
        return None if token is None else token_hash(token)

    def _token(self, cookie: str | None) -> str | None:
        match = COOKIE.fullmatch(cookie or "")
        if match is None or not hmac.compare_digest(self._signature(match[1]), match[2]):
            return None
        return match[1]

    def form_token(self, cookie: str | None) -> str | None:
        """Return the token the session's forms carry, None without a valid session cookie. Derived from the
        session's token, so it needs no storage and changes with each sign-in; another site can read neither
        the cookie nor the page, so it cannot put the token in a form it makes a browser send."""
        token = self._token(cookie)
        if token is None:
            return None
        return hmac.new(self._secret, f"form:{token}".encode(), hashlib.sha256).hexdigest()

    def form_token_is_valid(self, cookie: str | None, sent: str) -> bool:
        """Tell whether a form sent with `cookie` carries that session's form token."""
        expected = self.form_token(cookie)
        return expected is not None and hmac.compare_digest(expected.encode(), sent.encode())

    async def client(self, cookie: str | None) -> Client | None:
        """Return the client a cookie is signed in as, or None."""
        session = self.session(cookie)
        return None if session is None else await self._store.session_client(session, time.time())

    async def sign_out(self, cookie: str | None) -> None:
        token = self._token(cookie)
        if token is not None:
            await self._store.end_session(token_hash(token))
