mod robustness;
mod snapshots;
mod support;
mod validation;
