use super::*;

fn tx(id: &str, started: i64) -> TxMeta {
    TxMeta {
        transaction_id: id.into(),
        owner: "alice".into(),
        database: "default".into(),
        started_at: DateTime::from_timestamp(started, 0).expect("time"),
    }
}

const S: LockMode = LockMode::Shared;
const X: LockMode = LockMode::Exclusive;

fn granted(a: Result<Acquired>) -> LockInfo {
    match a.expect("acquire") {
        Acquired::Granted(info) => info,
        other => panic!("not granted: {other:?}"),
    }
}

fn waiting(a: Result<Acquired>) -> (String, oneshot::Receiver<Outcome>, Vec<Deadlock>) {
    match a.expect("acquire") {
        Acquired::Waiting {
            lock_id,
            rx,
            resolved,
            ..
        } => (lock_id, rx, resolved),
        other => panic!("not waiting: {other:?}"),
    }
}

fn outcome(rx: &mut oneshot::Receiver<Outcome>) -> Option<Outcome> {
    rx.try_recv().ok()
}

fn named(n: &str) -> Target {
    Target::named(n)
}

#[test]
fn shared_locks_are_compatible_and_exclusive_conflicts_with_both() {
    let m = LockManager::default();
    let (a, b, c) = (tx("a", 1), tx("b", 2), tx("c", 3));
    granted(m.acquire(&a, named("r"), S, true));
    granted(m.acquire(&b, named("r"), S, true));
    let (_, mut rx, _) = waiting(m.acquire(&c, named("r"), X, true));
    assert!(outcome(&mut rx).is_none());
    // Without waiting, a lock that is not free is a timeout at once.
    let err = m.acquire(&tx("d", 4), named("r"), X, false).unwrap_err();
    assert!(matches!(err, Error::LockTimeout(_)), "{err}");
    // Exclusive blocks a later shared request too.
    let m = LockManager::default();
    granted(m.acquire(&a, named("r"), X, true));
    waiting(m.acquire(&b, named("r"), S, true));
    // Different resources, and the same name in another database, do not meet.
    granted(m.acquire(&c, named("other"), X, true));
    let mut elsewhere = tx("e", 5);
    elsewhere.database = "second".into();
    granted(m.acquire(&elsewhere, named("r"), X, true));
}

#[test]
fn release_serves_the_queue_in_order_granting_shared_waiters_together() {
    let m = LockManager::default();
    let holder = tx("h", 1);
    granted(m.acquire(&holder, named("r"), X, true));
    let (_, mut s1, _) = waiting(m.acquire(&tx("s1", 2), named("r"), S, true));
    let (_, mut s2, _) = waiting(m.acquire(&tx("s2", 3), named("r"), S, true));
    let (_, mut x, _) = waiting(m.acquire(&tx("x", 4), named("r"), X, true));
    let (_, mut s3, _) = waiting(m.acquire(&tx("s3", 5), named("r"), S, true));
    // s3 is compatible with s1/s2 but queued behind x: FIFO, no overtaking.
    let w = m.waiters();
    assert_eq!(w.len(), 4);
    assert_eq!(w[3].blocked_by, ["h", "x"]);
    m.release_all("h", "commit");
    assert!(matches!(outcome(&mut s1), Some(Outcome::Granted(_))));
    assert!(matches!(outcome(&mut s2), Some(Outcome::Granted(_))));
    assert!(outcome(&mut x).is_none());
    assert!(outcome(&mut s3).is_none());
    m.release_all("s1", "commit");
    assert!(outcome(&mut x).is_none(), "s2 still holds");
    m.release_all("s2", "commit");
    assert!(
        matches!(outcome(&mut x), Some(Outcome::Granted(i)) if i.mode == X && i.wait_time_ms >= 0.0)
    );
    m.release_all("x", "rollback");
    assert!(matches!(outcome(&mut s3), Some(Outcome::Granted(_))));
    m.release_all("s3", "commit");
    assert!(m.locks(None).is_empty());
    assert!(m.graph().transactions.is_empty());
}

#[test]
fn a_new_shared_request_waits_behind_a_queued_exclusive_one() {
    let m = LockManager::default();
    granted(m.acquire(&tx("a", 1), named("r"), S, true));
    waiting(m.acquire(&tx("b", 2), named("r"), X, true));
    let (_, _rx, _) = waiting(m.acquire(&tx("c", 3), named("r"), S, true));
    let c = m.locks(Some("c"));
    assert_eq!(
        c[0].blocked_by,
        ["b"],
        "waits for the exclusive request ahead"
    );
    assert_eq!(c[0].queue_position, Some(1));
}

#[test]
fn asking_again_returns_the_held_lock_and_shared_upgrades_to_exclusive() {
    let m = LockManager::default();
    let a = tx("a", 1);
    let first = granted(m.acquire(&a, named("r"), S, true));
    assert_eq!(
        granted(m.acquire(&a, named("r"), S, true)).lock_id,
        first.lock_id
    );
    // Alone: the upgrade is immediate and keeps the id.
    let up = granted(m.acquire(&a, named("r"), X, true));
    assert_eq!((up.lock_id.as_str(), up.mode), (first.lock_id.as_str(), X));
    assert_eq!(granted(m.acquire(&a, named("r"), S, true)).mode, X);
    // With another shared holder the upgrade waits ahead of newer requests.
    let m = LockManager::default();
    granted(m.acquire(&a, named("r"), S, true));
    granted(m.acquire(&tx("b", 2), named("r"), S, true));
    waiting(m.acquire(&tx("c", 3), named("r"), X, true));
    let (_, mut up, _) = waiting(m.acquire(&a, named("r"), X, true));
    m.release_all("b", "commit");
    assert!(matches!(outcome(&mut up), Some(Outcome::Granted(i)) if i.mode == X));
    assert_eq!(m.locks(Some("a")).len(), 1);
}

#[test]
fn one_request_at_a_time_per_transaction() {
    let m = LockManager::default();
    granted(m.acquire(&tx("a", 1), named("r"), X, true));
    let b = tx("b", 2);
    let _w = waiting(m.acquire(&b, named("r"), X, true));
    assert!(matches!(
        m.acquire(&b, named("q"), X, true),
        Err(Error::Conflict(_))
    ));
    assert!(m.is_waiting("b"));
}

#[test]
fn a_deadlock_fails_the_youngest_when_it_is_the_requester() {
    let m = LockManager::default();
    let (old, young) = (tx("old", 1), tx("young", 2));
    granted(m.acquire(&old, named("A"), X, true));
    granted(m.acquire(&young, named("B"), X, true));
    let (_, mut old_rx, resolved) = waiting(m.acquire(&old, named("B"), X, true));
    assert!(resolved.is_empty());
    let dl = match m.acquire(&young, named("A"), X, true).expect("acquire") {
        Acquired::Victim(dl) => dl,
        other => panic!("expected victim: {other:?}"),
    };
    assert_eq!(dl.victim_transaction, "young");
    assert_eq!(dl.transactions, ["young", "old"]);
    assert_eq!(dl.resource_graph.len(), 2);
    assert_eq!(dl.impacted_queries.len(), 2);
    assert!(!m.is_waiting("young"));
    assert_eq!(m.history().0[0].deadlock_id, dl.deadlock_id);
    // The victim's transaction ends; the survivor gets its lock.
    m.release_all("young", "deadlock victim");
    assert!(matches!(outcome(&mut old_rx), Some(Outcome::Granted(i)) if i.resource == "B"));
}

#[test]
fn a_deadlock_fails_the_youngest_when_another_closes_the_cycle() {
    let m = LockManager::default();
    let (old, young) = (tx("old", 1), tx("young", 2));
    granted(m.acquire(&old, named("A"), X, true));
    granted(m.acquire(&young, named("B"), X, true));
    let (_, mut young_rx, _) = waiting(m.acquire(&young, named("A"), X, true));
    let (_, mut old_rx, resolved) = waiting(m.acquire(&old, named("B"), X, true));
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].victim_transaction, "young");
    assert!(
        matches!(outcome(&mut young_rx), Some(Outcome::Deadlock(d)) if d.victim_transaction == "young")
    );
    assert!(outcome(&mut old_rx).is_none(), "young still holds B");
    m.release_all("young", "deadlock victim");
    assert!(matches!(outcome(&mut old_rx), Some(Outcome::Granted(_))));
}

#[test]
fn upgrade_deadlock_between_two_shared_holders_is_detected() {
    let m = LockManager::default();
    let (a, b) = (tx("a", 1), tx("b", 2));
    granted(m.acquire(&a, Target::row("t", "1"), S, true));
    granted(m.acquire(&b, Target::row("t", "1"), S, true));
    waiting(m.acquire(&a, Target::row("t", "1"), X, true));
    assert!(matches!(
        m.acquire(&b, Target::row("t", "1"), X, true).expect("acquire"),
        Acquired::Victim(d) if d.victim_transaction == "b"
    ));
}

#[test]
fn a_timed_out_request_leaves_the_queue_and_unblocks_those_behind() {
    let m = LockManager::default();
    granted(m.acquire(&tx("a", 1), named("r"), S, true));
    let (x_id, _x, _) = waiting(m.acquire(&tx("x", 2), named("r"), X, true));
    let (_, mut s, _) = waiting(m.acquire(&tx("s", 3), named("r"), S, true));
    assert!(m.cancel_wait(&x_id, "timeout"));
    assert!(!m.cancel_wait(&x_id, "timeout"), "only once");
    assert!(matches!(outcome(&mut s), Some(Outcome::Granted(_))));
}

#[test]
fn admin_release_serves_the_waiter_and_the_holder_stays_open() {
    let m = LockManager::default();
    let held = granted(m.acquire(&tx("a", 1), named("r"), X, true));
    let (_, mut w, _) = waiting(m.acquire(&tx("b", 2), named("r"), X, true));
    assert!(matches!(
        m.release("lk-999", "admin"),
        Err(Error::NotFound(_))
    ));
    assert_eq!(
        m.release(&held.lock_id, "admin")
            .expect("release")
            .transaction_id,
        "a"
    );
    assert!(matches!(outcome(&mut w), Some(Outcome::Granted(_))));
    assert!(m.locks(Some("a")).is_empty());
}

#[test]
fn the_graph_and_full_detection_see_the_waits() {
    let m = LockManager::default();
    granted(m.acquire(&tx("a", 1), named("r"), X, true));
    let _w = waiting(m.acquire(&tx("b", 2), named("r"), X, true));
    let g = m.graph();
    assert_eq!(g.transactions.len(), 2);
    assert_eq!(g.edges.len(), 1);
    assert_eq!(
        (g.edges[0].waiter.as_str(), g.edges[0].holder.as_str()),
        ("b", "a")
    );
    let (txs, edges, found) = m.detect();
    assert_eq!((txs, edges, found.len()), (2, 1, 0));
}

#[test]
fn ending_a_waiting_transaction_closes_its_request() {
    let m = LockManager::default();
    granted(m.acquire(&tx("a", 1), named("r"), X, true));
    let (_, mut rx, _) = waiting(m.acquire(&tx("b", 2), named("r"), X, true));
    m.release_all("b", "rollback");
    assert!(matches!(
        rx.try_recv(),
        Err(oneshot::error::TryRecvError::Closed)
    ));
    assert!(m.waiters().is_empty());
}
