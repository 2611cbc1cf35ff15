//! fault-inject (under construction)
