"""GraphQL subscriptions against a real server: the seed's ``tableChanges`` document sees an insert
made with the REST client; a subscription without its permission and refused credentials are
typed errors."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Literal, TypedDict

import pytest

from rustydb_client import AsyncClient, GraphQLConnectionError, GraphQLSubscriptionError

from .conftest import ADMIN_PASSWORD, ROOT


class Row(TypedDict):
    id: str
    data: str


class TableChange(TypedDict):
    table: str
    changeType: Literal["INSERT", "UPDATE", "DELETE"]
    row: Row
    oldRow: Row | None
    timestamp: str


class TableChanges(TypedDict):
    tableChanges: TableChange


def seed_document(field: str) -> str:
    """The seed's document for ``field`` (the seed beside the project, else the committed copy)."""
    candidates = [ROOT.parent / "shared/seed/websocket-integration-guide.md", ROOT / "tests/fixtures/websocket-integration-guide.md"]
    text = next(p.read_text() for p in candidates if p.exists())
    section = text.split("## GraphQL Subscriptions")[1].split("\n## ")[0]
    for block in section.split("```graphql")[1:]:
        document = block.split("```")[0]
        if re.search(r"\{\s*" + field + r"\b", document):
            return document
    raise AssertionError(f"no seed document for {field}")


def test_table_changes_receives_an_insert(base_url: str) -> None:
    async def run() -> None:
        async with AsyncClient(base_url) as client:
            await client.login({"username": "admin", "password": ADMIN_PASSWORD})
            await client.create_table(
                "default",
                {
                    "name": "users",
                    "columns": [
                        {"name": "id", "type": "INTEGER", "primary_key": True},
                        {"name": "username", "type": "TEXT", "not_null": True},
                    ],
                },
            )
            async with client.graphql() as session:
                changes = await session.subscribe(seed_document("tableChanges"), result=TableChanges)
                inserted = await client.insert_row("default", "users", {"values": {"id": 99, "username": "py"}})
                data = await asyncio.wait_for(anext(aiter(changes)), 10)
                change = data["tableChanges"]
                assert set(change) == {"table", "changeType", "row", "oldRow", "timestamp"}
                assert change["table"] == "users"
                assert change["changeType"] == "INSERT"
                assert change["row"]["id"] == str(inserted["row_id"])
                assert json.loads(change["row"]["data"]) == {"id": 99, "username": "py"}
                assert change["oldRow"] is None
                await changes.close()

    asyncio.run(run())


def test_forbidden_subscription_and_bad_credentials_are_typed(base_url: str) -> None:
    async def run() -> None:
        async with AsyncClient(base_url) as root:
            await root.login({"username": "admin", "password": ADMIN_PASSWORD})
            await root.create_user({"username": "py_gql_analyst", "password": "password-123", "roles": ["analyst"]})
        async with AsyncClient(base_url) as analyst:
            await analyst.login({"username": "py_gql_analyst", "password": "password-123"})
            async with analyst.graphql() as session:
                with pytest.raises(GraphQLSubscriptionError) as refused:
                    await session.subscribe("subscription { systemMetrics { cpuUsage } }")
                assert refused.value.code == "FORBIDDEN"
                # The connection stays open for permitted subscriptions.
                beats = await session.subscribe("subscription { heartbeat(intervalSeconds: 1) { sequence } }")
                beat = await asyncio.wait_for(anext(aiter(beats)), 10)
                assert isinstance(beat["heartbeat"]["sequence"], int)
        for bad in (AsyncClient(base_url, api_key="rustydb_not_a_key"), AsyncClient(base_url)):
            async with bad:
                if bad.http.credentials.api_key is None:
                    bad.http.set_tokens(
                        {"access_token": "not-a-token", "refresh_token": "x", "token_type": "Bearer",
                         "expires_in": 3600, "refresh_expires_in": 3600}
                    )
                with pytest.raises(GraphQLConnectionError) as closed:
                    await bad.graphql().connect()
                assert closed.value.close_code == 4403

    asyncio.run(run())


def test_expired_token_is_refreshed_and_the_subscription_resent(short_token_url: str) -> None:
    async def run() -> None:
        async with AsyncClient(short_token_url, refresh_margin=0) as client:
            first = await client.login({"username": "admin", "password": ADMIN_PASSWORD})
            await client.create_table(
                "default",
                {"name": "users", "columns": [{"name": "id", "type": "INTEGER", "primary_key": True}]},
            )
            async with client.graphql(initial_delay=0.05) as session:
                changes = await session.subscribe(seed_document("tableChanges"), result=TableChanges)
                # The server closes at the token's expiry (8 s) with 4403; the session refreshes the
                # token, reconnects and resends the subscription, then answers its ping.
                resent: asyncio.Future[str] = asyncio.get_running_loop().create_future()

                def ready_again(id: str) -> None:
                    if not resent.done():
                        resent.set_result(id)

                session.on_ready = ready_again
                await asyncio.wait_for(resent, 20)
                assert session.connections == 2
                tokens = client.http.tokens
                assert tokens is not None and tokens["refresh_token"] != first["refresh_token"]
                await client.insert_row("default", "users", {"values": {"id": 5}})
                data = await asyncio.wait_for(anext(aiter(changes)), 10)
                assert json.loads(data["tableChanges"]["row"]["data"]) == {"id": 5}

    asyncio.run(run())
