//! The benchmark workload (to come).
