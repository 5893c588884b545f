//! The wait-for graph: an edge `waiter -> holder` says the waiter's lock request cannot be served
//! before the holder releases (or, ahead in the FIFO queue, is served). A cycle is a deadlock.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::api::types::WaitForEdge;

/// A cycle through `start`, or the first cycle found from any transaction when `start` is none,
/// as its edges in order (each edge's holder is the next edge's waiter).
pub fn find_cycle(edges: &[WaitForEdge], start: Option<&str>) -> Option<Vec<WaitForEdge>> {
    let mut out: BTreeMap<&str, Vec<&WaitForEdge>> = BTreeMap::new();
    for e in edges {
        out.entry(e.waiter.as_str()).or_default().push(e);
    }
    let starts: Vec<&str> = match start {
        Some(s) => vec![s],
        None => out.keys().copied().collect(),
    };
    starts.into_iter().find_map(|s| cycle_through(&out, s))
}

/// Depth-first search for a path from `start` back to itself. Each transaction is expanded at
/// most once, so the search is linear in the graph's size.
fn cycle_through(out: &BTreeMap<&str, Vec<&WaitForEdge>>, start: &str) -> Option<Vec<WaitForEdge>> {
    let mut expanded = std::collections::HashSet::new();
    // The path so far as (edge taken into the node, node, next outgoing edge to try).
    let mut stack: Vec<(Option<&WaitForEdge>, &str, usize)> = vec![(None, start, 0)];
    expanded.insert(start);
    while let Some((_, node, next)) = stack.last_mut() {
        let Some(edge) = out.get(*node).and_then(|es| es.get(*next)).copied() else {
            stack.pop();
            continue;
        };
        *next += 1;
        if edge.holder == start {
            let mut cycle: Vec<WaitForEdge> =
                stack.iter().filter_map(|(e, _, _)| e.cloned()).collect();
            cycle.push(edge.clone());
            return Some(cycle);
        }
        if expanded.insert(edge.holder.as_str()) {
            stack.push((Some(edge), edge.holder.as_str(), 0));
        }
    }
    None
}

/// The victim of a cycle: its youngest transaction (latest start, then highest id). The oldest
/// transaction of a cycle always survives, so the oldest transaction waiting anywhere is never a
/// victim and always makes progress (no livelock between retries), and the youngest has usually
/// done the least work to undo.
pub fn choose_victim(cycle: &[(String, DateTime<Utc>)]) -> Option<&str> {
    cycle
        .iter()
        .max_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)))
        .map(|(id, _)| id.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::types::{LockMode, LockState, LockType};

    fn edge(waiter: &str, holder: &str) -> WaitForEdge {
        WaitForEdge {
            waiter: waiter.into(),
            holder: holder.into(),
            database: "default".into(),
            lock_type: LockType::Named,
            resource: format!("{holder}-res"),
            waiter_mode: LockMode::Exclusive,
            holder_mode: LockMode::Exclusive,
            holder_state: LockState::Granted,
        }
    }

    fn waiters(cycle: &[WaitForEdge]) -> Vec<&str> {
        cycle.iter().map(|e| e.waiter.as_str()).collect()
    }

    #[test]
    fn a_chain_is_not_a_cycle() {
        let edges = [edge("a", "b"), edge("b", "c")];
        assert!(find_cycle(&edges, None).is_none());
        assert!(find_cycle(&edges, Some("a")).is_none());
    }

    #[test]
    fn two_and_three_party_cycles_are_found_in_order() {
        let edges = [edge("a", "b"), edge("b", "a")];
        assert_eq!(waiters(&find_cycle(&edges, Some("b")).unwrap()), ["b", "a"]);
        let edges = [
            edge("x", "a"),
            edge("a", "b"),
            edge("b", "c"),
            edge("c", "a"),
        ];
        let cycle = find_cycle(&edges, Some("a")).unwrap();
        assert_eq!(waiters(&cycle), ["a", "b", "c"]);
        assert_eq!(cycle[2].holder, "a");
        // `x` waits on the cycle but is not in it.
        assert!(find_cycle(&edges, Some("x")).is_none());
        assert_eq!(find_cycle(&edges, None).unwrap().len(), 3);
    }

    #[test]
    fn a_cycle_elsewhere_is_not_through_the_start() {
        let edges = [edge("a", "b"), edge("b", "c"), edge("c", "b")];
        assert!(find_cycle(&edges, Some("a")).is_none());
        assert_eq!(waiters(&find_cycle(&edges, None).unwrap()), ["b", "c"]);
    }

    #[test]
    fn the_youngest_transaction_is_the_victim() {
        let t = |s: i64| DateTime::from_timestamp(s, 0).unwrap();
        let cycle = [
            ("old".to_string(), t(10)),
            ("young".into(), t(30)),
            ("mid".into(), t(20)),
        ];
        assert_eq!(choose_victim(&cycle), Some("young"));
        // Same start: the higher id, so the choice is deterministic.
        let tie = [("b".to_string(), t(1)), ("a".into(), t(1))];
        assert_eq!(choose_victim(&tie), Some("b"));
        assert_eq!(choose_victim(&[]), None);
    }
}
