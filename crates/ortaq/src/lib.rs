//! Helpers of the `ortaq` binary that its benchmarks and tests share: running real node
//! processes (not in-process servers), so crashes, signals and memory are those of the product.

pub mod process;
