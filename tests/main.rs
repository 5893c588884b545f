//! Integration and contract tests, one binary with modules (one link instead of many).

mod support;

mod drift;
mod health;
mod serve;
mod surface;
mod system;
