//! openraft's own storage test suite (`openraft::testing::Suite::test_all`, 35 cases),
//! unmodified, over the raftwal log store and the key-value state machine on real temporary
//! directories.

use openraft::testing::{StoreBuilder, Suite};
use openraft::StorageError;
use raftwal_openraft::{KvConfig, KvStateMachine, WalLogStore};

struct Builder;

impl StoreBuilder<KvConfig, WalLogStore<KvConfig>, KvStateMachine, tempfile::TempDir> for Builder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, WalLogStore<KvConfig>, KvStateMachine), StorageError<u64>> {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let opts = raftwal::Options::default().with_segment_size(1 << 20);
        let log = WalLogStore::open(dir.path().join("log"), opts).expect("opening the log store");
        let sm = KvStateMachine::open(dir.path().join("sm")).expect("opening the state machine");
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite_passes() {
    if let Err(e) = Suite::test_all(Builder) {
        panic!("openraft's storage suite failed: {e}");
    }
}
