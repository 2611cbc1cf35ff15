//! raft-core (under construction)
