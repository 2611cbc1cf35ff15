//! The in-process cluster (to come).
