//! Clients the event loop polls: the lab's `one()` and the churn tests' client goroutines.

use crate::sim::tester::{TResult, Tester};

/// Handle of a spawned client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientId(pub(crate) usize);

/// `one()` gives up after this long (the lab's 10 s).
const ONE_LIMIT_MS: u64 = 10_000;
/// How long `one()` waits for agreement on one attempt (the lab's 2 s).
const ONE_ATTEMPT_MS: u64 = 2_000;
/// The churn client's waits for a commit (the lab's `[]int{10, 20, 50, 100, 200}`).
const CHURN_WAITS: [u64; 5] = [10, 20, 50, 100, 200];

pub(crate) enum Client {
    One(One),
    Churn(Churn),
}

pub(crate) struct One {
    cmd: Vec<u8>,
    expected: usize,
    retry: bool,
    t0: u64,
    starts: usize,
    waiting: Option<(u64, u64)>,
    wake: u64,
    result: Option<TResult<Option<u64>>>,
}

pub(crate) struct Churn {
    me: u64,
    values: Vec<Vec<u8>>,
    waiting: Option<(u64, Vec<u8>, usize)>,
    wake: u64,
    done: bool,
}

impl Client {
    pub(crate) fn done(&self) -> bool {
        match self {
            Client::One(c) => c.result.is_some(),
            Client::Churn(c) => c.done,
        }
    }
    pub(crate) fn wake(&self) -> u64 {
        match self {
            Client::One(c) => c.wake,
            Client::Churn(c) => c.wake,
        }
    }
    pub(crate) fn result(self) -> TResult<Option<u64>> {
        match self {
            Client::One(c) => c.result.unwrap_or(Ok(None)),
            Client::Churn(_) => Ok(None),
        }
    }
}

impl Tester {
    fn add_client(&mut self, c: Client) -> ClientId {
        if let Some(k) = self.clients.iter().position(|c| c.is_none()) {
            self.clients[k] = Some(c);
            ClientId(k)
        } else {
            self.clients.push(Some(c));
            ClientId(self.clients.len() - 1)
        }
    }

    /// Starts the lab's `one(cmd, expected, retry)` as a concurrent client (the lab's
    /// `go cfg.one(...)`); [`Tester::join_one`] waits for it.
    pub fn spawn_one(&mut self, cmd: Vec<u8>, expected: usize, retry: bool) -> ClientId {
        let now = self.now;
        self.add_client(Client::One(One {
            cmd,
            expected,
            retry,
            t0: now,
            starts: 0,
            waiting: None,
            wake: now,
            result: None,
        }))
    }

    /// Waits for a client from [`Tester::spawn_one`]; returns the index it committed at.
    pub fn join_one(&mut self, id: ClientId) -> TResult<u64> {
        match self.run_client(id)? {
            Some(i) => Ok(i),
            None => Err("one() ended without a result".into()),
        }
    }

    /// Starts a churn client (the lab's `cfn` in `internalChurn`).
    pub fn spawn_churn(&mut self, me: u64) -> ClientId {
        let now = self.now;
        self.add_client(Client::Churn(Churn {
            me,
            values: Vec::new(),
            waiting: None,
            wake: now,
            done: false,
        }))
    }

    /// Tells the churn clients to stop at their next loop.
    pub fn stop_churn(&mut self) {
        self.stop_clients = true;
    }

    /// Waits for a churn client to stop; returns the values it saw committed.
    pub fn join_churn(&mut self, id: ClientId) -> TResult<Vec<Vec<u8>>> {
        loop {
            let Some(Some(Client::Churn(c))) = self.clients.get(id.0) else {
                return Err("not a churn client".into());
            };
            if c.done {
                let Some(Client::Churn(c)) = self.clients[id.0].take() else {
                    return Err("not a churn client".into());
                };
                return Ok(c.values);
            }
            let wake = c.wake;
            self.run_until(wake);
            if let Some(f) = self.failure() {
                return Err(f.to_string());
            }
        }
    }

    pub(crate) fn poll_client(&mut self, k: usize) {
        let Some(mut c) = self.clients[k].take() else {
            return;
        };
        match &mut c {
            Client::One(o) => self.poll_one(o),
            Client::Churn(ch) => self.poll_churn(ch),
        }
        self.clients[k] = Some(c);
    }

    fn poll_one(&mut self, o: &mut One) {
        loop {
            if let Some((index, t1)) = o.waiting {
                match self.n_committed(index) {
                    Err(e) => {
                        o.result = Some(Err(e));
                        return;
                    }
                    Ok((nd, cmd1)) => {
                        if nd > 0 && nd >= o.expected && cmd1.as_deref() == Some(&o.cmd[..]) {
                            o.result = Some(Ok(Some(index)));
                            return;
                        }
                    }
                }
                if self.now - t1 < ONE_ATTEMPT_MS {
                    o.wake = self.now + 20;
                    return;
                }
                if !o.retry {
                    o.result = Some(Err(format!(
                        "one({}) failed to reach agreement",
                        show_cmd(&o.cmd)
                    )));
                    return;
                }
                o.waiting = None;
            }
            if self.now - o.t0 >= ONE_LIMIT_MS {
                o.result = Some(Err(format!(
                    "one({}) failed to reach agreement",
                    show_cmd(&o.cmd)
                )));
                return;
            }
            let mut index = None;
            for _ in 0..self.n() {
                o.starts = (o.starts + 1) % self.n();
                if self.is_connected(o.starts) {
                    if let Some((i, _)) = self.start(o.starts, o.cmd.clone()) {
                        index = Some(i);
                        break;
                    }
                }
            }
            match index {
                Some(i) => {
                    o.waiting = Some((i, self.now));
                }
                None => {
                    o.wake = self.now + 50;
                    return;
                }
            }
        }
    }

    fn poll_churn(&mut self, c: &mut Churn) {
        loop {
            if let Some((index, x, k)) = c.waiting.take() {
                if k < CHURN_WAITS.len() {
                    match self.n_committed(index) {
                        Err(_) => {
                            c.done = true;
                            return;
                        }
                        Ok((nd, cmd)) if nd > 0 => {
                            if cmd.as_deref() == Some(&x[..]) {
                                c.values.push(x);
                            }
                        }
                        Ok(_) => {
                            c.wake = self.now + CHURN_WAITS[k];
                            c.waiting = Some((index, x, k + 1));
                            return;
                        }
                    }
                }
            }
            if self.stop_clients {
                c.done = true;
                return;
            }
            let x = crate::sim::tester::cmd(self.rand());
            let mut index = None;
            for i in 0..self.n() {
                if let Some((idx, _)) = self.start(i, x.clone()) {
                    index = Some(idx);
                }
            }
            match index {
                Some(idx) => c.waiting = Some((idx, x, 0)),
                None => {
                    c.wake = self.now + 79 + c.me * 17;
                    return;
                }
            }
        }
    }
}

fn show_cmd(v: &[u8]) -> String {
    match <[u8; 8]>::try_from(v) {
        Ok(b) => u64::from_le_bytes(b).to_string(),
        Err(_) => format!("<{} bytes>", v.len()),
    }
}
