//! Benchmarks of the raftwal WAL: see `benches/`.
