//! The codegen crate's own tests, one binary: snapshots of every artifact for the fixture schemas
//! under `tests/fixtures/`, one test per validation rule, and robustness against bad input.

mod suite;
