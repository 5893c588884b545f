"""GraphQL subscriptions on ``/graphql`` over the ``graphql-transport-ws`` protocol (the graphql-ws
library's; docs/graphql.md), with ``websockets``. Hand-written and generic: the caller names the
TypedDict of its document's ``data``.

Credentials travel in ``connection_init`` as ``authorization`` (the access token, refreshed when
due, or the API key). The server closes with 4403 when it refuses them there (raised as
``GraphQLConnectionError``) or when they expire or are revoked later; then a token is refreshed, the
connection reopened and every running subscription sent again (nothing is replayed)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator, Callable
from typing import Any, Generic, NotRequired, TypedDict, TypeVar, cast, overload

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from ._transport import AsyncTransport

T = TypeVar("T")

_PROTOCOL = Subprotocol("graphql-transport-ws")
#: Credentials refused (before the ack) or expired/revoked (after it).
_FORBIDDEN = 4403
#: Closes after which reconnecting cannot help: protocol errors, or a normal close.
_FATAL = frozenset({1000, 4400, 4401, 4409, 4429, 4500})
#: Key of the ping payload sent after each ``subscribe``: its pong means the server runs it.
_READY_KEY = "rustydb_ready"


class GraphQLError(TypedDict):
    """One error of an ``error`` message or of a result (GraphQL's formatted error)."""

    message: str
    locations: NotRequired[list[dict[str, int]]]
    path: NotRequired[list[str | int]]
    extensions: NotRequired[dict[str, Any]]


class GraphQLSubscriptionError(Exception):
    """The server refused or failed a subscription, e.g. ``code`` ``FORBIDDEN`` without the
    permission, or a document that does not validate."""

    def __init__(self, errors: list[GraphQLError]) -> None:
        self.errors = errors
        code = errors[0].get("extensions", {}).get("code") if errors else None
        self.code: str | None = code if isinstance(code, str) else None
        text = "; ".join(e.get("message", "") for e in errors) or "subscription failed"
        super().__init__(f"{self.code}: {text}" if self.code else text)


class GraphQLConnectionError(Exception):
    """The connection closed for good: ``close_code`` 4403 for refused credentials, a graphql-ws
    protocol code, or the last code once reconnecting gave up (``None``: no close frame)."""

    def __init__(self, close_code: int | None, reason: str) -> None:
        self.close_code = close_code
        self.reason = reason
        super().__init__(f"connection closed: {close_code} {reason}" if close_code else reason)


class Subscription(Generic[T]):
    """A running subscription: ``async for data in subscription`` yields each result's ``data``;
    it raises ``GraphQLSubscriptionError`` or ``GraphQLConnectionError``."""

    def __init__(self, session: GraphQLSession, id: str, payload: dict[str, Any]) -> None:
        self.id = id
        self.payload = payload
        self._session = session
        self._queue: asyncio.Queue[T | _Done] = asyncio.Queue()
        self._done = False

    def _push(self, data: T) -> None:
        self._queue.put_nowait(data)

    def _end(self, error: BaseException | None) -> None:
        if not self._done:
            self._done = True
            self._queue.put_nowait(_Done(error))

    def __aiter__(self) -> AsyncIterator[T]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[T]:
        while True:
            item = await self._queue.get()
            if isinstance(item, _Done):
                if item.error is not None:
                    raise item.error
                return
            yield item

    async def close(self) -> None:
        """Ends the subscription (sends ``complete``)."""
        self._end(None)
        await self._session._complete(self.id)


class _Done:
    def __init__(self, error: BaseException | None) -> None:
        self.error = error


class GraphQLSession:
    """``async with client.graphql() as session: sub = await session.subscribe(document)``, then
    ``async for data in sub``. ``subscribe`` returns once the server runs the subscription."""

    def __init__(
        self,
        transport: AsyncTransport,
        *,
        path: str = "/graphql",
        reconnect: bool = True,
        initial_delay: float = 0.25,
        max_delay: float = 10.0,
        max_attempts: int = 5,
        timeout: float = 10.0,
    ) -> None:
        self._transport = transport
        self._path = path
        self._reconnect = reconnect
        self._initial_delay = initial_delay
        self._max_delay = max_delay
        self._max_attempts = max_attempts
        self._timeout = timeout
        self._socket: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._ids = itertools.count(1)
        self._subscriptions: dict[str, Subscription[Any]] = {}
        self._ready: dict[str, asyncio.Future[None]] = {}
        self._closed = False
        #: How many times the connection was (re)established; tests and callers may watch it.
        self.connections = 0
        #: Called with a subscription's id each time the server runs it: first, and again after
        #: every reconnect (events from then on are delivered; nothing is replayed).
        self.on_ready: Callable[[str], object] | None = None

    async def __aenter__(self) -> GraphQLSession:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self) -> None:
        """Opens the connection and waits for ``connection_ack``."""
        self._closed = False
        await self._open(force_refresh=False)

    @overload
    async def subscribe(
        self, query: str, variables: dict[str, Any] | None = None
    ) -> Subscription[dict[str, Any]]: ...
    @overload
    async def subscribe(
        self, query: str, variables: dict[str, Any] | None = None, *, result: type[T]
    ) -> Subscription[T]: ...
    async def subscribe(
        self, query: str, variables: dict[str, Any] | None = None, *, result: type[Any] | None = None
    ) -> Subscription[Any]:
        """Starts a subscription and returns once the server runs it. ``result`` names the type of
        the ``data`` (a TypedDict; for the type checker only)."""
        if self._socket is None:
            raise GraphQLConnectionError(None, "not connected")
        id = str(next(self._ids))
        payload: dict[str, Any] = {"query": query}
        if variables is not None:
            payload["variables"] = variables
        sub: Subscription[Any] = Subscription(self, id, payload)
        self._subscriptions[id] = sub
        ready = await self._send_subscribe(sub)
        try:
            await asyncio.wait_for(ready, self._timeout)
        except BaseException:
            self._subscriptions.pop(id, None)
            raise
        return sub

    async def close(self) -> None:
        """Closes the connection; running subscriptions end."""
        self._closed = True
        if self._socket is not None:
            await self._socket.close(1000, "client closed")
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        self._finish(None)

    async def _open(self, force_refresh: bool) -> None:
        authorization = await self._authorization(force_refresh)
        url = self._transport.websocket_url(self._path)
        try:
            socket = await connect(url, subprotocols=[_PROTOCOL])
        except InvalidStatus as e:
            raise GraphQLConnectionError(None, f"upgrade refused: HTTP {e.response.status_code}") from e
        except OSError as e:
            raise GraphQLConnectionError(None, f"cannot connect: {e}") from e
        init: dict[str, Any] = {"type": "connection_init", "payload": {}}
        if authorization:
            init["payload"] = {"authorization": authorization}
        try:
            await socket.send(json.dumps(init))
            while True:
                message = json.loads(await asyncio.wait_for(socket.recv(), self._timeout))
                if message.get("type") == "connection_ack":
                    break
                if message.get("type") == "ping":
                    await socket.send(json.dumps({"type": "pong"}))
        except ConnectionClosed as e:
            code = e.rcvd.code if e.rcvd else None
            raise GraphQLConnectionError(code, e.rcvd.reason if e.rcvd else "closed") from e
        self._socket = socket
        self.connections += 1
        self._reader = asyncio.create_task(self._read(socket))

    async def _authorization(self, force_refresh: bool) -> str | None:
        creds = self._transport.credentials
        if creds.api_key:
            return creds.api_key
        if creds.tokens is None:
            return None
        if force_refresh or creds.due():
            await self._transport.refresh(creds.tokens["access_token"])
        return f"Bearer {creds.tokens['access_token']}" if creds.tokens else None

    async def _send_subscribe(self, sub: Subscription[Any]) -> asyncio.Future[None]:
        assert self._socket is not None
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._ready[sub.id] = ready
        await self._socket.send(json.dumps({"id": sub.id, "type": "subscribe", "payload": sub.payload}))
        # The server handles messages in order: the pong means the subscription runs.
        await self._socket.send(json.dumps({"type": "ping", "payload": {_READY_KEY: sub.id}}))
        return ready

    async def _complete(self, id: str) -> None:
        self._subscriptions.pop(id, None)
        if self._socket is not None:
            with contextlib.suppress(ConnectionClosed):
                await self._socket.send(json.dumps({"id": id, "type": "complete"}))

    async def _read(self, socket: ClientConnection) -> None:
        try:
            async for frame in socket:
                self._dispatch(json.loads(frame))
        except ConnectionClosed:
            pass
        if self._closed or socket is not self._socket:
            return
        self._socket = None
        close = socket.close_code
        reason = socket.close_reason or ""
        await self._recover(close, reason)

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "pong":
            payload = message.get("payload") or {}
            id = str(payload.get(_READY_KEY))
            ready = self._ready.pop(id, None)
            if ready is not None and not ready.done():
                ready.set_result(None)
            if ready is not None and self.on_ready is not None:
                self.on_ready(id)
            return
        if kind == "ping":
            if self._socket is not None:
                asyncio.create_task(self._socket.send(json.dumps({"type": "pong"})))
            return
        sub = self._subscriptions.get(str(message.get("id")))
        if sub is None:
            return
        if kind == "next":
            result = message.get("payload") or {}
            errors = result.get("errors")
            if errors:
                self._fail(sub, GraphQLSubscriptionError(cast("list[GraphQLError]", errors)))
            elif result.get("data") is not None:
                sub._push(result["data"])
        elif kind == "error":
            self._fail(sub, GraphQLSubscriptionError(cast("list[GraphQLError]", message.get("payload") or [])))
        elif kind == "complete":
            self._subscriptions.pop(sub.id, None)
            sub._end(None)

    def _fail(self, sub: Subscription[Any], error: BaseException) -> None:
        self._subscriptions.pop(sub.id, None)
        ready = self._ready.pop(sub.id, None)
        if ready is not None and not ready.done():
            ready.set_exception(error)
        sub._end(error)

    async def _recover(self, code: int | None, reason: str) -> None:
        """After an unexpected close: reconnect (refreshing a token after 4403) and resubscribe,
        or end every subscription with the close."""
        creds = self._transport.credentials
        retry = self._reconnect and code not in _FATAL
        if code == _FORBIDDEN:
            retry = retry and creds.tokens is not None and not creds.api_key
        error: BaseException = GraphQLConnectionError(code, reason)
        attempt = 0
        while retry and attempt < self._max_attempts and not self._closed:
            if attempt:
                await asyncio.sleep(min(self._initial_delay * 2 ** (attempt - 1), self._max_delay))
            attempt += 1
            try:
                await self._open(force_refresh=code == _FORBIDDEN)
                for sub in list(self._subscriptions.values()):
                    resent = await self._send_subscribe(sub)
                    # Nobody awaits a resubscription's pong; retrieve its outcome so none is lost.
                    resent.add_done_callback(lambda f: None if f.cancelled() else f.exception())
                return
            except GraphQLConnectionError as e:
                error = e
                if e.close_code in _FATAL or e.close_code == _FORBIDDEN:
                    break
            except Exception as e:  # a refused refresh (UnauthorizedError) ends the session
                error = e
                break
        self._finish(error)

    def _finish(self, error: BaseException | None) -> None:
        for ready in self._ready.values():
            if not ready.done():
                ready.set_exception(error or GraphQLConnectionError(1000, "closed"))
        self._ready.clear()
        for sub in list(self._subscriptions.values()):
            sub._end(error)
        self._subscriptions.clear()
