"""HTTP plumbing shared by every generated method: query and JSON bodies, error mapping and
credentials. Access tokens are refreshed before they expire and once more after a 401. Refresh
tokens rotate and a reused one revokes the whole login, so a refresh is done under a lock and a
caller that waited for it uses its result instead of refreshing again."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any, cast

import httpx

from ._generated import models as m
from .errors import UnauthorizedError, api_error_from

REFRESH_PATH = "/api/v1/auth/refresh"

TokenCallback = Callable[["m.TokenPair | None"], None]


class _Credentials:
    """Tokens or an API key, and when the access token needs refreshing."""

    def __init__(
        self,
        api_key: str | None,
        tokens: m.TokenPair | None,
        refresh_margin: float,
        on_tokens: TokenCallback | None,
    ) -> None:
        self.api_key = api_key
        self.tokens: m.TokenPair | None = None
        self.refresh_at = 0.0
        self.margin = refresh_margin
        self.on_tokens = on_tokens
        if tokens is not None:
            self.set(tokens)

    def set(self, tokens: m.TokenPair) -> None:
        self.tokens = tokens
        self.refresh_at = time.monotonic() + tokens["expires_in"] - self.margin
        if self.on_tokens:
            self.on_tokens(tokens)

    def clear(self) -> None:
        self.tokens = None
        self.refresh_at = 0.0
        if self.on_tokens:
            self.on_tokens(None)

    def due(self) -> bool:
        return self.tokens is not None and time.monotonic() >= self.refresh_at

    def headers(self) -> dict[str, str]:
        if self.api_key:
            return {"X-API-Key": self.api_key}
        if self.tokens:
            return {"Authorization": f"Bearer {self.tokens['access_token']}"}
        return {}

    def refresh_token(self) -> str:
        if not self.tokens:
            raise UnauthorizedError(401, "UNAUTHORIZED", "not logged in")
        return self.tokens["refresh_token"]

    def websocket_protocols(self) -> list[str]:
        if self.api_key:
            return ["rustydb.v1", f"rustydb.apikey.{self.api_key}"]
        if self.tokens:
            return ["rustydb.v1", f"rustydb.bearer.{self.tokens['access_token']}"]
        return ["rustydb.v1"]


def _query(query: dict[str, Any] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in (query or {}).items():
        if value is None:
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


def _result(response: httpx.Response) -> Any:
    body: Any = response.text
    if body and "json" in response.headers.get("content-type", ""):
        try:
            body = response.json()
        except ValueError:
            pass
    if response.is_error:
        raise api_error_from(response.status_code, body, response.headers.get("retry-after"))
    return body if response.content else None


class _Base:
    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        tokens: m.TokenPair | None = None,
        refresh_margin: float = 30.0,
        on_tokens: TokenCallback | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.credentials = _Credentials(api_key, tokens, refresh_margin, on_tokens)

    def set_tokens(self, tokens: m.TokenPair) -> None:
        self.credentials.set(tokens)

    def clear_tokens(self) -> None:
        self.credentials.clear()

    @property
    def tokens(self) -> m.TokenPair | None:
        return self.credentials.tokens

    def websocket_url(self, path: str) -> str:
        return "ws" + self.base_url.removeprefix("http") + path


class SyncTransport(_Base):
    def __init__(self, base_url: str, *, client: httpx.Client | None = None, **kwargs: Any) -> None:
        super().__init__(base_url, **kwargs)
        self.http = client or httpx.Client(timeout=30.0)
        self._lock = threading.Lock()

    def close(self) -> None:
        self.http.close()

    def refresh(self, used: str | None = None) -> m.TokenPair:
        """Exchanges the refresh token; skipped when another thread already replaced ``used``."""
        with self._lock:
            current = self.credentials.tokens
            if used is not None and current is not None and current["access_token"] != used:
                return current
            try:
                pair = cast(
                    "m.TokenPair",
                    self._send("POST", REFRESH_PATH, None, {"refresh_token": self.credentials.refresh_token()}, False),
                )
            except Exception:
                self.credentials.clear()
                raise
            self.credentials.set(pair)
            return pair

    def request(
        self, method: str, path: str, *, query: dict[str, Any] | None = None, body: Any = None, auth: bool
    ) -> Any:
        creds = self.credentials
        if not auth or creds.api_key or creds.tokens is None:
            return self._send(method, path, query, body, auth)
        if creds.due():
            self.refresh(creds.tokens["access_token"])
        used = creds.tokens["access_token"] if creds.tokens else None
        try:
            return self._send(method, path, query, body, auth)
        except UnauthorizedError:
            if creds.tokens is None:
                raise
            self.refresh(used)
            return self._send(method, path, query, body, auth)

    def _send(self, method: str, path: str, query: dict[str, Any] | None, body: Any, auth: bool) -> Any:
        headers = {"Accept": "application/json", **(self.credentials.headers() if auth else {})}
        response = self.http.request(
            method, self.base_url + path, params=_query(query), json=body, headers=headers
        )
        return _result(response)


class AsyncTransport(_Base):
    def __init__(self, base_url: str, *, client: httpx.AsyncClient | None = None, **kwargs: Any) -> None:
        super().__init__(base_url, **kwargs)
        self.http = client or httpx.AsyncClient(timeout=30.0)
        self._lock = asyncio.Lock()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def refresh(self, used: str | None = None) -> m.TokenPair:
        """Exchanges the refresh token; skipped when another task already replaced ``used``."""
        async with self._lock:
            current = self.credentials.tokens
            if used is not None and current is not None and current["access_token"] != used:
                return current
            try:
                pair = cast(
                    "m.TokenPair",
                    await self._send(
                        "POST", REFRESH_PATH, None, {"refresh_token": self.credentials.refresh_token()}, False
                    ),
                )
            except Exception:
                self.credentials.clear()
                raise
            self.credentials.set(pair)
            return pair

    async def fresh_credentials(self, force_refresh: bool = False) -> list[str]:
        """WebSocket subprotocols with a valid token (refreshed first when due or forced)."""
        creds = self.credentials
        if creds.tokens is not None and not creds.api_key and (force_refresh or creds.due()):
            await self.refresh(creds.tokens["access_token"])
        return creds.websocket_protocols()

    async def request(
        self, method: str, path: str, *, query: dict[str, Any] | None = None, body: Any = None, auth: bool
    ) -> Any:
        creds = self.credentials
        if not auth or creds.api_key or creds.tokens is None:
            return await self._send(method, path, query, body, auth)
        if creds.due():
            await self.refresh(creds.tokens["access_token"])
        used = creds.tokens["access_token"] if creds.tokens else None
        try:
            return await self._send(method, path, query, body, auth)
        except UnauthorizedError:
            if creds.tokens is None:
                raise
            await self.refresh(used)
            return await self._send(method, path, query, body, auth)

    async def _send(self, method: str, path: str, query: dict[str, Any] | None, body: Any, auth: bool) -> Any:
        headers = {"Accept": "application/json", **(self.credentials.headers() if auth else {})}
        response = await self.http.request(
            method, self.base_url + path, params=_query(query), json=body, headers=headers
        )
        return _result(response)
