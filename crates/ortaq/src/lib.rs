//! The `ortaq` binary's library half is empty on purpose: what its benchmarks and tests share
//! (running nodes in-process or as child processes) lives in the `host` crate.
