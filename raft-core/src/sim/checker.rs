//! The global safety checker: watches every input and output of every node for a whole run
//! and checks Raft's safety properties (Figure 3 of the Raft paper) plus durability across
//! restarts. It sees only what leaves a node or reaches its storage — messages sent, entries
//! written, commands and snapshots applied, the role and term after each input, the state a
//! restart reads back — never the node's internals, so a bug anywhere in the node shows up
//! as a violated property.
//!
//! - **Election Safety**: at most one node is leader in a term, over the whole run.
//! - **One vote per term**: a node never grants votes to two candidates in one term (its
//!   own candidacy counts as a vote for itself), across restarts.
//! - **Log Matching**: every entry written by any node is recorded as `(index, term) →
//!   (data, term at index - 1)`; two writes of the same `(index, term)` must agree on both.
//!   By induction on the index this is Log Matching between every pair of nodes (same index
//!   and term ⇒ same entries up to there), and it holds across time, not just between the
//!   logs of one moment.
//! - **Leader Completeness**: a command applied anywhere is committed; its commit term is at
//!   most the term of the node that applied it (the smallest such term is kept). Every leader
//!   of a higher term must hold it (unless its snapshot covers it): checked when a node
//!   becomes leader, and for the current leaders when a command is first seen applied.
//! - **Commitment**: from the acknowledgements followers send (AppendEntries successes,
//!   InstallSnapshot replies) the checker computes what Raft's rule has committed: a
//!   leader's entries through `c` once a majority, the leader included, holds them and the
//!   entry at `c` is of the leader's term. No node may apply a command beyond that.
//! - **State Machine Safety**: no two applies of one index carry different commands, across
//!   nodes, restarts and snapshots (a snapshot applied is decoded and its every value
//!   checked).
//! - **Nothing promised is lost**: for each node the checker keeps the highest term it sent
//!   in any message, the vote it granted in that term, the highest index it vouched for in
//!   that term with the term of the entry there (a follower's AppendEntries success or
//!   InstallSnapshot reply; a leader's commit index in its AppendEntries, since a leader
//!   counts its own copy towards the majority). After a restart the node's term must be at least that term; if it is the same
//!   term, the vote must be the same and the acknowledged entries must still be there.

use std::collections::{BTreeMap, HashMap};

use crate::apply::Apply;
use crate::log::RaftLog;
use crate::message::{Envelope, Message};
use crate::sim::storage::{data_hash, Written};
use crate::sim::tester::decode_snapshot;

/// What the checker does with a violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CheckerMode {
    /// Fail the run at the first violation (the default in every scenario).
    #[default]
    Enforce,
    /// Record violations but let the run go on, so the lab's own checks can be compared
    /// with the checker's on the same run.
    Observe,
    /// No checker.
    Off,
}

/// What a node has told others, in the highest term it has sent a message in.
#[derive(Debug, Clone, Copy, Default)]
struct Promise {
    term: u64,
    vote: Option<u64>,
    /// Highest index acknowledged in `term`, and the term of the entry there (`None` when
    /// the node's snapshot already covered it).
    ack: Option<(u64, Option<u64>)>,
    /// Highest InstallSnapshot acknowledged in `term`.
    snapshot: u64,
}

/// What a follower holds: its log through this index, with the term of the entry there
/// (`None` when its snapshot covers it).
type Held = (u64, Option<u64>);

/// A command seen applied: its term, data hash, and an upper bound of the term it was
/// committed in.
#[derive(Debug, Clone, Copy)]
struct Committed {
    term: u64,
    commit_term: u64,
}

pub(crate) struct Checker {
    mode: CheckerMode,
    n: usize,
    /// Per term, each node's highest acknowledgement to that term's leader: the index it
    /// holds through and the term of its entry there (`None`: covered by its snapshot).
    acks: HashMap<u64, Vec<Option<Held>>>,
    /// The highest index committed by Raft's rule, from the acknowledgements seen.
    commit: u64,
    leaders: HashMap<u64, usize>,
    votes: HashMap<(usize, u64), u64>,
    entries: HashMap<(u64, u64), (u64, Option<u64>)>,
    applied: HashMap<u64, (u64, usize)>,
    committed: BTreeMap<u64, Committed>,
    promises: Vec<Promise>,
    /// The term a node was leader in at its last observation.
    leading: Vec<Option<u64>>,
    violations: u64,
    first: Option<String>,
}

impl Checker {
    pub(crate) fn new(n: usize, mode: CheckerMode) -> Self {
        Checker {
            mode,
            n,
            acks: HashMap::new(),
            commit: 0,
            leaders: HashMap::new(),
            votes: HashMap::new(),
            entries: HashMap::new(),
            applied: HashMap::new(),
            committed: BTreeMap::new(),
            promises: vec![Promise::default(); n],
            leading: vec![None; n],
            violations: 0,
            first: None,
        }
    }

    pub(crate) fn on(&self) -> bool {
        self.mode != CheckerMode::Off
    }

    /// Violations found so far.
    pub(crate) fn violations(&self) -> u64 {
        self.violations
    }

    /// The first violation found.
    pub(crate) fn first(&self) -> Option<&str> {
        self.first.as_deref()
    }

    /// Records a violation; returns it when the run must fail.
    pub(crate) fn report(&mut self, msg: String) -> Option<String> {
        self.violations += 1;
        if self.first.is_none() {
            self.first = Some(msg.clone());
        }
        (self.mode == CheckerMode::Enforce).then_some(msg)
    }

    /// Entries node `i` wrote to storage in its last input; `log` is its log after it.
    pub(crate) fn observe_writes(
        &mut self,
        i: usize,
        writes: &[Written],
        log: &RaftLog,
    ) -> Vec<String> {
        let mut out = Vec::new();
        let mut prev: Option<(u64, u64)> = None;
        for &(index, term, hash) in writes {
            let prev_term = match prev {
                Some((pi, pt)) if pi + 1 == index => Some(pt),
                _ => index.checked_sub(1).and_then(|p| log.term(p)),
            };
            prev = Some((index, term));
            match self.entries.get_mut(&(index, term)) {
                None => {
                    self.entries.insert((index, term), (hash, prev_term));
                }
                Some((h, p)) => {
                    if *h != hash {
                        out.push(format!(
                            "Log Matching: node {i} wrote an entry at index {index} term {term} \
                             that differs from one written there before"
                        ));
                    } else if let (Some(a), Some(b)) = (*p, prev_term) {
                        if a != b {
                            out.push(format!(
                                "Log Matching: node {i} holds index {index} term {term} after \
                                 term {b} at index {}, another log had term {a} there",
                                index - 1
                            ));
                        }
                    } else if p.is_none() {
                        *p = prev_term;
                    }
                }
            }
        }
        out
    }

    /// Messages node `i` sent after its last input; `log` is its log after it.
    pub(crate) fn observe_messages(
        &mut self,
        i: usize,
        msgs: &[Envelope],
        log: &RaftLog,
    ) -> Vec<String> {
        let mut out = Vec::new();
        for env in msgs {
            let t = env.msg.term();
            let p = &mut self.promises[i];
            if t > p.term {
                *p = Promise {
                    term: t,
                    ..Promise::default()
                };
            }
            let voted = match &env.msg {
                Message::RequestVote(_) => Some(i as u64),
                Message::RequestVoteReply(r) if r.granted => Some(env.to),
                _ => None,
            };
            if let Some(c) = voted {
                let prior = *self.votes.entry((i, t)).or_insert(c);
                if prior != c {
                    out.push(format!(
                        "node {i} voted twice in term {t}: for {prior}, then for {c}"
                    ));
                }
                if t == p.term {
                    p.vote = Some(c);
                }
            }
            // What the node vouches it holds: a follower's success, and a leader's commit
            // index (the leader counts its own copy towards the majority).
            let holds = match &env.msg {
                Message::AppendEntriesReply(r) if r.success && r.term == p.term => {
                    Some(r.match_index)
                }
                Message::AppendEntries(a) if a.term == p.term => {
                    Some(a.leader_commit.min(log.last_index()))
                }
                _ => None,
            };
            if let Some(m) = holds.filter(|&m| p.ack.is_none_or(|(a, _)| m > a)) {
                let held = if m <= log.base().index {
                    None
                } else {
                    log.term(m)
                };
                p.ack = Some((m, held));
            }
            let acked = match &env.msg {
                Message::AppendEntriesReply(r) if r.success && r.term == r.req_term => {
                    let m = r.match_index;
                    Some((
                        r.term,
                        m,
                        (m > log.base().index).then(|| log.term(m)).flatten(),
                    ))
                }
                Message::InstallSnapshotReply(r) if r.term == r.req_term => {
                    Some((r.term, r.last_included_index, None))
                }
                _ => None,
            };
            if let Some((term, m, held)) = acked {
                self.acknowledge(i, env.to as usize, term, m, held);
            }
            let p = &mut self.promises[i];
            match &env.msg {
                Message::InstallSnapshotReply(r) if r.term == r.req_term && r.term == p.term => {
                    p.snapshot = p.snapshot.max(r.last_included_index);
                }
                _ => {}
            }
        }
        out
    }

    /// Follower `i` told `leader`, the leader of `term`, that it holds its log through `m`
    /// (`held`: the term of the entry there). Raft's rule: the leader's entries through `c`
    /// are committed once a majority (the leader counts itself) holds them through `c` and
    /// the entry at `c` is of `term`.
    fn acknowledge(&mut self, i: usize, leader: usize, term: u64, m: u64, held: Option<u64>) {
        let need = self.n / 2;
        if need == 0 || leader >= self.n {
            return;
        }
        let acks = self.acks.entry(term).or_insert_with(|| vec![None; self.n]);
        if acks[i].is_none_or(|(a, _)| m > a) {
            acks[i] = Some((m, held));
        }
        let mut held_by: Vec<Held> = acks
            .iter()
            .enumerate()
            .filter(|&(f, _)| f != leader)
            .filter_map(|(_, a)| *a)
            .collect();
        held_by.sort_unstable_by_key(|&(m, _)| std::cmp::Reverse(m));
        if let Some(&(c, Some(t))) = held_by.get(need - 1) {
            if t == term {
                self.commit = self.commit.max(c);
            }
        }
    }

    /// Node `i`'s role after an input: `leader` in `term`.
    pub(crate) fn observe_role(
        &mut self,
        i: usize,
        leader: bool,
        term: u64,
        log: &RaftLog,
    ) -> Vec<String> {
        let mut out = Vec::new();
        if !leader {
            self.leading[i] = None;
            return out;
        }
        let prior = *self.leaders.entry(term).or_insert(i);
        if prior != i {
            out.push(format!(
                "Election Safety: nodes {prior} and {i} are both leaders of term {term}"
            ));
        }
        if self.leading[i] != Some(term) {
            self.leading[i] = Some(term);
            let base = log.base().index;
            for (&index, c) in self.committed.range(base + 1..) {
                if c.commit_term < term && log.term(index) != Some(c.term) {
                    out.push(completeness(i, term, index, c, log));
                    break;
                }
            }
        }
        out
    }

    /// Leader Completeness for one committed index against one current leader.
    pub(crate) fn leader_holds(
        &self,
        i: usize,
        term: u64,
        index: u64,
        log: &RaftLog,
    ) -> Option<String> {
        let c = self.committed.get(&index)?;
        (c.commit_term < term && index > log.base().index && log.term(index) != Some(c.term))
            .then(|| completeness(i, term, index, c, log))
    }

    /// Node `i` (in `term`) applied `a`. Returns the violations and, for a command applied
    /// for the first time anywhere, its index and commit-term bound.
    pub(crate) fn observe_apply(
        &mut self,
        i: usize,
        term: u64,
        a: &Apply,
    ) -> (Vec<String>, Option<(u64, u64)>) {
        let mut out = Vec::new();
        match a {
            Apply::Command {
                index,
                term: et,
                data,
            } => {
                self.check_value(i, *index, data_hash(data), &mut out);
                // (A single node is its own majority: no acknowledgement to count.)
                if self.n > 1 && *index > self.commit {
                    out.push(format!(
                        "Commitment: node {i} applied index {index} (term {et}), but by Raft's \
                         rule the entries are committed only through {}",
                        self.commit
                    ));
                }
                match self.committed.get_mut(index) {
                    None => {
                        self.committed.insert(
                            *index,
                            Committed {
                                term: *et,
                                commit_term: term,
                            },
                        );
                        return (out, Some((*index, term)));
                    }
                    Some(c) => {
                        if c.term != *et {
                            out.push(format!(
                                "State Machine Safety: node {i} applied index {index} of term \
                                 {et}, an entry of term {} was applied there before",
                                c.term
                            ));
                        }
                        c.commit_term = c.commit_term.min(term);
                    }
                }
            }
            Apply::Snapshot { index, data, .. } => match decode_snapshot(data) {
                Some((_, xlog)) => {
                    for (k, v) in xlog.iter().enumerate().take(*index as usize) {
                        self.check_value(i, k as u64 + 1, data_hash(v), &mut out);
                    }
                }
                None => out.push(format!("node {i} applied an undecodable snapshot")),
            },
        }
        (out, None)
    }

    fn check_value(&mut self, i: usize, index: u64, hash: u64, out: &mut Vec<String>) {
        let (prior, by) = *self.applied.entry(index).or_insert((hash, i));
        if prior != hash {
            out.push(format!(
                "State Machine Safety: node {i} applied a different command at index {index} \
                 than node {by} did"
            ));
        }
    }

    /// Node `i` restarted with `term`, `vote` and `log`: nothing it had sent may be lost.
    pub(crate) fn check_restart(
        &mut self,
        i: usize,
        term: u64,
        vote: Option<u64>,
        log: &RaftLog,
    ) -> Vec<String> {
        self.leading[i] = None;
        let p = self.promises[i];
        let mut out = Vec::new();
        if term < p.term {
            out.push(format!(
                "node {i} restarted in term {term} but had sent messages of term {}",
                p.term
            ));
            return out;
        }
        if term > p.term {
            return out;
        }
        if let Some(c) = p.vote {
            if vote != Some(c) {
                out.push(format!(
                    "node {i} restarted in term {term} with vote {vote:?} but had voted for {c}"
                ));
            }
        }
        if let Some((m, held)) = p.ack {
            let kept = m <= log.base().index
                || match held {
                    Some(t) => log.term(m) == Some(t),
                    None => log.last_index() >= m,
                };
            if !kept {
                out.push(format!(
                    "node {i} restarted in term {term} without the entries through {m} it had \
                     acknowledged (its log ends at {} term {})",
                    log.last_index(),
                    log.last_term()
                ));
            }
        }
        if p.snapshot > log.last_index() {
            out.push(format!(
                "node {i} restarted in term {term} without the snapshot through {} it had \
                 acknowledged",
                p.snapshot
            ));
        }
        out
    }
}

fn completeness(i: usize, term: u64, index: u64, c: &Committed, log: &RaftLog) -> String {
    format!(
        "Leader Completeness: node {i} leads term {term} without committed index {index} of term \
         {} (committed by term {}; it holds term {:?} there)",
        c.term,
        c.commit_term,
        log.term(index)
    )
}
