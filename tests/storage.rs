//! Storage routes: filesystem and data sizes, disks, I/O counters, and tablespaces with database
//! creation in them, moves between them, and discovery after a restart.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::{Caller, TestServer};

async fn exec(c: &Caller<'_>, database: &str, sql: &str) {
    let r = c
        .post_json(
            "/api/v1/sql/execute",
            &json!({"sql": sql, "database": database}).to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{sql}: {}", r.body);
}

async fn count(c: &Caller<'_>, database: &str) -> Value {
    let r = c
        .post_json(
            "/api/v1/sql/query",
            &json!({"sql": "SELECT count(*) FROM t", "database": database}).to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["rows"][0][0].clone()
}

async fn create_tablespace(c: &Caller<'_>, name: &str, path: &std::path::Path) -> Value {
    let r = c
        .post_json(
            "/api/v1/storage/tablespaces",
            &json!({"name": name, "path": path, "description": "test volume"}).to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body
}

#[tokio::test]
async fn status_reports_the_filesystem_and_real_data_and_index_sizes() {
    let server = TestServer::new().await;
    let admin = server.admin().await;
    let r = admin.get("/api/v1/storage/status").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let total = r.body["total_bytes"].as_u64().unwrap();
    assert!(total > 0);
    assert!(r.body["available_bytes"].as_u64().unwrap() <= total);
    assert!(r.body["used_bytes"].as_u64().unwrap() <= total);
    // As `df` computes them (statvfs of the data directory): used = blocks - free, Use% =
    // used / (used + available). Within 64 MB of a statvfs taken now (other tests write).
    let fs = rustix::fs::statvfs(server.data_dir.path()).expect("statvfs");
    let used = (fs.f_blocks - fs.f_bfree) * fs.f_frsize;
    let available = fs.f_bavail * fs.f_frsize;
    assert_eq!(total, fs.f_blocks * fs.f_frsize, "{}", r.body);
    let near = |a: u64, b: u64| a.abs_diff(b) < 64 << 20;
    assert!(
        near(r.body["used_bytes"].as_u64().unwrap(), used),
        "{} vs {used}",
        r.body
    );
    assert!(
        near(r.body["available_bytes"].as_u64().unwrap(), available),
        "{} vs {available}",
        r.body
    );
    let percent = r.body["usage_percent"].as_f64().unwrap();
    let df = used as f64 * 100.0 / (used + available) as f64;
    assert!((percent - df).abs() < 1.0, "{percent} vs df's {df}");
    assert!(r.body["data_bytes"].as_u64().unwrap() > 0, "{}", r.body);
    assert_eq!(r.body["databases"], 1);
    let index_before = r.body["index_bytes"].as_u64().unwrap();

    exec(&admin, "default", "CREATE TABLE t (a TEXT)").await;
    exec(
        &admin,
        "default",
        "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 2000) \
         INSERT INTO t SELECT hex(randomblob(50)) FROM s",
    )
    .await;
    exec(&admin, "default", "CREATE INDEX t_a ON t (a)").await;
    let r = admin.get("/api/v1/storage/status").await;
    let index_after = r.body["index_bytes"].as_u64().unwrap();
    // 2,000 keys of 100 bytes: well over 200 KB of index pages.
    assert!(
        index_after >= index_before + 200_000,
        "{index_before} -> {index_after}"
    );
    assert!(r.body["wal_bytes"].as_u64().unwrap() > 0, "{}", r.body);

    let r = admin.get("/api/v1/storage/disks").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let disks = r.body["disks"].as_array().unwrap();
    assert_eq!(
        disks
            .iter()
            .filter(|d| d["holds_data_directory"] == true)
            .count(),
        1,
        "{}",
        r.body
    );
}

#[tokio::test]
async fn io_stats_are_counters_and_rates_when_sampled() {
    let server = TestServer::new().await;
    let admin = server.admin().await;
    let r = admin.get("/api/v1/storage/io-stats").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.get("rates").is_none(), "{}", r.body);
    if std::path::Path::new("/proc/self/io").exists() {
        // This process has at least read its own files.
        assert!(
            r.body["process"]["rchar"].as_u64().unwrap() > 0,
            "{}",
            r.body
        );
    }
    let r = admin.get("/api/v1/storage/io-stats?sample_ms=50").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["sample_ms"], 50);
    if r.body.get("host").is_some() {
        assert!(r.body["rates"]["reads_per_sec"].as_f64().unwrap() >= 0.0);
    }
    let r = admin.get("/api/v1/storage/io-stats?sample_ms=60000").await;
    r.assert_error(StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn tablespace_crud_and_its_failures() {
    let server = TestServer::new().await;
    let admin = server.admin().await;
    let volume = tempfile::tempdir().unwrap();
    let fast = volume.path().join("fast");
    let created = create_tablespace(&admin, "fast", &fast).await;
    assert!(fast.is_dir(), "created when missing");
    assert_eq!(created["built_in"], false);
    assert_eq!(created["databases"], json!([]));

    let r = admin.get("/api/v1/storage/tablespaces").await;
    assert_eq!(r.body["total"], 2, "{}", r.body);
    assert_eq!(r.body["tablespaces"][0]["name"], "default");
    assert_eq!(r.body["tablespaces"][0]["databases"], json!(["default"]));

    let post = |body: Value| {
        let admin = admin.clone();
        async move {
            admin
                .post_json("/api/v1/storage/tablespaces", &body.to_string())
                .await
        }
    };
    let other = volume.path().join("other");
    let file = volume.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let cases = [
        (json!({"name": "fast", "path": other}), StatusCode::CONFLICT),
        (
            json!({"name": "default", "path": other}),
            StatusCode::CONFLICT,
        ),
        (
            json!({"name": "other", "path": "relative/dir"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"name": "other", "path": volume.path().join("x/../y")}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"name": "other", "path": file.join("sub")}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"name": "other", "path": fast.join("inner")}),
            StatusCode::CONFLICT,
        ),
        (
            json!({"name": "other", "path": volume.path()}),
            StatusCode::CONFLICT,
        ),
        (
            json!({"name": "other", "path": server.data_dir.path()}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"name": "Bad Name", "path": other}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!({"name": "other"}), StatusCode::UNPROCESSABLE_ENTITY),
    ];
    for (body, status) in cases {
        let r = post(body.clone()).await;
        assert_eq!(r.status, status, "{body}: {}", r.body);
        r.assert_error(status);
    }

    let r = admin
        .put_json(
            "/api/v1/storage/tablespaces/fast",
            &json!({"description": "NVMe"}).to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["description"], "NVMe");
    let r = admin
        .put_json(
            "/api/v1/storage/tablespaces/nope",
            &json!({"description": "x"}).to_string(),
        )
        .await;
    r.assert_error(StatusCode::NOT_FOUND);
    let r = admin
        .put_json(
            "/api/v1/storage/tablespaces/default",
            &json!({"description": "x"}).to_string(),
        )
        .await;
    r.assert_error(StatusCode::CONFLICT);
    admin
        .delete("/api/v1/storage/tablespaces/nope")
        .await
        .assert_error(StatusCode::NOT_FOUND);
    admin
        .delete("/api/v1/storage/tablespaces/default")
        .await
        .assert_error(StatusCode::CONFLICT);

    // A database in the tablespace: its file is there, and the tablespace cannot go.
    let r = admin
        .post_json(
            "/api/v1/databases",
            &json!({"name": "shop", "tablespace": "fast"}).to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["tablespace"], "fast");
    let canonical_fast = fast.canonicalize().unwrap();
    assert!(canonical_fast.join("shop.db").is_file());
    let r = admin
        .post_json(
            "/api/v1/databases",
            &json!({"name": "lost", "tablespace": "nope"}).to_string(),
        )
        .await;
    r.assert_error(StatusCode::NOT_FOUND);
    admin
        .delete("/api/v1/storage/tablespaces/fast")
        .await
        .assert_error(StatusCode::CONFLICT);
    // Its path can change only while it is empty.
    let r = admin
        .put_json(
            "/api/v1/storage/tablespaces/fast",
            &json!({"path": other}).to_string(),
        )
        .await;
    r.assert_error(StatusCode::CONFLICT);

    let r = admin.delete("/api/v1/databases/shop").await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let r = admin
        .put_json(
            "/api/v1/storage/tablespaces/fast",
            &json!({"path": other}).to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body["path"],
        other.canonicalize().unwrap().display().to_string()
    );
    let r = admin.delete("/api/v1/storage/tablespaces/fast").await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let r = admin.get("/api/v1/storage/tablespaces").await;
    assert_eq!(r.body["total"], 1, "{}", r.body);
}

#[tokio::test]
async fn a_database_moves_between_tablespaces_and_is_found_after_a_restart() {
    let server = TestServer::new().await;
    let volume = tempfile::tempdir().unwrap();
    let fast = volume.path().join("fast");
    {
        let admin = server.admin().await;
        create_tablespace(&admin, "fast", &fast).await;
        let r = admin
            .post_json("/api/v1/databases", &json!({"name": "shop"}).to_string())
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        assert_eq!(r.body["tablespace"], "default");
        exec(&admin, "shop", "CREATE TABLE t (a INTEGER)").await;
        exec(&admin, "shop", "INSERT INTO t VALUES (1), (2), (3)").await;

        // Not while a transaction holds it.
        let r = admin
            .post_json(
                "/api/v1/transactions",
                &json!({"database": "shop"}).to_string(),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let tx = r.body["transaction_id"].as_str().unwrap().to_string();
        let r = admin
            .post_json(
                "/api/v1/databases/shop/move",
                &json!({"tablespace": "fast"}).to_string(),
            )
            .await;
        assert_eq!(r.assert_error(StatusCode::CONFLICT), "CONFLICT");
        admin
            .post_json(&format!("/api/v1/transactions/{tx}/rollback"), "")
            .await;

        for (body, status) in [
            (json!({"tablespace": "nope"}), StatusCode::NOT_FOUND),
            (json!({"tablespace": "default"}), StatusCode::CONFLICT),
            (json!({}), StatusCode::UNPROCESSABLE_ENTITY),
        ] {
            let r = admin
                .post_json("/api/v1/databases/shop/move", &body.to_string())
                .await;
            r.assert_error(status);
        }
        admin
            .post_json(
                "/api/v1/databases/nope/move",
                &json!({"tablespace": "fast"}).to_string(),
            )
            .await
            .assert_error(StatusCode::NOT_FOUND);

        let r = admin
            .post_json(
                "/api/v1/databases/shop/move",
                &json!({"tablespace": "fast"}).to_string(),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["tablespace"], "fast");
        let moved = fast.canonicalize().unwrap().join("shop.db");
        assert_eq!(r.body["path"], moved.display().to_string());
        assert!(moved.is_file());
        assert!(!server.data_dir.path().join("databases/shop.db").exists());
        assert!(
            !server
                .data_dir
                .path()
                .join("databases/shop.db-wal")
                .exists()
        );
        assert_eq!(count(&admin, "shop").await, 3);
        exec(&admin, "shop", "INSERT INTO t VALUES (4)").await;
        let r = admin.get("/api/v1/storage/tablespaces").await;
        assert_eq!(
            r.body["tablespaces"][1]["databases"],
            json!(["shop"]),
            "{}",
            r.body
        );
    }

    let server = server.restart().await;
    let admin = server.admin().await;
    let r = admin.get("/api/v1/databases/shop").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["tablespace"], "fast");
    assert_eq!(count(&admin, "shop").await, 4);

    // And back to the data directory.
    let r = admin
        .post_json(
            "/api/v1/databases/shop/move",
            &json!({"tablespace": "default"}).to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(server.data_dir.path().join("databases/shop.db").is_file());
    assert_eq!(count(&admin, "shop").await, 4);
}

#[tokio::test]
async fn storage_permissions() {
    let server = TestServer::new().await;
    let volume = tempfile::tempdir().unwrap();
    let analyst = server.user_with_roles("ann", &["analyst"]).await;
    let monitor = server.user_with_roles("mo", &["monitor"]).await;
    for path in [
        "/api/v1/storage/status",
        "/api/v1/storage/disks",
        "/api/v1/storage/io-stats",
        "/api/v1/storage/tablespaces",
    ] {
        assert_eq!(monitor.get(path).await.status, StatusCode::OK, "{path}");
        analyst.get(path).await.assert_error(StatusCode::FORBIDDEN);
    }
    let body = json!({"name": "fast", "path": volume.path().join("fast")}).to_string();
    for caller in [&analyst, &monitor] {
        caller
            .post_json("/api/v1/storage/tablespaces", &body)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        caller
            .post_json(
                "/api/v1/databases/default/move",
                &json!({"tablespace": "default"}).to_string(),
            )
            .await
            .assert_error(StatusCode::FORBIDDEN);
        caller
            .delete("/api/v1/storage/tablespaces/fast")
            .await
            .assert_error(StatusCode::FORBIDDEN);
    }
    assert!(!volume.path().join("fast").exists());
}

/// A tablespace on another filesystem (tmpfs at /dev/shm, where there is one): the move copies,
/// syncs and removes instead of renaming.
#[tokio::test]
async fn a_move_across_filesystems_copies_the_file() {
    use std::os::unix::fs::MetadataExt;
    let server = TestServer::new().await;
    let shm = std::path::Path::new("/dev/shm");
    let here = std::fs::metadata(server.data_dir.path()).unwrap().dev();
    if std::fs::metadata(shm)
        .map(|m| m.dev() == here)
        .unwrap_or(true)
    {
        eprintln!("no second filesystem at /dev/shm; cross-filesystem move not exercised");
        return;
    }
    let volume = tempfile::tempdir_in(shm).unwrap();
    let admin = server.admin().await;
    create_tablespace(&admin, "ram", volume.path()).await;
    exec(&admin, "default", "CREATE TABLE t (a INTEGER)").await;
    exec(&admin, "default", "INSERT INTO t VALUES (1), (2)").await;
    let r = admin
        .post_json(
            "/api/v1/databases/default/move",
            &json!({"tablespace": "ram"}).to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(volume.path().join("default.db").is_file());
    assert!(!server.data_dir.path().join("databases/default.db").exists());
    assert!(!volume.path().join("default.db.moving").exists());
    assert_eq!(count(&admin, "default").await, 2);
    let r = admin
        .post_json(
            "/api/v1/databases/default/move",
            &json!({"tablespace": "default"}).to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(count(&admin, "default").await, 2);
    assert!(!volume.path().join("default.db").exists());
}

/// The `storage_status` stream measures while someone listens, with the status route's figures.
#[tokio::test]
async fn storage_status_is_published_while_subscribed() {
    let server = TestServer::new().await;
    let topic = server.bus().topic("storage_status").expect("topic");
    assert_eq!(topic.head(), 0, "nothing measured without subscribers");
    let mut rx = topic.listen();
    let event = tokio::time::timeout(std::time::Duration::from_secs(15), rx.recv())
        .await
        .expect("a measurement within 15 s")
        .expect("event");
    assert_eq!(event.message_type, "storage_status");
    let data = &event.data;
    assert!(data["total_bytes"].as_u64().unwrap() > 0, "{data}");
    assert!(data["data_size"].as_u64().unwrap() > 0, "{data}");
    assert!(data["available_bytes"].as_u64().unwrap() <= data["total_bytes"].as_u64().unwrap());
    assert!(data["timestamp"].as_i64().unwrap() > 1_700_000_000);
}
