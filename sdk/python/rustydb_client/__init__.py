"""rustydb-client: typed sync and async clients for RustyDB Server, login with automatic token
refresh, a WebSocket event stream with reconnect and resume, and GraphQL subscriptions.

``_generated/`` is produced by ``cargo codegen`` from the server's schema; the rest is hand-written.
"""

from __future__ import annotations

from typing import Any

from ._generated import events, models
from ._generated.client import AsyncRestClient, RestClient
from ._generated.events import ServerMessage, Topic, parse_server_message
from ._transport import AsyncTransport, SyncTransport
from .errors import (
    ApiError,
    BadRequestError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    RateLimitError,
    ServerError,
    SubscriptionError,
    UnauthorizedError,
    ValidationError,
)
from .graphql import (
    GraphQLConnectionError,
    GraphQLError,
    GraphQLSession,
    GraphQLSubscriptionError,
    Subscription,
)
from .ws import EventStream, StreamClosed

__all__ = [
    "ApiError",
    "AsyncClient",
    "BadRequestError",
    "Client",
    "ConflictError",
    "EventStream",
    "ForbiddenError",
    "GraphQLConnectionError",
    "GraphQLError",
    "GraphQLSession",
    "GraphQLSubscriptionError",
    "NotFoundError",
    "RateLimitError",
    "ServerError",
    "ServerMessage",
    "StreamClosed",
    "Subscription",
    "SubscriptionError",
    "Topic",
    "UnauthorizedError",
    "ValidationError",
    "events",
    "models",
    "parse_server_message",
]


class Client(RestClient):
    """The synchronous client: every REST operation as a method; ``login`` keeps the tokens and
    later calls refresh them before they expire."""

    def __init__(self, base_url: str, **options: Any) -> None:
        self.http = SyncTransport(base_url, **options)
        super().__init__(self.http)

    def login(self, body: models.LoginRequest) -> models.TokenPair:
        tokens = super().login(body)
        self.http.set_tokens(tokens)
        return tokens

    def logout(self) -> None:
        try:
            super().logout()
        finally:
            self.http.clear_tokens()

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient(AsyncRestClient):
    """The asyncio client; also opens WebSocket event streams (``events()``)."""

    def __init__(self, base_url: str, **options: Any) -> None:
        self.http = AsyncTransport(base_url, **options)
        super().__init__(self.http)

    async def login(self, body: models.LoginRequest) -> models.TokenPair:
        tokens = await super().login(body)
        self.http.set_tokens(tokens)
        return tokens

    async def logout(self) -> None:
        try:
            await super().logout()
        finally:
            self.http.clear_tokens()

    def events(self, **options: Any) -> EventStream:
        """A WebSocket event stream with this client's credentials (``async with`` it)."""
        return EventStream(self.http, **options)

    def graphql(self, **options: Any) -> GraphQLSession:
        """GraphQL subscriptions on ``/graphql`` with this client's credentials (``async with`` it)."""
        return GraphQLSession(self.http, **options)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
