"""An async WebSocket event stream that survives disconnects: it remembers its subscriptions and
the last sequence seen on each topic, reconnects with backoff (refreshing the token first), and
resubscribes with ``last_sequence`` so the server replays what was missed (or says ``gap``).
Protocol: docs/websocket.md. Credentials travel as subprotocols."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any, cast

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from ._generated.events import (
    EVENT_MESSAGE_TYPES,
    WS_ENDPOINTS,
    EventMessage,
    ServerMessage,
    SubscriptionAckData,
    Topic,
    parse_server_message,
)
from ._transport import AsyncTransport
from .errors import SubscriptionError, api_error_from

Filter = dict[str, str | int | float | bool | None]

#: Closed by an administrator: reconnecting would be wrong.
_FINAL_CODES = frozenset({4009})
#: The credentials expired: refresh before reconnecting.
_CREDENTIALS_EXPIRED = 4001
#: Error codes that answer a ``subscribe`` (errors do not say which request they answer).
_SUBSCRIBE_ERRORS = frozenset(
    {"MALFORMED_MESSAGE", "UNKNOWN_TOPIC", "FORBIDDEN_TOPIC", "INVALID_FILTER", "TOO_MANY_SUBSCRIPTIONS"}
)


class StreamClosed(Exception):
    """The stream ended: closed by the client, by an administrator, or reconnecting gave up."""


class EventStream:
    """``async with client.events() as stream: await stream.subscribe("table_changes")``, then
    ``async for message in stream``."""

    def __init__(
        self,
        transport: AsyncTransport,
        *,
        path: str = WS_ENDPOINTS["ws"],
        reconnect: bool = True,
        initial_delay: float = 0.25,
        max_delay: float = 10.0,
        max_attempts: int = 10,
    ) -> None:
        self._transport = transport
        self._path = path
        self._reconnect = reconnect
        self._initial_delay = initial_delay
        self._max_delay = max_delay
        self._max_attempts = max_attempts
        self._socket: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._subscriptions: dict[str, Filter | None] = {}
        self._sequences: dict[str, int] = {}
        # The epoch each topic's sequence was counted in (sequences restart with the server).
        self._epochs: dict[str, str] = {}
        self._pending: dict[str, list[asyncio.Future[SubscriptionAckData]]] = {}
        self._awaiting: list[str] = []
        self._queue: asyncio.Queue[ServerMessage | None] = asyncio.Queue()
        self._listeners: list[Callable[[ServerMessage], None]] = []
        self._closed = False
        self._error: BaseException | None = None

    async def __aenter__(self) -> EventStream:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self) -> None:
        """Opens the connection (an ``ApiError`` if the upgrade is refused) and starts reading."""
        await self._open(force_refresh=False)
        self._reader = asyncio.create_task(self._run())

    async def subscribe(
        self,
        topic: Topic,
        *,
        filter: Filter | None = None,
        last_sequence: int | None = None,
        epoch: str | None = None,
    ) -> SubscriptionAckData:
        """Subscribes (one subscription per topic on this stream); returns the acknowledgement,
        raises ``SubscriptionError`` when refused. ``epoch``: the server run ``last_sequence``
        was counted in (an acknowledgement's ``epoch``); after a restart the server then replays
        everything it holds."""
        self._subscriptions[topic] = filter
        if last_sequence is not None:
            self._sequences[topic] = last_sequence
        if epoch is not None:
            self._epochs[topic] = epoch
        future: asyncio.Future[SubscriptionAckData] = asyncio.get_running_loop().create_future()
        self._pending.setdefault(topic, []).append(future)
        if self._socket is not None:
            await self._send_subscribe(self._socket, topic)
        return await future

    async def unsubscribe(self, topic: Topic) -> None:
        """Ends the topic's subscription; it is not restored on reconnect."""
        self._subscriptions.pop(topic, None)
        self._sequences.pop(topic, None)
        self._epochs.pop(topic, None)
        if self._socket is not None:
            await self._socket.send(json.dumps({"message_type": "unsubscribe", "data": {"topic": topic}}))

    def last_sequence(self, topic: Topic) -> int | None:
        """The sequence of the last event seen on a topic (what a resume starts after)."""
        return self._sequences.get(topic)

    def epoch(self, topic: Topic) -> str | None:
        """The server run that sequence was counted in."""
        return self._epochs.get(topic)

    def on_message(self, listener: Callable[[ServerMessage], None]) -> None:
        """Calls ``listener`` with every message, from the reading task."""
        self._listeners.append(listener)

    async def reconnect(self) -> None:
        """Drops the connection the way a network failure would; the stream reconnects and resumes."""
        if self._socket is not None:
            await self._socket.close(code=4999, reason="client reconnect")

    async def close(self) -> None:
        self._closed = True
        if self._socket is not None:
            await self._socket.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        self._finish(StreamClosed("closed by the client"))

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> ServerMessage:
        message = await self._queue.get()
        if message is None:
            self._queue.put_nowait(None)  # wake other readers too
            if self._error is not None and not isinstance(self._error, StreamClosed):
                raise self._error
            raise StopAsyncIteration
        return message

    async def wait_for(self, match: Callable[[ServerMessage], bool], timeout: float = 10.0) -> ServerMessage:
        """The next message ``match`` accepts (consumes the iterator's messages up to it)."""
        async with asyncio.timeout(timeout):
            async for message in self:
                if match(message):
                    return message
        raise StreamClosed("stream ended before a matching message")

    async def _open(self, force_refresh: bool) -> None:
        protocols = await self._transport.fresh_credentials(force_refresh)
        url = self._transport.websocket_url(self._path)
        try:
            socket = await connect(url, subprotocols=[Subprotocol(p) for p in protocols])
        except InvalidStatus as e:
            body: Any = e.response.body.decode(errors="replace") if e.response.body else ""
            with contextlib.suppress(ValueError):
                body = json.loads(body)
            raise api_error_from(e.response.status_code, body, e.response.headers.get("Retry-After")) from e
        self._socket = socket
        self._awaiting.clear()
        for topic in list(self._subscriptions):
            await self._send_subscribe(socket, topic)

    async def _run(self) -> None:
        attempts = 0
        while not self._closed:
            socket = self._socket
            code: int | None = None
            if socket is not None:
                try:
                    async for frame in socket:
                        attempts = 0
                        self._handle(frame)
                except ConnectionClosed:
                    pass
                code = socket.close_code
                self._socket = None
            if self._closed:
                return
            if code in _FINAL_CODES or not self._reconnect:
                self._finish(StreamClosed(f"connection closed with {code}"))
                return
            attempts += 1
            if attempts > self._max_attempts:
                self._finish(StreamClosed(f"gave up after {attempts - 1} reconnect attempts"))
                return
            await asyncio.sleep(min(self._initial_delay * 2 ** (attempts - 1), self._max_delay))
            try:
                await self._open(force_refresh=code == _CREDENTIALS_EXPIRED)
            except (OSError, ConnectionClosed, InvalidStatus):
                continue
            except Exception as e:  # a refused upgrade or refresh: the credentials are gone
                self._finish(e)
                return

    async def _send_subscribe(self, socket: ClientConnection, topic: str) -> None:
        data: dict[str, Any] = {"topic": topic}
        if self._subscriptions.get(topic):
            data["filter"] = self._subscriptions[topic]
        if topic in self._sequences:
            data["last_sequence"] = self._sequences[topic]
            if topic in self._epochs:
                data["epoch"] = self._epochs[topic]
        self._awaiting.append(topic)
        await socket.send(json.dumps({"message_type": "subscribe", "data": data}))

    def _handle(self, frame: str | bytes) -> None:
        message = parse_server_message(frame)
        if message is None:
            return
        if message["message_type"] == "subscription_ack":
            self._acknowledged(message["data"])
        elif message["message_type"] == "error":
            if message["data"]["code"] in _SUBSCRIBE_ERRORS and self._awaiting:
                topic = self._awaiting.pop(0)
                self._subscriptions.pop(topic, None)
                error = SubscriptionError(message["data"]["code"], message["data"]["message"])
                for future in self._pending.pop(topic, []):
                    if not future.done():
                        future.set_exception(error)
        elif message["message_type"] == "gap":
            # The lost range is gone for good; resume after it.
            self._sequences[message["data"]["topic"]] = message["data"]["to_sequence"]
        elif message["message_type"] in EVENT_MESSAGE_TYPES:
            event = cast(EventMessage, message)
            self._sequences[event["topic"]] = event["sequence"]
        self._queue.put_nowait(message)
        for listener in self._listeners:
            listener(message)

    def _acknowledged(self, ack: SubscriptionAckData) -> None:
        if not ack["subscribed"]:
            return
        topic = ack["topic"]
        if topic in self._awaiting:
            self._awaiting.remove(topic)
        mine = self._sequences.get(topic)
        # Another epoch, or a newest sequence below ours: the server restarted, numbers began
        # again and it replays everything it holds.
        known = self._epochs.get(topic)
        restarted = (known is not None and known != ack["epoch"]) or (
            mine is not None and ack["last_sequence"] < mine
        )
        self._epochs[topic] = ack["epoch"]
        # No sequence yet: resume from here after a reconnect.
        if mine is None or restarted:
            self._sequences[topic] = ack["last_sequence"]
        for future in self._pending.pop(topic, []):
            if not future.done():
                future.set_result(ack)

    def _finish(self, error: BaseException) -> None:
        if self._error is None:
            self._error = error
        for futures in self._pending.values():
            for future in futures:
                if not future.done():
                    future.set_exception(StreamClosed(str(error)))
        self._pending.clear()
        self._queue.put_nowait(None)
