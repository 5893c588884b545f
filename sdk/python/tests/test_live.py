"""The SDK against a real server: login, databases, tables, rows, the table_modified event over
the WebSocket (with a reconnect and resume), and typed 401/403 errors."""

from __future__ import annotations

import asyncio
import json
from typing import Any, cast

import pytest

from rustydb_client import (
    AsyncClient,
    events,
    Client,
    ForbiddenError,
    ServerMessage,
    SubscriptionError,
    UnauthorizedError,
)

from .conftest import ADMIN_PASSWORD


def admin(base_url: str) -> Client:
    client = Client(base_url)
    client.login({"username": "admin", "password": ADMIN_PASSWORD})
    return client


def test_sync_rows_round_trip(base_url: str) -> None:
    with admin(base_url) as client:
        client.create_database({"name": "sdk_py_sync"})
        client.create_table(
            "sdk_py_sync",
            {
                "name": "people",
                "columns": [
                    {"name": "id", "type": "INTEGER", "primary_key": True},
                    {"name": "name", "type": "TEXT", "not_null": True},
                    {"name": "age", "type": "INTEGER"},
                ],
            },
        )
        alice = client.insert_row("sdk_py_sync", "people", {"values": {"name": "alice", "age": 30}})
        client.insert_row("sdk_py_sync", "people", {"values": {"name": "bob", "age": 17}})
        adults = client.list_rows(
            "sdk_py_sync", "people", filter=json.dumps([{"column": "age", "op": "ge", "value": 18}])
        )
        assert adults["total"] == 1
        assert adults["rows"][0]["name"] == "alice"
        updated = client.update_row("sdk_py_sync", "people", str(alice["row_id"]), {"values": {"age": 31}})
        assert updated["row"]["age"] == 31
        client.delete_row("sdk_py_sync", "people", str(alice["row_id"]))
        assert client.list_rows("sdk_py_sync", "people")["total"] == 1


def change(table: str, operation: str):  # type: ignore[no-untyped-def]
    def match(m: ServerMessage) -> bool:
        return (
            m["message_type"] == "table_modified"
            and m["data"]["table"] == table
            and m["data"]["operation"] == operation
        )

    return match


def test_async_events_with_reconnect_and_resume(base_url: str) -> None:
    async def run() -> None:
        async with AsyncClient(base_url) as client:
            await client.login({"username": "admin", "password": ADMIN_PASSWORD})
            await client.create_database({"name": "sdk_py_async"})
            await client.create_table(
                "sdk_py_async",
                {"name": "items", "columns": [{"name": "title", "type": "TEXT"}]},
            )
            async with client.events(initial_delay=0.05) as stream:
                ack = await stream.subscribe("table_changes", filter={"table": "items"})
                assert ack["subscribed"] is True
                row = await client.insert_row("sdk_py_async", "items", {"values": {"title": "lamp"}})
                event = await stream.wait_for(change("items", "INSERT"))
                assert event["message_type"] == "table_modified"
                assert event["topic"] == "table_changes"
                assert event["data"]["row_data"]["title"] == "lamp"
                first = event["sequence"]

                # Drop the connection and change the row while it reconnects: the update arrives
                # exactly once, replayed after the last sequence seen or live.
                await stream.reconnect()
                await client.update_row("sdk_py_async", "items", str(row["row_id"]), {"values": {"title": "desk"}})
                update = await stream.wait_for(change("items", "UPDATE"))
                assert update["message_type"] == "table_modified"
                assert update["data"]["row_data"]["title"] == "desk"
                assert update["sequence"] > first
                await client.delete_row("sdk_py_async", "items", str(row["row_id"]))
                deleted = await stream.wait_for(change("items", "DELETE"))
                assert deleted["message_type"] == "table_modified"
                assert stream.last_sequence("table_changes") == deleted["sequence"]

    asyncio.run(run())


def test_a_sequence_from_another_server_run_replays_everything_held(base_url: str) -> None:
    async def run() -> None:
        async with AsyncClient(base_url) as client:
            await client.login({"username": "admin", "password": ADMIN_PASSWORD})
            await client.create_database({"name": "sdk_py_epoch"})
            await client.create_table(
                "sdk_py_epoch",
                {"name": "things", "columns": [{"name": "n", "type": "INTEGER"}]},
            )
            for n in (1, 2, 3):
                await client.insert_row("sdk_py_epoch", "things", {"values": {"n": n}})

            async def resume(last: int, epoch: str | None, count: int) -> tuple[str, list[ServerMessage]]:
                async with client.events() as stream:
                    ack = await stream.subscribe(
                        "table_changes", filter={"table": "things"}, last_sequence=last, epoch=epoch
                    )
                    got = [await stream.wait_for(change("things", "INSERT")) for _ in range(count)]
                    assert stream.epoch("table_changes") == ack["epoch"]
                    return ack["epoch"], got

            def ns(messages: list[ServerMessage]) -> list[Any]:
                return [cast(events.TableModifiedMessage, m)["data"]["row_data"]["n"] for m in messages]

            epoch, everything = await resume(0, None, 3)
            assert len(epoch) == 16 and all(c in "0123456789abcdef" for c in epoch)
            assert ns(everything) == [1, 2, 3]
            second = cast(events.TableModifiedMessage, everything[1])["sequence"]
            # The same epoch: an ordinary resume after the second insert.
            same_epoch, same = await resume(second, epoch, 1)
            assert same_epoch == epoch and ns(same) == [3]
            # Another epoch: the server restarted since, so everything held is new to this client.
            _, other = await resume(second, "0123456789abcdef", 3)
            assert ns(other) == [1, 2, 3]

    asyncio.run(run())


def test_wrong_password_is_unauthorized(base_url: str) -> None:
    with Client(base_url) as client, pytest.raises(UnauthorizedError) as caught:
        client.login({"username": "admin", "password": "wrong-password"})
    assert caught.value.status == 401
    assert caught.value.code == "UNAUTHORIZED"


def test_read_only_user_is_forbidden(base_url: str) -> None:
    with admin(base_url) as root:
        root.create_database({"name": "sdk_py_ro"})
        # GET /metrics is a text route: the SDK hands back the exposition as a string.
        scrape = root.get_prometheus_metrics()
        assert "\n# TYPE rustydb_http_requests_total counter\n" in "\n" + scrape
        root.create_user({"username": "py_analyst", "password": "password-123", "roles": ["analyst"]})
    with Client(base_url) as analyst:
        analyst.login({"username": "py_analyst", "password": "password-123"})
        assert any(d["name"] == "sdk_py_ro" for d in analyst.list_databases()["databases"])
        with pytest.raises(ForbiddenError) as caught:
            analyst.create_table("sdk_py_ro", {"name": "t", "columns": [{"name": "a", "type": "TEXT"}]})
        assert caught.value.status == 403
        with pytest.raises(ForbiddenError) as scrape_refused:
            analyst.get_prometheus_metrics()
        assert scrape_refused.value.status == 403

    async def topic_refused() -> None:
        async with AsyncClient(base_url) as client:
            await client.login({"username": "py_analyst", "password": "password-123"})
            async with client.events() as stream:
                with pytest.raises(SubscriptionError) as refused:
                    await stream.subscribe("system_metrics")
                assert refused.value.code == "FORBIDDEN_TOPIC"

    asyncio.run(topic_refused())


def test_expired_access_token_is_refreshed(base_url: str) -> None:
    with admin(base_url) as client:
        before = client.http.tokens
        assert before is not None
        client.http.set_tokens({**before, "expires_in": 0})
        client.list_databases()
        after = client.http.tokens
        assert after is not None and after["refresh_token"] != before["refresh_token"]
