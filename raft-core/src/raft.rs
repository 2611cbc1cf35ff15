//! [`Raft`]: the sans-IO state machine of one node.
//!
//! Inputs: [`Raft::tick`], [`Raft::step`], [`Raft::propose`], [`Raft::snapshot`]. Each input
//! changes the in-memory state, then persists what changed ([`Raft::persist`]) before it
//! returns; only then do the messages it produced become available through
//! [`Raft::take_messages`]. So nothing leaves the node that depends on state not yet durable
//! (Figure 2: "respond to RPCs only after updating stable storage"). A persistence failure is
//! fatal: the node drops the messages and stops.

use raftwal::{Entry, HardState, SnapshotMeta};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::apply::Apply;
use crate::config::Config;
use crate::error::{Error, Result, StorageError};
use crate::log::RaftLog;
use crate::message::{
    AppendEntries, AppendEntriesReply, Conflict, Envelope, InstallSnapshot, InstallSnapshotReply,
    Message, RequestVote, RequestVoteReply,
};
use crate::pending::{LogOp, Pending};
use crate::storage::Storage;

/// A node's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Follows a leader (or waits for one).
    Follower,
    /// Asks for votes.
    Candidate,
    /// Replicates its log.
    Leader,
}

/// One input of [`Raft::handle_batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A tick of time.
    Tick,
    /// A message addressed to this node.
    Message(Envelope),
    /// A client's command (the lab's `Start`).
    Propose(Vec<u8>),
}

/// The leader's view of one follower.
#[derive(Debug, Clone, Copy, Default)]
struct Progress {
    /// Next index to send (Figure 2's nextIndex).
    next: u64,
    /// Highest index known replicated (matchIndex).
    matched: u64,
    /// Highest index already sent and not known lost (pipelining: new entries are sent from
    /// here instead of from `next`).
    sent: u64,
}

/// Counters of one node's work since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// `persist()` calls that wrote something.
    pub persists: u64,
    /// Entries written to storage.
    pub entries_persisted: u64,
    /// Hard-state writes.
    pub hard_state_writes: u64,
    /// Elections started.
    pub elections: u64,
}

/// One Raft node over storage `S`.
pub struct Raft<S: Storage> {
    cfg: Config,
    storage: S,
    rng: StdRng,
    term: u64,
    vote: Option<u64>,
    log: RaftLog,
    snapshot_data: Vec<u8>,
    role: Role,
    leader: Option<u64>,
    commit: u64,
    applied: u64,
    election_elapsed: u32,
    election_timeout: u32,
    heartbeat_elapsed: u32,
    votes: Vec<bool>,
    progress: Vec<Progress>,
    outbox: Vec<Envelope>,
    applies: Vec<Apply>,
    pending: Pending,
    fatal: Option<String>,
    stats: NodeStats,
}

impl<S: Storage> Raft<S> {
    /// Starts a node on `storage`, rebuilding term, vote, snapshot and log from what it holds
    /// (the lab's `readPersist`; fresh storage gives a fresh node). When a snapshot is found
    /// it is the first item of the apply stream.
    pub fn new(cfg: Config, mut storage: S) -> Result<Self> {
        cfg.validate()?;
        let node = cfg.id;
        let state = storage.read_persist().map_err(|source| Error::Storage {
            node,
            op: "read_persist",
            source,
        })?;
        let inconsistent = |reason: String| Error::Inconsistent { node, reason };
        if let Some(v) = state.hard_state.vote {
            if v >= cfg.cluster_size as u64 {
                return Err(inconsistent(format!("vote for unknown node {v}")));
            }
        }
        let (base, snapshot_data) = match state.snapshot {
            Some((meta, data)) => (meta, data),
            None => (SnapshotMeta::default(), Vec::new()),
        };
        let log = RaftLog::from_parts(base, state.entries).map_err(inconsistent)?;
        if log.last_term() > state.hard_state.term {
            return Err(inconsistent(format!(
                "last log term {} is above the current term {}",
                log.last_term(),
                state.hard_state.term
            )));
        }
        let n = cfg.cluster_size;
        let mut rng = StdRng::seed_from_u64(cfg.seed);
        let election_timeout = rng.gen_range(cfg.election_ticks.0..cfg.election_ticks.1);
        let mut applies = Vec::new();
        if base.index > 0 {
            applies.push(Apply::Snapshot {
                index: base.index,
                term: base.term,
                data: snapshot_data.clone(),
            });
        }
        Ok(Raft {
            storage,
            rng,
            term: state.hard_state.term,
            vote: state.hard_state.vote,
            log,
            snapshot_data,
            role: Role::Follower,
            leader: None,
            commit: base.index,
            applied: base.index,
            election_elapsed: 0,
            election_timeout,
            heartbeat_elapsed: 0,
            votes: vec![false; n],
            progress: vec![Progress::default(); n],
            outbox: Vec::new(),
            applies,
            pending: Pending::default(),
            fatal: None,
            stats: NodeStats::default(),
            cfg,
        })
    }

    // ----- queries -----

    /// This node's id.
    pub fn id(&self) -> u64 {
        self.cfg.id
    }
    /// Current term.
    pub fn term(&self) -> u64 {
        self.term
    }
    /// Current role.
    pub fn role(&self) -> Role {
        self.role
    }
    /// True when this node believes it is the leader.
    pub fn is_leader(&self) -> bool {
        self.role == Role::Leader
    }
    /// The lab's `GetState`: (term, is_leader).
    pub fn state(&self) -> (u64, bool) {
        (self.term, self.is_leader())
    }
    /// The leader this node last heard from in its current term.
    pub fn leader_hint(&self) -> Option<u64> {
        self.leader
    }
    /// Commit index.
    pub fn commit_index(&self) -> u64 {
        self.commit
    }
    /// Last index handed to the apply stream.
    pub fn last_applied(&self) -> u64 {
        self.applied
    }
    /// The in-memory log.
    pub fn log(&self) -> &RaftLog {
        &self.log
    }
    /// Bytes of the persisted log (see [`RaftLog::size_bytes`]).
    pub fn log_size_bytes(&self) -> usize {
        self.log.size_bytes()
    }
    /// The vote cast in the current term, if any (the node itself when it campaigned).
    pub fn voted_for(&self) -> Option<u64> {
        self.vote
    }
    /// The storage.
    pub fn storage(&self) -> &S {
        &self.storage
    }
    /// The storage, mutably (the simulator drains its journal of log writes).
    pub(crate) fn storage_mut(&mut self) -> &mut S {
        &mut self.storage
    }
    /// Stops the node (as a crash would) and gives its storage back.
    pub fn into_storage(self) -> S {
        self.storage
    }
    /// Counters.
    pub fn stats(&self) -> NodeStats {
        self.stats
    }
    /// The fatal error that stopped this node, if any.
    pub fn fatal_error(&self) -> Option<&str> {
        self.fatal.as_deref()
    }

    /// Messages produced by the inputs so far, all depending only on durable state.
    pub fn take_messages(&mut self) -> Vec<Envelope> {
        std::mem::take(&mut self.outbox)
    }

    /// Committed commands and snapshots to apply, in order.
    pub fn take_applies(&mut self) -> Vec<Apply> {
        std::mem::take(&mut self.applies)
    }

    // ----- inputs -----

    /// One tick of time: maybe start an election, maybe send heartbeats.
    pub fn tick(&mut self) -> Result<()> {
        self.alive()?;
        self.on_tick();
        self.persist()
    }

    fn on_tick(&mut self) {
        if self.role == Role::Leader {
            self.heartbeat_elapsed += 1;
            if self.heartbeat_elapsed >= self.cfg.heartbeat_ticks {
                self.heartbeat_elapsed = 0;
                self.broadcast_append();
            }
        } else {
            self.election_elapsed += 1;
            if self.election_elapsed >= self.election_timeout {
                self.campaign();
            }
        }
    }

    /// Handles one message addressed to this node.
    pub fn step(&mut self, env: Envelope) -> Result<()> {
        self.alive()?;
        self.on_message(env)?;
        self.persist()
    }

    fn on_message(&mut self, env: Envelope) -> Result<()> {
        let n = self.cfg.cluster_size as u64;
        if env.from >= n || env.from == self.cfg.id {
            return Err(Error::UnknownPeer {
                node: self.cfg.id,
                peer: env.from,
                cluster_size: self.cfg.cluster_size,
            });
        }
        if env.msg.term() > self.term {
            self.become_follower(env.msg.term(), None);
        }
        let from = env.from;
        match env.msg {
            Message::RequestVote(m) => self.on_request_vote(from, m),
            Message::RequestVoteReply(m) => self.on_vote_reply(from, m),
            Message::AppendEntries(m) => self.on_append(from, m),
            Message::AppendEntriesReply(m) => self.on_append_reply(from, m),
            Message::InstallSnapshot(m) => self.on_install_snapshot(from, m),
            Message::InstallSnapshotReply(m) => self.on_snapshot_reply(from, m),
        }
        Ok(())
    }

    /// The lab's `Start`: appends `command` if this node is the leader and returns its
    /// (index, term); `None` when not the leader.
    pub fn propose(&mut self, command: Vec<u8>) -> Result<Option<(u64, u64)>> {
        self.alive()?;
        let at = self.on_propose(command);
        self.persist()?;
        Ok(at)
    }

    /// Group commit: handles `inputs` in order and persists once at the end, so a burst of
    /// messages and proposals costs one sync. As with single inputs, nothing they produce
    /// (messages, applies) is available before that persist has returned. Returns each
    /// proposal's (index, term), `None` when this node was not the leader. A message from an
    /// unknown peer is skipped.
    pub fn handle_batch(&mut self, inputs: Vec<Input>) -> Result<Vec<Option<(u64, u64)>>> {
        self.alive()?;
        let mut proposals = Vec::new();
        for input in inputs {
            match input {
                Input::Tick => self.on_tick(),
                Input::Message(env) => {
                    if let Err(e) = self.on_message(env) {
                        tracing::warn!(node = self.cfg.id, "dropped a message: {e}");
                    }
                }
                Input::Propose(command) => proposals.push(self.on_propose(command)),
            }
        }
        self.persist()?;
        Ok(proposals)
    }

    fn on_propose(&mut self, command: Vec<u8>) -> Option<(u64, u64)> {
        if self.role != Role::Leader {
            return None;
        }
        let entry = Entry {
            index: self.log.last_index() + 1,
            term: self.term,
            data: command,
        };
        let at = (entry.index, entry.term);
        self.append_local(entry);
        let me = self.cfg.id as usize;
        self.progress[me].matched = self.log.last_index();
        if self.cfg.cluster_size == 1 {
            self.advance_commit();
        }
        // Send now only to followers with nothing in flight; the others get the new entries
        // in one batch when their outstanding AppendEntries is answered (or at the next
        // heartbeat if it was lost).
        for peer in self.peers() {
            let p = self.progress[peer as usize];
            if p.sent <= p.matched {
                self.send_new(peer);
            }
        }
        Some(at)
    }

    /// The service has a snapshot covering everything through `index` (which it has
    /// applied): compact the log up to it.
    pub fn snapshot(&mut self, index: u64, data: Vec<u8>) -> Result<()> {
        self.alive()?;
        if index <= self.log.base().index {
            return Ok(());
        }
        if index > self.applied {
            return Err(Error::SnapshotAhead {
                node: self.cfg.id,
                index,
                applied: self.applied,
            });
        }
        let Some(term) = self.log.term(index) else {
            return Ok(());
        };
        let meta = SnapshotMeta { index, term };
        self.log.install(meta);
        self.snapshot_data = data.clone();
        self.pending.snapshot(meta, data);
        self.persist()
    }

    // ----- persistence -----

    /// Writes what changed since the last call — the hard state, then the log changes in the
    /// order they were made — and syncs. Every input calls it before returning.
    pub fn persist(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        match self.write_pending() {
            Ok(()) => Ok(()),
            Err((op, source)) => {
                let err = Error::Storage {
                    node: self.cfg.id,
                    op,
                    source,
                };
                tracing::error!(node = self.cfg.id, "stopping: {err}");
                self.fatal = Some(err.to_string());
                self.outbox.clear();
                self.applies.clear();
                Err(err)
            }
        }
    }

    fn write_pending(&mut self) -> std::result::Result<(), (&'static str, StorageError)> {
        self.stats.persists += 1;
        if std::mem::take(&mut self.pending.hard_state) {
            let hs = HardState {
                term: self.term,
                // Planted bug: the vote never reaches storage.
                vote: self.vote.filter(|_| !self.cfg.bugs.unpersisted_vote),
            };
            self.storage
                .set_hard_state(hs)
                .map_err(|e| ("set_hard_state", e))?;
            self.stats.hard_state_writes += 1;
        }
        let mut unsynced = false;
        // Planted bug: appends are never synced here.
        let sync = !self.cfg.bugs.no_sync_after_append;
        for op in std::mem::take(&mut self.pending.ops) {
            match op {
                LogOp::Append(entries) => {
                    self.storage.append(&entries).map_err(|e| ("append", e))?;
                    self.stats.entries_persisted += entries.len() as u64;
                    unsynced = sync;
                }
                LogOp::Truncate(from) => {
                    if unsynced {
                        self.storage.sync().map_err(|e| ("sync", e))?;
                        unsynced = false;
                    }
                    if from <= self.storage.last_index() {
                        self.storage
                            .truncate_suffix(from)
                            .map_err(|e| ("truncate_suffix", e))?;
                    }
                }
                LogOp::Snapshot(meta, data) => {
                    if unsynced {
                        self.storage.sync().map_err(|e| ("sync", e))?;
                        unsynced = false;
                    }
                    self.storage
                        .save_snapshot(meta, &data)
                        .map_err(|e| ("save_snapshot", e))?;
                }
            }
        }
        if unsynced {
            self.storage.sync().map_err(|e| ("sync", e))?;
        }
        Ok(())
    }

    fn alive(&self) -> Result<()> {
        match &self.fatal {
            Some(cause) => Err(Error::Stopped {
                node: self.cfg.id,
                cause: cause.clone(),
            }),
            None => Ok(()),
        }
    }

    // ----- state changes -----

    fn peers(&self) -> impl Iterator<Item = u64> {
        let me = self.cfg.id;
        (0..self.cfg.cluster_size as u64).filter(move |&p| p != me)
    }

    fn send(&mut self, to: u64, msg: Message) {
        self.outbox.push(Envelope {
            from: self.cfg.id,
            to,
            msg,
        });
    }

    fn append_local(&mut self, entry: Entry) {
        self.pending.append(entry.clone());
        self.log.push(entry);
    }

    fn set_hard_state(&mut self, term: u64, vote: Option<u64>) {
        if term != self.term || vote != self.vote {
            self.term = term;
            self.vote = vote;
            self.pending.hard_state = true;
        }
    }

    fn reset_election_timer(&mut self) {
        self.election_elapsed = 0;
        self.election_timeout = self
            .rng
            .gen_range(self.cfg.election_ticks.0..self.cfg.election_ticks.1);
    }

    fn become_follower(&mut self, term: u64, leader: Option<u64>) {
        if term > self.term {
            self.set_hard_state(term, None);
        }
        if self.role != Role::Follower {
            self.role = Role::Follower;
            self.reset_election_timer();
        }
        self.leader = leader;
    }

    fn campaign(&mut self) {
        self.stats.elections += 1;
        self.role = Role::Candidate;
        self.leader = None;
        let me = self.cfg.id;
        self.set_hard_state(self.term + 1, Some(me));
        self.reset_election_timer();
        self.votes.iter_mut().for_each(|v| *v = false);
        self.votes[me as usize] = true;
        if self.has_majority_votes() {
            self.become_leader();
            return;
        }
        let rv = RequestVote {
            term: self.term,
            last_log_index: self.log.last_index(),
            last_log_term: self.log.last_term(),
        };
        for peer in self.peers() {
            self.send(peer, Message::RequestVote(rv.clone()));
        }
    }

    fn has_majority_votes(&self) -> bool {
        self.votes.iter().filter(|&&v| v).count() * 2 > self.cfg.cluster_size
    }

    fn become_leader(&mut self) {
        self.role = Role::Leader;
        self.leader = Some(self.cfg.id);
        self.heartbeat_elapsed = 0;
        let last = self.log.last_index();
        for p in self.progress.iter_mut() {
            *p = Progress {
                next: last + 1,
                matched: 0,
                sent: last,
            };
        }
        if self.cfg.leader_noop {
            // Sent to every follower by the broadcast below (from `next`, which is its index).
            self.append_local(Entry {
                index: last + 1,
                term: self.term,
                data: Vec::new(),
            });
        }
        self.progress[self.cfg.id as usize].matched = self.log.last_index();
        tracing::debug!(node = self.cfg.id, term = self.term, "became leader");
        if self.cfg.cluster_size == 1 {
            self.advance_commit();
        }
        self.broadcast_append();
    }

    fn on_request_vote(&mut self, from: u64, m: RequestVote) {
        let up_to_date =
            (m.last_log_term, m.last_log_index) >= (self.log.last_term(), self.log.last_index());
        let granted =
            m.term == self.term && (self.vote.is_none() || self.vote == Some(from)) && up_to_date;
        if granted {
            self.set_hard_state(self.term, Some(from));
            self.reset_election_timer();
        }
        let reply = RequestVoteReply {
            term: self.term,
            req_term: m.term,
            granted,
        };
        self.send(from, Message::RequestVoteReply(reply));
    }

    fn on_vote_reply(&mut self, from: u64, m: RequestVoteReply) {
        if self.role != Role::Candidate || m.req_term != self.term || !m.granted {
            return;
        }
        self.votes[from as usize] = true;
        if self.has_majority_votes() {
            self.become_leader();
        }
    }

    fn on_append(&mut self, from: u64, m: AppendEntries) {
        let mut reply = AppendEntriesReply {
            term: self.term,
            req_term: m.term,
            success: false,
            match_index: 0,
            conflict: Conflict::default(),
        };
        if m.term < self.term {
            self.send(from, Message::AppendEntriesReply(reply));
            return;
        }
        self.become_follower(m.term, Some(from));
        self.reset_election_timer();

        let base = self.log.base();
        let last_new = m.prev_log_index + m.entries.len() as u64;
        // Entries at or below the base are covered by our snapshot (committed): skip them.
        let (prev, prev_term, entries) = if m.prev_log_index < base.index {
            let skip = (base.index - m.prev_log_index) as usize;
            if skip >= m.entries.len() {
                reply.success = true;
                reply.match_index = last_new;
                self.send(from, Message::AppendEntriesReply(reply));
                return;
            }
            (base.index, base.term, &m.entries[skip..])
        } else {
            (m.prev_log_index, m.prev_log_term, &m.entries[..])
        };
        if prev > self.log.last_index() {
            reply.conflict = Conflict {
                x_term: None,
                x_index: 0,
                x_len: self.log.last_index() + 1,
            };
            self.send(from, Message::AppendEntriesReply(reply));
            return;
        }
        match self.log.term(prev) {
            Some(t) if t == prev_term || prev == base.index => {}
            other => {
                reply.conflict = Conflict {
                    x_term: other,
                    x_index: self.log.first_index_of_term_at(prev),
                    x_len: self.log.last_index() + 1,
                };
                self.send(from, Message::AppendEntriesReply(reply));
                return;
            }
        }
        // Append what is new; truncate only where an entry really conflicts, so a stale
        // (reordered) AppendEntries never removes entries.
        for (k, e) in entries.iter().enumerate() {
            match self.log.term(e.index) {
                Some(t) if t == e.term => continue,
                Some(_) => {
                    if e.index <= self.commit {
                        tracing::error!(
                            node = self.cfg.id,
                            index = e.index,
                            commit = self.commit,
                            "leader sent a conflicting entry at a committed index"
                        );
                        debug_assert!(false, "conflict at committed index {}", e.index);
                        return;
                    }
                    self.log.truncate_from(e.index);
                    self.pending.truncate(e.index);
                }
                None => {}
            }
            for e in &entries[k..] {
                self.append_local(e.clone());
            }
            break;
        }
        let new_commit = m.leader_commit.min(last_new);
        if new_commit > self.commit {
            self.commit = new_commit.min(self.log.last_index());
            self.apply_committed();
        }
        reply.success = true;
        reply.match_index = last_new;
        self.send(from, Message::AppendEntriesReply(reply));
    }

    fn on_append_reply(&mut self, from: u64, m: AppendEntriesReply) {
        if self.role != Role::Leader || m.req_term != self.term {
            return;
        }
        let last = self.log.last_index();
        let p = &mut self.progress[from as usize];
        if m.success {
            p.matched = p.matched.max(m.match_index.min(last));
            p.next = p.next.max(p.matched + 1);
            p.sent = p.sent.max(p.matched);
            self.advance_commit();
            self.send_new(from);
        } else {
            let c = m.conflict;
            let hint = match c.x_term {
                Some(t) => match self.log.last_index_of_term(t) {
                    Some(i) => i + 1,
                    None => c.x_index,
                },
                None => c.x_len,
            };
            let p = &mut self.progress[from as usize];
            p.next = hint.max(p.matched + 1).min(last + 1).max(1);
            p.sent = p.next - 1;
            self.send_append(from);
        }
    }

    fn on_install_snapshot(&mut self, from: u64, m: InstallSnapshot) {
        let reply = InstallSnapshotReply {
            term: self.term,
            req_term: m.term,
            last_included_index: m.meta.index,
        };
        if m.term < self.term {
            self.send(from, Message::InstallSnapshotReply(reply));
            return;
        }
        self.become_follower(m.term, Some(from));
        self.reset_election_timer();
        if m.meta.index > self.commit && m.meta.index > self.log.base().index {
            self.log.install(m.meta);
            self.snapshot_data = m.data.clone();
            self.commit = m.meta.index;
            self.applied = m.meta.index;
            self.applies.push(Apply::Snapshot {
                index: m.meta.index,
                term: m.meta.term,
                data: m.data.clone(),
            });
            self.pending.snapshot(m.meta, m.data);
        }
        self.send(from, Message::InstallSnapshotReply(reply));
    }

    fn on_snapshot_reply(&mut self, from: u64, m: InstallSnapshotReply) {
        if self.role != Role::Leader || m.req_term != self.term {
            return;
        }
        let last = self.log.last_index();
        let p = &mut self.progress[from as usize];
        p.matched = p.matched.max(m.last_included_index.min(last));
        p.next = p.next.max(p.matched + 1);
        p.sent = p.sent.max(p.matched);
        self.advance_commit();
        self.send_new(from);
    }

    /// Figure 8: commit the highest index a majority holds, but only if it is of the current
    /// term (earlier terms' entries are committed indirectly).
    fn advance_commit(&mut self) {
        let mut matched: Vec<u64> = self.progress.iter().map(|p| p.matched).collect();
        matched.sort_unstable_by(|a, b| b.cmp(a));
        let majority = matched[self.cfg.cluster_size / 2];
        let current_term = self.log.term(majority) == Some(self.term);
        // Planted bug: without the term condition an earlier term's entry is committed by
        // counting replicas (Figure 8).
        if majority > self.commit && (current_term || self.cfg.bugs.figure8_commit) {
            self.commit = majority;
            self.apply_committed();
        }
    }

    fn apply_committed(&mut self) {
        while self.applied < self.commit {
            let index = self.applied + 1;
            let Some(e) = self.log.entry(index) else {
                break;
            };
            self.applies.push(Apply::Command {
                index,
                term: e.term,
                data: e.data.clone(),
            });
            self.applied = index;
        }
    }

    fn broadcast_append(&mut self) {
        for peer in self.peers() {
            self.send_append(peer);
        }
    }

    /// Sends entries not sent yet (pipelined after what is in flight), if any.
    fn send_new(&mut self, peer: u64) {
        let p = self.progress[peer as usize];
        if p.sent < self.log.last_index() {
            let from = p.next.max(p.sent + 1);
            self.send_append_from(peer, from);
        }
    }

    /// Sends from `next` (a heartbeat, or a retry after a rejection).
    fn send_append(&mut self, peer: u64) {
        let next = self.progress[peer as usize].next;
        self.send_append_from(peer, next);
    }

    fn send_append_from(&mut self, peer: u64, from: u64) {
        let base = self.log.base();
        if from <= base.index {
            let msg = InstallSnapshot {
                term: self.term,
                meta: base,
                data: self.snapshot_data.clone(),
            };
            let p = &mut self.progress[peer as usize];
            p.sent = p.sent.max(base.index);
            self.send(peer, Message::InstallSnapshot(msg));
            return;
        }
        let prev = from - 1;
        let Some(prev_log_term) = self.log.term(prev) else {
            return;
        };
        let hi = from.saturating_add(self.cfg.max_entries_per_message as u64);
        let entries = self.log.slice(from, hi).to_vec();
        let p = &mut self.progress[peer as usize];
        p.sent = p.sent.max(prev + entries.len() as u64);
        let msg = AppendEntries {
            term: self.term,
            prev_log_index: prev,
            prev_log_term,
            entries,
            leader_commit: self.commit,
        };
        self.send(peer, Message::AppendEntries(msg));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::StorageError;
    use crate::mem_storage::MemStorage;
    use crate::storage::PersistentState;

    fn ent(index: u64, term: u64) -> Entry {
        Entry {
            index,
            term,
            data: vec![index as u8],
        }
    }

    /// Node `id` of 3 restarted on storage holding `term` and `entries`.
    fn node(id: u64, term: u64, entries: Vec<Entry>) -> Raft<MemStorage> {
        let mut s = MemStorage::new();
        s.set_hard_state(HardState { term, vote: None }).unwrap();
        s.append(&entries).unwrap();
        Raft::new(Config::new(id, 3, 9), s).unwrap()
    }

    fn leader(term_before: u64, entries: Vec<Entry>) -> Raft<MemStorage> {
        elect(node(0, term_before, entries))
    }

    /// Node 0 of 3, elected with node 1's vote; its first messages are dropped.
    fn elect(mut r: Raft<MemStorage>) -> Raft<MemStorage> {
        while r.role() != Role::Candidate {
            r.tick().unwrap();
        }
        let term = r.term();
        r.step(Envelope {
            from: 1,
            to: 0,
            msg: Message::RequestVoteReply(RequestVoteReply {
                term,
                req_term: term,
                granted: true,
            }),
        })
        .unwrap();
        assert!(r.is_leader());
        r.take_messages();
        r
    }

    fn append(term: u64, prev: (u64, u64), entries: Vec<Entry>, commit: u64) -> Envelope {
        Envelope {
            from: 0,
            to: 1,
            msg: Message::AppendEntries(AppendEntries {
                term,
                prev_log_index: prev.0,
                prev_log_term: prev.1,
                entries,
                leader_commit: commit,
            }),
        }
    }

    fn ae_reply(term: u64, req_term: u64, match_index: u64) -> Envelope {
        Envelope {
            from: 1,
            to: 0,
            msg: Message::AppendEntriesReply(AppendEntriesReply {
                term,
                req_term,
                success: true,
                match_index,
                conflict: Conflict::default(),
            }),
        }
    }

    #[test]
    fn a_stale_append_entries_never_truncates() {
        let mut f = node(1, 1, vec![]);
        f.step(append(1, (0, 0), vec![ent(1, 1), ent(2, 1), ent(3, 1)], 0))
            .unwrap();
        // The same leader's earlier message, delivered late.
        f.step(append(1, (0, 0), vec![ent(1, 1)], 0)).unwrap();
        assert_eq!(f.log().last_index(), 3);
        let replies = f.take_messages();
        let Some(Message::AppendEntriesReply(r)) = replies.last().map(|e| &e.msg) else {
            panic!("no reply");
        };
        assert!(r.success);
        assert_eq!(r.match_index, 1);
    }

    #[test]
    fn a_real_conflict_truncates_and_is_persisted() {
        let store = MemStorage::new();
        let mut f = Raft::new(Config::new(1, 3, 1), store.clone()).unwrap();
        f.step(append(1, (0, 0), vec![ent(1, 1), ent(2, 1), ent(3, 1)], 0))
            .unwrap();
        f.step(append(2, (1, 1), vec![ent(2, 2)], 0)).unwrap();
        assert_eq!(f.log().last_index(), 2);
        assert_eq!(f.log().term(2), Some(2));
        let mut again = store;
        let st: PersistentState = again.read_persist().unwrap();
        assert_eq!(st.entries, vec![ent(1, 1), ent(2, 2)]);
        assert_eq!(st.hard_state.term, 2);
    }

    #[test]
    fn commit_index_is_min_of_leader_commit_and_last_new_entry() {
        // The follower holds 1..=3 from term 1 but the leader only vouches for 1.
        let mut f = node(1, 1, vec![ent(1, 1), ent(2, 1), ent(3, 1)]);
        f.step(append(1, (1, 1), vec![], 3)).unwrap();
        assert_eq!(f.commit_index(), 1);
        f.step(append(1, (3, 1), vec![], 3)).unwrap();
        assert_eq!(f.commit_index(), 3);
    }

    #[test]
    fn a_reply_to_an_earlier_terms_request_is_dropped() {
        let mut l = leader(2, vec![ent(1, 1)]);
        let term = l.term();
        l.propose(b"x".to_vec()).unwrap();
        // A success from the previous term claiming index 2: must not count.
        l.step(ae_reply(term, term - 1, 2)).unwrap();
        assert_eq!(l.commit_index(), 0);
        l.step(ae_reply(term, term, 2)).unwrap();
        assert_eq!(l.commit_index(), 2);
    }

    #[test]
    fn figure8_old_term_entries_are_not_committed_by_counting() {
        let mut l = leader(2, vec![ent(1, 1), ent(2, 2)]);
        let term = l.term();
        assert_eq!(term, 3);
        l.step(ae_reply(term, term, 2)).unwrap();
        assert_eq!(l.commit_index(), 0, "index 2 is from term 2: not committed");
        let (i, _) = l.propose(b"x".to_vec()).unwrap().unwrap();
        l.step(ae_reply(term, term, i)).unwrap();
        assert_eq!(
            l.commit_index(),
            3,
            "committing 3 commits 1 and 2 indirectly"
        );
        let applied: Vec<u64> = l.take_applies().iter().map(Apply::index).collect();
        assert_eq!(applied, vec![1, 2, 3]);
    }

    #[test]
    fn leader_noop_commits_an_earlier_terms_entry_without_a_proposal() {
        let entries = vec![ent(1, 1), ent(2, 1)];
        let mut s = MemStorage::new();
        s.set_hard_state(HardState {
            term: 1,
            vote: None,
        })
        .unwrap();
        s.append(&entries).unwrap();
        let mut cfg = Config::new(0, 3, 9);
        cfg.leader_noop = true;
        let mut l = elect(Raft::new(cfg, s).unwrap());
        let term = l.term();
        assert_eq!(l.log().last_index(), 3);
        assert_eq!(l.log().term(3), Some(term));
        // Node 1 already holds 1 and 2 (the previous leader committed them but fell silent
        // before telling anyone). The heartbeat after the election carries the no-op...
        l.tick_until_heartbeat();
        let out = l.take_messages();
        let Some(Message::AppendEntries(ae)) = out.iter().find(|e| e.to == 1).map(|e| &e.msg)
        else {
            panic!("no AppendEntries to node 1: {out:?}");
        };
        assert_eq!((ae.prev_log_index, ae.prev_log_term), (2, 1));
        assert_eq!(ae.entries.len(), 1);
        assert!(ae.entries[0].data.is_empty());
        // ...and its acknowledgement commits everything, with no client proposal.
        l.step(ae_reply(term, term, 3)).unwrap();
        assert_eq!(l.commit_index(), 3);
        let applied: Vec<u64> = l.take_applies().iter().map(Apply::index).collect();
        assert_eq!(applied, vec![1, 2, 3]);
        // Without the option the same leader can commit nothing until a proposal.
        let mut plain = leader(1, entries);
        let term = plain.term();
        plain.step(ae_reply(term, term, 2)).unwrap();
        assert_eq!(plain.commit_index(), 0);
    }

    impl Raft<MemStorage> {
        fn tick_until_heartbeat(&mut self) {
            for _ in 0..self.cfg.heartbeat_ticks {
                self.tick().unwrap();
            }
        }
    }

    #[test]
    fn fast_backup_skips_a_whole_conflicting_term() {
        let mut l = leader(3, vec![ent(1, 1), ent(2, 3), ent(3, 3)]);
        let term = l.term();
        // Follower 1 has term 2 at index 3, starting at 2: the leader has no term 2 → next = 2.
        l.step(Envelope {
            from: 1,
            to: 0,
            msg: Message::AppendEntriesReply(AppendEntriesReply {
                term,
                req_term: term,
                success: false,
                match_index: 0,
                conflict: Conflict {
                    x_term: Some(2),
                    x_index: 2,
                    x_len: 6,
                },
            }),
        })
        .unwrap();
        let out = l.take_messages();
        let Some(Message::AppendEntries(ae)) = out.last().map(|e| &e.msg) else {
            panic!("no retry");
        };
        assert_eq!(ae.prev_log_index, 1);
        assert_eq!(ae.entries.len(), 2);
    }

    /// Storage whose every write fails.
    struct Broken;
    impl Storage for Broken {
        fn read_persist(&mut self) -> Result<PersistentState, StorageError> {
            Ok(PersistentState::default())
        }
        fn set_hard_state(&mut self, _: HardState) -> Result<(), StorageError> {
            Err("disk on fire".into())
        }
        fn append(&mut self, _: &[Entry]) -> Result<(), StorageError> {
            Err("disk on fire".into())
        }
        fn truncate_suffix(&mut self, _: u64) -> Result<(), StorageError> {
            Err("disk on fire".into())
        }
        fn save_snapshot(&mut self, _: SnapshotMeta, _: &[u8]) -> Result<(), StorageError> {
            Err("disk on fire".into())
        }
        fn sync(&mut self) -> Result<(), StorageError> {
            Err("disk on fire".into())
        }
        fn last_index(&self) -> u64 {
            0
        }
    }

    #[test]
    fn a_failed_persist_stops_the_node_and_nothing_leaves() {
        let mut r = Raft::new(Config::new(0, 3, 1), Broken).unwrap();
        let mut err = None;
        for _ in 0..100 {
            if let Err(e) = r.tick() {
                err = Some(e);
                break;
            }
        }
        assert!(matches!(
            err,
            Some(Error::Storage {
                op: "set_hard_state",
                ..
            })
        ));
        assert!(
            r.take_messages().is_empty(),
            "the RequestVotes depend on the vote"
        );
        assert!(matches!(r.tick(), Err(Error::Stopped { .. })));
        assert!(r.fatal_error().is_some());
    }
}
