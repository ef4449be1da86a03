//! The linearizability checker: is there one order of the recorded operations, consistent
//! with real time, in which every key behaves like a single register?
//!
//! The algorithm is Wing & Gong's search with Lowe's memoisation, as in Porcupine and
//! Knossos:
//!
//! - **Per key.** A register's history is linearizable iff each key's sub-history is
//!   (P-compositionality), so keys are checked independently; that keeps every search small.
//! - **Entries.** Each operation gives a *call* entry at `invoke_us` and a *return* entry at
//!   `complete_us`, in one doubly linked list sorted by time. At equal times calls come
//!   before returns: an operation invoked at the very microsecond another completed is
//!   treated as concurrent with it. Timestamps are taken by different clients at
//!   microsecond resolution, so equal times do not prove an order; treating them as
//!   concurrent can only allow more orders, and never reports a violation on a tie.
//! - **Search.** Depth-first: walking the list from the front, a call entry whose operation
//!   the register accepts in the current state is *linearized* (its call and return
//!   entries are unlinked, dancing-links style) and the walk restarts at the front;
//!   reaching the return entry of an operation that is not linearized yet means the
//!   current prefix cannot be extended, so the search backtracks. The history is
//!   linearizable when every operation with a definite outcome is linearized. One
//!   reduction: a read that matches the current state is linearized at once as the only
//!   choice (any valid order can be changed to take it now), which prunes most branching.
//! - **Memo.** Each (set of linearized operations, register state) pair is explored once.
//!   The set is a bitset (`Vec<u64>`) hashed incrementally (Zobrist: one random word per
//!   operation, XORed in and out) and stored compactly (a prefix length plus the few words
//!   after it); values are interned as `u32`; the memo is a flat arena, so the hot loop
//!   neither allocates per step nor touches a `String`.
//! - **Unknown writes** have no return entry (return time = +infinity): they may be
//!   linearized anywhere after their call, or never, which is the same as "at the very end".
//!   One whose value no read returned cannot be observed at all and is dropped up front.
//!   The others are used only just before a read of their value, earliest-invoked first,
//!   and the memo skips configurations that merely used more of them (see `Config`):
//!   otherwise each pending one doubles the work of proving a violation.
//! - **Budget.** [`Budget::max_steps`] bounds the DFS steps spent on each key's verdict (a
//!   step is one visit of a list entry, a forced read or a backtrack). A key whose search
//!   runs out is [`Verdict::Unknown`], never [`Verdict::Linearizable`]; other keys are
//!   still checked. Shrinking a violating key's window gets its own allowance of
//!   `max_steps` more steps for that key. [`Report::steps`] counts every step taken,
//!   shrinking included.
//! - **Long keys.** Proving a violation means exhausting every configuration before it,
//!   so after a quick whole-key attempt, overlapping time slices are checked before the
//!   full search: a violation is usually local and is found at a slice's cost.
//!
//! For a violating key, [`KeyReport::window`] is a small set of its operations that on its
//! own has no valid order. It is found by delta debugging (remove chunks, then single
//! operations, while the rest still fails), never dropping a write that a remaining read
//! may have read from: that rule makes any failing window a sound witness for the whole
//! history, with the key starting absent (the reasoning is on `smallest_window`).

use super::history::{OpKind, Operation, Outcome};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Limit on the search work, so a pathological history cannot hang the checker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Most DFS steps spent on one key's verdict (and, separately, as many again on
    /// shrinking that key's failing window). Past it the key is [`Verdict::Unknown`].
    pub max_steps: u64,
}

impl Default for Budget {
    /// Ten million steps per key: about a second of search at most, far more than a
    /// realistic history needs (a 1,000-operation key with ten clients takes a few
    /// thousand; a single key carrying 10,000 operations about a million).
    fn default() -> Self {
        Budget {
            max_steps: 10_000_000,
        }
    }
}

/// The answer for one key or for the whole history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// An order exists: the history is consistent with a linearizable register.
    Linearizable,
    /// No order exists: the history proves the store is not linearizable.
    Violation,
    /// The search ran out of budget before deciding.
    Unknown,
}

/// The verdict for one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyReport {
    /// The key.
    pub key: String,
    /// Whether this key's operations can be linearized.
    pub verdict: Verdict,
    /// How many of its operations were checked (failed operations and reads with an
    /// unknown outcome carry no information and are not counted).
    pub ops: usize,
    /// For a [`Verdict::Violation`]: indices into the checked slice of a small set of this
    /// key's operations that by itself cannot be linearized, sorted by invocation time.
    /// Empty otherwise.
    pub window: Vec<usize>,
}

/// The verdict for a whole history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// [`Verdict::Violation`] if any key has one; else [`Verdict::Unknown`] if any key ran
    /// out of budget; else [`Verdict::Linearizable`].
    pub verdict: Verdict,
    /// One report per key, sorted by key.
    pub keys: Vec<KeyReport>,
    /// Operations checked, summed over keys.
    pub ops_checked: usize,
    /// DFS steps taken, summed over keys, window shrinking included.
    pub steps: u64,
}

/// Checks `ops` (any order, any mix of keys) for linearizability as a map of registers,
/// each key starting absent.
pub fn check(ops: &[Operation], budget: Budget) -> Report {
    let mut by_key: FxMap<&str, Vec<usize>> = FxMap::default();
    for (i, op) in ops.iter().enumerate() {
        by_key.entry(op.key.as_str()).or_default().push(i);
    }
    let mut keys: Vec<(&str, Vec<usize>)> = by_key.into_iter().collect();
    keys.sort_unstable_by(|a, b| a.0.cmp(b.0));

    let mut report = Report {
        verdict: Verdict::Linearizable,
        keys: Vec::with_capacity(keys.len()),
        ops_checked: 0,
        steps: 0,
    };
    for (key, indices) in keys {
        let history = KeyHistory::new(ops, &indices);
        let mut steps = 0;
        let quick = QUICK_STEPS_PER_OP * history.ops.len() as u64 + 10_000;
        let (verdict, window) = check_key(ops, &history, budget, quick, &mut steps);
        report.verdict = match (report.verdict, verdict) {
            (Verdict::Violation, _) | (_, Verdict::Violation) => Verdict::Violation,
            (Verdict::Unknown, _) | (_, Verdict::Unknown) => Verdict::Unknown,
            _ => Verdict::Linearizable,
        };
        report.ops_checked += history.checked;
        report.steps += steps;
        report.keys.push(KeyReport {
            key: key.to_string(),
            verdict,
            ops: history.checked,
            window,
        });
    }
    report
}

/// Operations per time slice in [`check_key`]; slices overlap by half.
const SLICE: usize = 256;
/// Steps per operation for [`check_key`]'s quick attempt: realistic keys need a few,
/// a hot key with ten clients about a hundred.
const QUICK_STEPS_PER_OP: u64 = 300;

/// Decides one key within `budget.max_steps` steps, and shrinks a violation's window.
///
/// Finding an order is usually quick, but proving there is none means exhausting every
/// configuration up to the violation, which on a long, busy key can be far more than the
/// budget. Violations are local, though, so:
///
/// 1. a quick attempt on the whole key (`quick` steps) settles linearizable keys and
///    early violations;
/// 2. otherwise, time slices of [`SLICE`] operations (plus the writes their reads may
///    have read from, which makes a failing slice a sound witness, see
///    [`smallest_window`]) are checked in order, each proof costing a slice's worth;
/// 3. if none fails, the whole key is searched with what is left of the budget.
fn check_key(
    all: &[Operation],
    history: &KeyHistory,
    budget: Budget,
    quick: u64,
    steps: &mut u64,
) -> (Verdict, Vec<usize>) {
    let n = history.ops.len();
    let everything: Vec<usize> = (0..n).collect();
    let left = std::cell::Cell::new(budget.max_steps);
    let mut run = |window: &[usize], limit: u64| {
        let mut used = 0;
        let result = search(&history.subset(window), limit.min(left.get()), &mut used);
        left.set(left.get() - used);
        *steps += used;
        result
    };
    let shrink = |window: Vec<usize>, evidence: &[Vec<u32>], stuck_at, steps: &mut u64| {
        let window = smallest_window(history, evidence, window, stuck_at, budget.max_steps, steps);
        let mut result: Vec<usize> = window.iter().map(|&i| history.input[i]).collect();
        result.sort_by_key(|&i| (all[i].invoke_us, i));
        (Verdict::Violation, result)
    };

    match run(&everything, quick) {
        Search::Linearizable => return (Verdict::Linearizable, Vec::new()),
        Search::Violation { stuck_at } => {
            return shrink(everything, &evidence(&history.ops), stuck_at, steps);
        }
        Search::OutOfBudget => {}
    }
    let evidence = evidence(&history.ops);
    if n > SLICE {
        let mut needed = vec![false; n];
        for start in (0..n).step_by(SLICE / 2) {
            let slice = restrict(
                &everything,
                &|pos, _| (start..start + SLICE).contains(&pos),
                &evidence,
                &mut needed,
            );
            if let Search::Violation { stuck_at } = run(&slice, 2_000 * SLICE as u64) {
                return shrink(slice, &evidence, stuck_at, steps);
            }
            if start + SLICE >= n || left.get() == 0 {
                break;
            }
        }
    }
    match run(&everything, u64::MAX) {
        Search::Linearizable => (Verdict::Linearizable, Vec::new()),
        Search::Violation { stuck_at } => shrink(everything, &evidence, stuck_at, steps),
        Search::OutOfBudget => (Verdict::Unknown, Vec::new()),
    }
}

/// Register state for "the key is absent"; interned values start at 1.
const ABSENT: u32 = 0;
/// Null link / null cache entry.
const NIL: u32 = u32::MAX;

/// One operation of a key, reduced to what the search needs.
#[derive(Debug, Clone, Copy)]
struct Op {
    write: bool,
    /// Interned value: written by a write, returned by a read; [`ABSENT`] for none.
    value: u32,
    invoke: u64,
    /// `None` for a write with an unknown outcome: it never returns.
    complete: Option<u64>,
}

/// One key's checkable operations, in invocation order.
struct KeyHistory {
    ops: Vec<Op>,
    /// `input[i]` is the index in the checked slice of `ops[i]`.
    input: Vec<usize>,
    /// Number of operations that carry information (see [`KeyReport::ops`]).
    checked: usize,
}

impl KeyHistory {
    fn new(all: &[Operation], indices: &[usize]) -> KeyHistory {
        let mut interned: FxMap<&str, u32> = FxMap::default();
        let mut picked: Vec<(Op, usize)> = Vec::with_capacity(indices.len());
        for &i in indices {
            let o = &all[i];
            let write = o.kind.is_write();
            let complete = match (o.outcome, write) {
                (Outcome::Fail, _) | (Outcome::Unknown, false) => continue,
                (Outcome::Unknown, true) => None,
                // A completion before the invocation is a recording glitch; clamping it
                // keeps the interval non-empty without inventing an order.
                (Outcome::Ok, _) => Some(o.complete_us.max(o.invoke_us)),
            };
            let value = match (&o.value, o.kind) {
                (_, OpKind::Delete) | (None, _) => ABSENT,
                (Some(v), _) => {
                    let next = interned.len() as u32 + 1;
                    *interned.entry(v.as_str()).or_insert(next)
                }
            };
            let op = Op {
                write,
                value,
                invoke: o.invoke_us,
                complete,
            };
            picked.push((op, i));
        }
        let checked = picked.len();

        // An unknown write whose value no read returned cannot be told apart from one that
        // never happened (linearize it just before the next write, or last), so it only
        // widens the search.
        let mut read_values = vec![false; interned.len() + 1];
        for (op, _) in &picked {
            if !op.write {
                read_values[op.value as usize] = true;
            }
        }
        picked.retain(|(op, _)| op.complete.is_some() || read_values[op.value as usize]);
        picked.sort_by_key(|&(op, i)| (op.invoke, i));
        let (ops, input) = picked.into_iter().unzip();
        KeyHistory {
            ops,
            input,
            checked,
        }
    }

    /// The operations at `window` (sorted positions), still sorted by invocation.
    fn subset(&self, window: &[usize]) -> Vec<Op> {
        window.iter().map(|&i| self.ops[i]).collect()
    }
}

/// Result of one search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Search {
    Linearizable,
    /// No order exists. Every order got stuck by `stuck_at` (the latest return entry the
    /// search backtracked from), so operations invoked after it play no part.
    Violation {
        stuck_at: u64,
    },
    OutOfBudget,
}

/// Searches for an order of `ops` (sorted by invocation), the register starting absent,
/// taking at most `max_steps` steps; adds the steps taken to `steps`.
///
/// Porcupine's loop with one addition for unknown writes (see [`Config`]): they are never
/// linearized on their own, only as a pair immediately before a read of their value, and
/// such pairs are tried last, in a second scan of the available calls made just before
/// backtracking. So the search first looks for orders that use fewer of them, and the
/// memo can then skip any configuration that only used more.
fn search(ops: &[Op], max_steps: u64, steps: &mut u64) -> Search {
    let mut remaining = ops.iter().filter(|op| op.complete.is_some()).count();
    if remaining == 0 {
        return Search::Linearizable;
    }
    let n = ops.len();

    // Entries sorted by (time, call-before-return, operation); node 0 is the head, node
    // m + 1 the tail, so linking never needs a branch. List order is node order.
    let mut entries: Vec<(u64, bool, u32)> = Vec::with_capacity(2 * n);
    for (i, op) in ops.iter().enumerate() {
        entries.push((op.invoke, false, i as u32));
        if let Some(c) = op.complete {
            entries.push((c, true, i as u32));
        }
    }
    entries.sort_unstable();
    let m = entries.len();
    let tail = m + 1;
    let mut next: Vec<u32> = (1..=tail as u32 + 1).collect();
    let mut prev: Vec<u32> = (0..=tail as u32).map(|k| k.wrapping_sub(1)).collect();
    let mut node_op = vec![0u32; m + 2];
    let mut node_time = vec![0u64; m + 2];
    let mut is_return = vec![false; m + 2];
    let mut call_node = vec![NIL; n];
    let mut return_node = vec![NIL; n];
    for (k, &(time, ret, op)) in entries.iter().enumerate() {
        let node = k as u32 + 1;
        node_op[node as usize] = op;
        node_time[node as usize] = time;
        is_return[node as usize] = ret;
        if ret {
            return_node[op as usize] = node;
        } else {
            call_node[op as usize] = node;
        }
    }

    let mut config = Config::new(ops);
    let mut cache = Cache::new(2 * n);
    let mut stack: Vec<Frame> = Vec::with_capacity(n);
    let mut state = ABSENT;
    let mut node = next[0] as usize;
    // A configuration just reached, not scanned yet.
    let mut fresh = true;
    // The current configuration is known to fail.
    let mut failed = false;
    // In the pair scan, and the return entry that ended the first scan.
    let mut pairing = false;
    let mut block = NIL;
    let mut taken = 0u64;
    let mut stuck_at = 0u64;

    // Dancing links: an unlinked node keeps its own prev/next, so relinking in exactly the
    // reverse order restores the list.
    let unlink = |next: &mut [u32], prev: &mut [u32], k: usize| {
        next[prev[k] as usize] = next[k];
        prev[next[k] as usize] = prev[k];
    };
    let relink = |next: &mut [u32], prev: &mut [u32], k: usize| {
        next[prev[k] as usize] = k as u32;
        prev[next[k] as usize] = k as u32;
    };

    loop {
        if remaining == 0 {
            *steps += taken;
            return Search::Linearizable;
        }
        if taken >= max_steps {
            *steps += taken;
            return Search::OutOfBudget;
        }
        taken += 1;

        // What to linearize next, if anything: (call node, unknown write before it, forced).
        let mut pick: Option<(usize, u32, bool)> = None;
        if failed {
            // Nothing to pick: backtrack below.
        } else if fresh {
            // A read that can go now may as well go first: in any valid order from here, it
            // can be moved to now (its state matches, and whatever had to precede it has
            // returned, hence is linearized). So it is the only choice worth exploring.
            fresh = false;
            let mut k = next[0] as usize;
            while k != tail && !is_return[k] {
                let op = ops[node_op[k] as usize];
                if !op.write && op.value == state {
                    pick = Some((k, NIL, true));
                    break;
                }
                k = next[k] as usize;
            }
            if pick.is_none() {
                continue;
            }
        } else if node != tail && !is_return[node] {
            let op = ops[node_op[node] as usize];
            if !pairing {
                if op.write && op.complete.is_some() {
                    pick = Some((node, NIL, false));
                }
            } else if !op.write && state != op.value {
                let w = config.next_unknown_write(op.value);
                // Available if invoked before the return entry that blocks this scan.
                if w != NIL && call_node[w as usize] < block {
                    pick = Some((node, w, false));
                }
            }
            if pick.is_none() {
                node = next[node] as usize;
                continue;
            }
        } else if !pairing && config.unknown_left > 0 {
            // Every single operation has been tried here; now the pairs.
            pairing = true;
            block = node as u32;
            node = next[0] as usize;
            continue;
        } else {
            // The tail can only be reached with unknown writes left; handled like a return.
            let blocked_at = if pairing { block as usize } else { node };
            if blocked_at < tail {
                stuck_at = stuck_at.max(node_time[blocked_at]);
            }
            failed = true;
        }

        if let Some((call, partner, forced)) = pick {
            let i = node_op[call] as usize;
            let op = ops[i];
            let saved = config.add(i, op, partner);
            if cache.insert(&config, op.value) {
                stack.push(Frame {
                    node: call as u32,
                    before: state,
                    partner,
                    block: if pairing { block } else { NIL },
                    forced,
                    saved,
                });
                state = op.value;
                if partner != NIL {
                    unlink(&mut next, &mut prev, call_node[partner as usize] as usize);
                }
                unlink(&mut next, &mut prev, call);
                unlink(&mut next, &mut prev, return_node[i] as usize);
                remaining -= 1;
                pairing = false;
                fresh = true;
                node = next[0] as usize;
                continue;
            }
            config.remove(i, op, partner, saved);
            if forced {
                failed = true;
            } else {
                node = next[node] as usize;
            }
            continue;
        }

        // Backtrack: the current configuration fails, so undo the last linearization.
        let Some(frame) = stack.pop() else {
            *steps += taken;
            return Search::Violation { stuck_at };
        };
        let call = frame.node as usize;
        let i = node_op[call] as usize;
        config.remove(i, ops[i], frame.partner, frame.saved);
        state = frame.before;
        relink(&mut next, &mut prev, return_node[i] as usize);
        relink(&mut next, &mut prev, call);
        if frame.partner != NIL {
            relink(
                &mut next,
                &mut prev,
                call_node[frame.partner as usize] as usize,
            );
        }
        remaining += 1;
        // After a forced read the configuration it left fails too; otherwise the scan
        // resumes after the undone call, in the scan it was made in.
        failed = frame.forced;
        pairing = frame.block != NIL;
        block = frame.block;
        node = next[call] as usize;
    }
}

/// One linearized operation on the search stack.
struct Frame {
    /// Its call node.
    node: u32,
    /// The register state before it.
    before: u32,
    /// The unknown write linearized just before it, or [`NIL`].
    partner: u32,
    /// For a pair: the return node that blocked the first scan (the pair scan resumes
    /// after it is undone); [`NIL`] for a single operation.
    block: u32,
    /// A read linearized as the only choice: when it fails, so does the configuration.
    forced: bool,
    /// What [`Config::add`] needs to be undone.
    saved: Saved,
}

/// The search's current configuration, as the memo sees it: the set of linearized
/// operations with a definite outcome, and how many unknown writes of each value have been
/// used.
///
/// The set is kept as a bitset with an incremental (Zobrist) hash, but stored in the memo
/// compactly: every definite operation invoked before the first one not linearized yet
/// (`low`) is linearized, and any linearized one after it was invoked before that one
/// returned, so (`low`, the few words of bits from `low` up to the last linearized
/// operation) identifies the set. On a long, busy key that is one or two words instead of
/// `n / 64`, so the memo does not run out of room.
///
/// Pending unknown writes would otherwise make proving a violation exponential: each may
/// be linearized at any later point, doubling the configurations for the rest of the
/// history. Three facts keep them in check:
///
/// - **Only just before a read of their value.** In a valid order, whatever follows an
///   unknown write up to the next write must read its value; if nothing does, dropping it
///   leaves a valid order. So each used one can sit immediately before such a read.
/// - **In invocation order.** Unknown writes of one value are interchangeable once
///   invoked, and an earlier-invoked one can go wherever a later one can, so they are used
///   earliest first: k of them give k + 1 possibilities, not 2^k.
/// - **Fewer used is at least as good.** A configuration that used more unknown writes
///   of some values than an explored one, with the same set and state, cannot succeed
///   where that one failed (it has fewer options), so the memo skips it. A value none of
///   whose reads is left is dropped from the counts: its unknown writes cannot matter.
struct Config {
    bits: Vec<u64>,
    hash: u64,
    zobrist: Vec<u64>,
    /// Unknown writes never enter `bits`; `low` skips them.
    unknown: Vec<bool>,
    /// The first definite operation not linearized (`n` if none).
    low: usize,
    /// One past the last linearized operation (0 if none).
    high: usize,
    /// Reads of each value not linearized yet.
    reads_left: Vec<u32>,
    /// The unknown writes of each value, in invocation order.
    unknown_writes: Vec<Vec<u32>>,
    /// How many of `unknown_writes[v]` are linearized (always a prefix).
    unknown_used: Vec<u32>,
    /// Unknown writes not linearized yet.
    unknown_left: usize,
    /// `(value, unknown_used)` for the values with reads left and some used, by value.
    used: Vec<(u32, u32)>,
}

/// `low` and `high` before a [`Config::add`].
#[derive(Debug, Clone, Copy)]
struct Saved {
    low: usize,
    high: usize,
}

impl Config {
    fn new(ops: &[Op]) -> Config {
        let n = ops.len();
        let values = ops
            .iter()
            .map(|op| op.value as usize + 1)
            .max()
            .unwrap_or(0);
        let mut reads_left = vec![0u32; values];
        let mut unknown_writes = vec![Vec::new(); values];
        // `ops` is sorted by invocation, so each list is too.
        for (i, op) in ops.iter().enumerate() {
            if !op.write {
                reads_left[op.value as usize] += 1;
            } else if op.complete.is_none() {
                unknown_writes[op.value as usize].push(i as u32);
            }
        }
        let unknown: Vec<bool> = ops.iter().map(|op| op.complete.is_none()).collect();
        Config {
            bits: vec![0; n.div_ceil(64)],
            hash: 0,
            zobrist: (0..n as u64).map(|i| mix(i ^ 0x5bd1_e995)).collect(),
            low: unknown.iter().position(|&u| !u).unwrap_or(n),
            high: 0,
            unknown,
            reads_left,
            unknown_left: unknown_writes.iter().map(Vec::len).sum(),
            unknown_writes,
            unknown_used: vec![0; values],
            used: Vec::new(),
        }
    }

    fn linearized(&self, i: usize) -> bool {
        self.bits[i / 64] & (1 << (i % 64)) != 0
    }

    /// The words that, with `low`, identify the set: from `low`'s word to the last
    /// linearized operation's (bits below `low` in the first word are implied by `low`).
    fn window(&self) -> &[u64] {
        if self.high <= self.low {
            return &[];
        }
        &self.bits[self.low / 64..self.high.div_ceil(64)]
    }

    /// The earliest-invoked unknown write of `value` not used yet, or [`NIL`].
    fn next_unknown_write(&self, value: u32) -> u32 {
        let v = value as usize;
        self.unknown_writes[v]
            .get(self.unknown_used[v] as usize)
            .copied()
            .unwrap_or(NIL)
    }

    /// Brings the entry of `value` in `used` up to date.
    fn refresh(&mut self, value: u32) {
        let v = value as usize;
        let count = if self.reads_left[v] > 0 {
            self.unknown_used[v]
        } else {
            0
        };
        match (self.used.binary_search_by_key(&value, |e| e.0), count) {
            (Ok(k), 0) => {
                self.used.remove(k);
            }
            (Ok(k), c) => self.used[k].1 = c,
            (Err(_), 0) => {}
            (Err(k), c) => self.used.insert(k, (value, c)),
        }
    }

    /// Linearizes the definite operation `i`, preceded by the unknown write `partner`
    /// unless that is [`NIL`]; returns what undoing it needs.
    fn add(&mut self, i: usize, op: Op, partner: u32) -> Saved {
        let saved = Saved {
            low: self.low,
            high: self.high,
        };
        self.bits[i / 64] ^= 1 << (i % 64);
        self.hash ^= self.zobrist[i];
        self.high = self.high.max(i + 1);
        if i == self.low {
            let n = self.unknown.len();
            while self.low < n && (self.unknown[self.low] || self.linearized(self.low)) {
                self.low += 1;
            }
        }
        let v = op.value as usize;
        if partner != NIL {
            self.unknown_used[v] += 1;
            self.unknown_left -= 1;
        }
        if !op.write {
            self.reads_left[v] -= 1;
        }
        if partner != NIL || !op.write {
            self.refresh(op.value);
        }
        saved
    }

    /// Undoes [`Config::add`].
    fn remove(&mut self, i: usize, op: Op, partner: u32, saved: Saved) {
        self.bits[i / 64] ^= 1 << (i % 64);
        self.hash ^= self.zobrist[i];
        self.low = saved.low;
        self.high = saved.high;
        let v = op.value as usize;
        if partner != NIL {
            self.unknown_used[v] -= 1;
            self.unknown_left += 1;
        }
        if !op.write {
            self.reads_left[v] += 1;
        }
        if partner != NIL || !op.write {
            self.refresh(op.value);
        }
    }
}

/// SplitMix64's finaliser: a cheap, well-mixed 64-bit hash.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// FxHash (as in rustc): one rotate, xor and multiply per word. Far cheaper than SipHash
/// for the short keys and values hashed here; no untrusted input needs DoS resistance.
#[derive(Default)]
struct FxHasher(u64);

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for FxHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let mut w = [0u8; 8];
        w[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        self.add(u64::from_le_bytes(w));
    }
    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }
}

/// Hash maps keyed by strings or by already random words.
type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// Most words the memo may hold (128 MiB). Past it new configurations are no longer
/// remembered: the search stays correct, it only loses pruning, and the step budget still
/// bounds it.
const CACHE_WORDS: usize = 1 << 24;

/// The configurations already explored, stored flat: entry `e` has `low[e]`, `states[e]`,
/// `words[at[e].0..at[e + 1].0]` and `used[at[e].1..at[e + 1].1]`; entries with the same
/// hash are chained through `chain`.
struct Cache {
    heads: FxMap<u64, u32>,
    low: Vec<u32>,
    states: Vec<u32>,
    chain: Vec<u32>,
    at: Vec<(u32, u32)>,
    words: Vec<u64>,
    used: Vec<(u32, u32)>,
}

impl Cache {
    fn new(expected: usize) -> Cache {
        let mut heads = FxMap::default();
        heads.reserve(expected);
        Cache {
            heads,
            low: Vec::new(),
            states: Vec::new(),
            chain: Vec::new(),
            at: vec![(0, 0)],
            words: Vec::new(),
            used: Vec::new(),
        }
    }

    /// Records `config` with register `state`; false if an explored configuration with
    /// the same set and state used no more unknown writes of any value.
    fn insert(&mut self, config: &Config, state: u32) -> bool {
        let hash = config.hash ^ mix(u64::from(state));
        let window = config.window();
        let head = self.heads.get(&hash).copied().unwrap_or(NIL);
        let mut e = head;
        while e != NIL {
            let k = e as usize;
            let (w0, u0) = self.at[k];
            let (w1, u1) = self.at[k + 1];
            if self.states[k] == state
                && self.low[k] as usize == config.low
                && self.words[w0 as usize..w1 as usize] == *window
                && uses_no_more(&self.used[u0 as usize..u1 as usize], &config.used)
            {
                return false;
            }
            e = self.chain[k];
        }
        let fits = self.words.len() + window.len() + self.states.len() <= CACHE_WORDS
            && self.used.len() + config.used.len() < NIL as usize;
        if fits {
            self.heads.insert(hash, self.states.len() as u32);
            self.low.push(config.low as u32);
            self.states.push(state);
            self.chain.push(head);
            self.words.extend_from_slice(window);
            self.used.extend_from_slice(&config.used);
            self.at
                .push((self.words.len() as u32, self.used.len() as u32));
        }
        true
    }
}

/// Whether the counts `a` are all at most those of `b` (both sorted by value; a missing
/// value counts 0).
fn uses_no_more(a: &[(u32, u32)], b: &[(u32, u32)]) -> bool {
    let mut b = b.iter().peekable();
    a.iter().all(|&(value, count)| {
        while b.next_if(|e| e.0 < value).is_some() {}
        b.peek().is_some_and(|e| e.0 == value && e.1 >= count)
    })
}

/// Shrinks `window`, a set of the key's operations (sorted positions) already known not
/// to be linearizable, whose search got stuck by `stuck_at`, to a small window that is
/// still not linearizable.
///
/// Delta debugging (ddmin-style): after cutting the operations invoked after `stuck_at`,
/// try removing chunks of the window, halving the chunk size down to single operations,
/// and keep every removal after which the rest is still not linearizable; the
/// single-operation pass is repeated until nothing more can go.
///
/// **Soundness.** A removal never drops a write that a remaining read may have read from
/// (its possible sources, see [`evidence`]). Take any valid order of the full key history
/// and keep only the window's operations: each remaining read still has, as its latest
/// preceding write, the same write as before, since that write was one of its possible
/// sources and was kept. So if the history were linearizable, every window would be, and a
/// window that is not proves the violation on its own, under the same initial value
/// (absent). The same argument makes a failing time slice in [`check_key`] a proof.
///
/// **Why not an unknown initial value.** Checking windows with an unknown start (the first
/// read fixes it) is the usual guard against dropped writes creating a false witness; the
/// possible-sources rule already rules that out, and the unknown start only makes windows
/// bigger (a read of a value nobody wrote becomes explainable by the start, so the window
/// must also hold an older write to exclude that). The known start is also what [`check`]
/// assumes, so every window is confirmed by checking it alone.
///
/// Shrinking may spend `allowance` steps in total; when a candidate runs out, the window
/// found so far (always a verified witness) is returned.
fn smallest_window(
    history: &KeyHistory,
    evidence: &[Vec<u32>],
    mut window: Vec<usize>,
    stuck_at: u64,
    allowance: u64,
    steps: &mut u64,
) -> Vec<usize> {
    let mut spent = 0u64;
    let mut run = |window: &[usize]| {
        let mut used = 0;
        let result = search(
            &history.subset(window),
            allowance.saturating_sub(spent),
            &mut used,
        );
        spent += used;
        *steps += used;
        result
    };
    let mut needed = vec![false; history.ops.len()];

    // First cut everything the failed search never got to; ddmin would otherwise pay a
    // full search for every chunk it removes from that tail.
    let cut = restrict(
        &window,
        &|_, i| history.ops[i].invoke <= stuck_at,
        evidence,
        &mut needed,
    );
    if cut.len() < window.len() && matches!(run(&cut), Search::Violation { .. }) {
        window = cut;
    }
    let mut chunk = (window.len() / 2).max(1);
    'shrink: loop {
        let mut removed_any = false;
        let mut lo = 0;
        while lo < window.len() {
            let hi = (lo + chunk).min(window.len());
            let candidate = restrict(
                &window,
                &|pos, _| !(lo..hi).contains(&pos),
                evidence,
                &mut needed,
            );
            if candidate.len() < window.len() {
                match run(&candidate) {
                    // The next chunk now starts at `lo`.
                    Search::Violation { .. } => {
                        window = candidate;
                        removed_any = true;
                        continue;
                    }
                    Search::OutOfBudget => break 'shrink,
                    Search::Linearizable => {}
                }
            }
            lo = hi;
        }
        // A removal can make an earlier-tried operation removable (it may have been the
        // only evidence kept for a read that is now gone), so single-operation
        // passes repeat until nothing changes.
        if chunk == 1 && !removed_any {
            break;
        }
        chunk = (chunk / 2).min(window.len() / 2).max(1);
    }
    window
}

/// The operations of `window` (positions into the key's operations, sorted) that `keep`
/// picks by (position in `window`, operation), plus the evidence of the reads kept, in
/// order. `needed` is scratch space, one flag per operation of the key.
fn restrict(
    window: &[usize],
    keep: &dyn Fn(usize, usize) -> bool,
    evidence: &[Vec<u32>],
    needed: &mut [bool],
) -> Vec<usize> {
    needed.iter_mut().for_each(|n| *n = false);
    for (pos, &r) in window.iter().enumerate() {
        if keep(pos, r) {
            for &s in &evidence[r] {
                needed[s as usize] = true;
            }
        }
    }
    window
        .iter()
        .enumerate()
        .filter(|&(pos, &i)| keep(pos, i) || needed[i])
        .map(|(_, &i)| i)
        .collect()
}

/// For each read, the writes a window must keep while it keeps the read (empty for writes):
///
/// 1. its *possible sources*: writes of the value it returned, invoked no later than it
///    completed, and not certainly overwritten before it began (completed before the
///    invocation of a definite write that itself completed before the read began). This
///    is what makes windows sound (see [`smallest_window`]).
/// 2. if some write of its value *was* certainly overwritten: the latest such write and
///    the overwriting write with the latest invocation, so a stale read is shown as one
///    (`put a`, `put b`, then `get→a`) rather than as a read of a value nobody wrote.
/// 3. if it returned a value only written later: the earliest such write, so the window
///    shows a read from the future as such.
fn evidence(ops: &[Op]) -> Vec<Vec<u32>> {
    // Definite writes by completion time; `last_overwrite[k]` is the one with the latest
    // invocation among the first k + 1 of them.
    let mut done: Vec<(u64, u64, u32)> = ops
        .iter()
        .enumerate()
        .filter(|(_, op)| op.write)
        .filter_map(|(i, op)| op.complete.map(|c| (c, op.invoke, i as u32)))
        .collect();
    done.sort_unstable();
    let mut best: Option<(u64, u32)> = None;
    let last_overwrite: Vec<(u64, u32)> = done
        .iter()
        .map(|&(_, inv, i)| {
            let b = match best {
                Some(b) if b.0 >= inv => b,
                _ => (inv, i),
            };
            best = Some(b);
            b
        })
        .collect();

    let values = ops
        .iter()
        .map(|op| op.value as usize + 1)
        .max()
        .unwrap_or(0);
    let mut writes_of: Vec<Vec<u32>> = vec![Vec::new(); values];
    for (i, op) in ops.iter().enumerate().filter(|(_, op)| op.write) {
        writes_of[op.value as usize].push(i as u32);
    }
    ops.iter()
        .map(|r| {
            if r.write {
                return Vec::new();
            }
            let r_complete = r.complete.unwrap_or(u64::MAX);
            // (invocation, node) of the latest-invoked definite write completed before r.
            let k = done.partition_point(|&(c, _, _)| c < r.invoke);
            let overwrite = k.checked_sub(1).map(|k| last_overwrite[k]);
            let mut keep = Vec::new();
            let mut latest_overwritten: Option<(u64, u32)> = None;
            let mut earliest_future: Option<(u64, u32)> = None;
            for &x in &writes_of[r.value as usize] {
                let op = ops[x as usize];
                if op.invoke > r_complete {
                    if earliest_future.is_none_or(|e| (op.invoke, x) < e) {
                        earliest_future = Some((op.invoke, x));
                    }
                    continue;
                }
                // An unknown write never completes, so it is never certainly overwritten.
                match (op.complete, overwrite) {
                    (Some(c), Some((o, _))) if c < o => {
                        latest_overwritten = latest_overwritten.max(Some((c, x)));
                    }
                    _ => keep.push(x),
                }
            }
            if let (Some((_, x)), Some((_, y))) = (latest_overwritten, overwrite) {
                keep.extend([x, y]);
            } else if keep.is_empty() && r.value != ABSENT {
                keep.extend(earliest_future.map(|(_, x)| x));
            }
            keep
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    // ---- building histories by hand ----

    fn mk(process: u64, kind: OpKind, value: Option<&str>, inv: u64, comp: u64) -> Operation {
        Operation {
            process,
            kind,
            key: "k".into(),
            value: value.map(str::to_string),
            invoke_us: inv,
            complete_us: comp,
            outcome: Outcome::Ok,
            answered_by: 0,
        }
    }
    pub(crate) fn put(p: u64, v: &str, inv: u64, comp: u64) -> Operation {
        mk(p, OpKind::Put, Some(v), inv, comp)
    }
    pub(crate) fn get(p: u64, v: Option<&str>, inv: u64, comp: u64) -> Operation {
        mk(p, OpKind::Get, v, inv, comp)
    }
    pub(crate) fn stale(p: u64, v: Option<&str>, inv: u64, comp: u64) -> Operation {
        mk(p, OpKind::GetStale, v, inv, comp)
    }
    pub(crate) fn del(p: u64, inv: u64, comp: u64) -> Operation {
        mk(p, OpKind::Delete, None, inv, comp)
    }
    pub(crate) fn unknown(mut o: Operation) -> Operation {
        o.outcome = Outcome::Unknown;
        o
    }
    fn fail(mut o: Operation) -> Operation {
        o.outcome = Outcome::Fail;
        o
    }
    fn on(key: &str, mut o: Operation) -> Operation {
        o.key = key.into();
        o
    }

    fn big() -> Budget {
        Budget {
            max_steps: 50_000_000,
        }
    }

    fn verdict(ops: &[Operation]) -> Verdict {
        check(ops, big()).verdict
    }

    fn pick(ops: &[Operation], window: &[usize]) -> Vec<Operation> {
        window.iter().map(|&i| ops[i].clone()).collect()
    }

    /// Checks a violation and its window; returns the window.
    fn assert_violation(ops: &[Operation]) -> Vec<usize> {
        let report = check(ops, big());
        assert_eq!(report.verdict, Verdict::Violation, "{ops:#?}");
        let bad: Vec<&KeyReport> = report
            .keys
            .iter()
            .filter(|k| k.verdict == Verdict::Violation)
            .collect();
        assert!(!bad.is_empty());
        let window = bad[0].window.clone();
        assert!(!window.is_empty());
        assert!(
            window
                .windows(2)
                .all(|w| { (ops[w[0]].invoke_us, w[0]) < (ops[w[1]].invoke_us, w[1]) })
        );
        assert!(window.iter().all(|&i| ops[i].key == bad[0].key));
        let alone = pick(ops, &window);
        assert_eq!(verdict(&alone), Verdict::Violation, "window {alone:#?}");
        window
    }

    // ---- linearizable by hand ----

    #[test]
    fn empty_and_single() {
        let r = check(&[], big());
        assert_eq!(r.verdict, Verdict::Linearizable);
        assert!(r.keys.is_empty());
        assert_eq!(verdict(&[get(1, None, 0, 10)]), Verdict::Linearizable);
        assert_eq!(verdict(&[put(1, "a", 0, 10)]), Verdict::Linearizable);
    }

    #[test]
    fn sequential() {
        let ops = [
            put(1, "a", 0, 10),
            get(2, Some("a"), 20, 30),
            put(2, "b", 40, 50),
            get(1, Some("b"), 60, 70),
            del(3, 80, 90),
            get(1, None, 100, 110),
            put(3, "a", 120, 130),
            stale(2, Some("a"), 140, 150),
        ];
        let r = check(&ops, big());
        assert_eq!(r.verdict, Verdict::Linearizable);
        assert_eq!(r.ops_checked, 8);
        assert_eq!(r.keys.len(), 1);
        assert!(r.keys[0].window.is_empty());
        assert!(r.steps >= 8);
    }

    #[test]
    fn concurrent_reads_see_either_side_of_a_write() {
        let ops = [
            put(1, "a", 0, 10),
            put(1, "b", 20, 100),
            get(2, Some("a"), 25, 90),
            get(3, Some("b"), 30, 80),
            get(4, Some("a"), 30, 40),
            get(4, Some("b"), 50, 60),
            get(2, Some("b"), 95, 99),
        ];
        assert_eq!(verdict(&ops), Verdict::Linearizable);
    }

    #[test]
    fn unknown_write_taken_or_not() {
        let base = [put(1, "a", 0, 10), unknown(put(1, "b", 20, 30))];
        let took = [&base[..], &[get(2, Some("b"), 100, 110)]].concat();
        let not = [&base[..], &[get(2, Some("a"), 100, 110)]].concat();
        // Takes effect after the client gave up.
        let late = [
            &base[..],
            &[get(2, Some("a"), 40, 50), get(2, Some("b"), 60, 70)],
        ]
        .concat();
        // Never observed: dropped entirely.
        let unseen = [
            &base[..],
            &[get(2, Some("a"), 40, 50), get(2, Some("a"), 60, 70)],
        ]
        .concat();
        for ops in [took, not, late, unseen] {
            assert_eq!(verdict(&ops), Verdict::Linearizable, "{ops:#?}");
        }
        // An unknown delete seen later.
        let ops = [
            put(1, "a", 0, 10),
            unknown(del(1, 20, 30)),
            get(2, Some("a"), 40, 50),
            get(2, None, 60, 70),
        ];
        assert_eq!(verdict(&ops), Verdict::Linearizable);
    }

    #[test]
    fn deletes_and_absent_reads() {
        let ops = [
            get(1, None, 0, 5),
            put(1, "a", 10, 20),
            del(2, 30, 40),
            get(3, None, 50, 60),
            put(1, "b", 70, 80),
            get(2, Some("b"), 90, 100),
            del(1, 110, 120),
            del(2, 115, 125),
            get(3, None, 130, 140),
            on("other", get(4, None, 0, 1000)),
        ];
        let r = check(&ops, big());
        assert_eq!(r.verdict, Verdict::Linearizable);
        assert_eq!(r.keys.len(), 2);
        assert_eq!(r.keys[0].key, "k");
        assert_eq!(r.keys[1].key, "other");
    }

    #[test]
    fn failed_ops_and_unknown_reads_are_ignored() {
        let ops = [
            put(1, "a", 0, 10),
            fail(put(2, "b", 15, 25)),
            get(3, Some("a"), 30, 40),
            fail(get(3, Some("zzz"), 50, 60)),
            unknown(get(3, Some("zzz"), 70, 80)),
            fail(del(1, 90, 100)),
            get(2, Some("a"), 110, 120),
        ];
        let r = check(&ops, big());
        assert_eq!(r.verdict, Verdict::Linearizable);
        assert_eq!(r.ops_checked, 3);
    }

    #[test]
    fn touching_intervals_are_concurrent() {
        // The read is invoked the microsecond the write completes: either order is allowed.
        assert_eq!(
            verdict(&[put(1, "a", 0, 10), get(2, None, 10, 20)]),
            Verdict::Linearizable
        );
        assert_eq!(
            verdict(&[put(1, "a", 0, 10), get(2, Some("a"), 10, 20)]),
            Verdict::Linearizable
        );
        // One microsecond later it is ordered.
        assert_violation(&[put(1, "a", 0, 10), get(2, None, 11, 20)]);
        // Instantaneous operations and a completion recorded before the invocation.
        assert_eq!(
            verdict(&[
                put(1, "a", 5, 5),
                get(2, Some("a"), 5, 5),
                put(3, "b", 9, 2)
            ]),
            Verdict::Linearizable
        );
    }

    // ---- violations by hand ----

    #[test]
    fn stale_read_after_completed_write() {
        let ops = [
            put(1, "a", 0, 10),
            get(2, Some("a"), 12, 18),
            put(1, "b", 20, 30),
            get(2, Some("a"), 40, 50),
        ];
        let w = assert_violation(&ops);
        assert_eq!(w, vec![0, 2, 3]);
        // The same with a stale-read request: the point of the exercise.
        let ops = [
            put(1, "a", 0, 10),
            put(1, "b", 20, 30),
            stale(2, Some("a"), 40, 50),
        ];
        assert_eq!(assert_violation(&ops), vec![0, 1, 2]);
    }

    #[test]
    fn read_of_value_never_written() {
        let ops = [
            put(1, "a", 0, 10),
            get(2, Some("a"), 20, 30),
            get(2, Some("ghost"), 40, 50),
            put(1, "b", 60, 70),
        ];
        assert_eq!(assert_violation(&ops), vec![2]);
    }

    #[test]
    fn newer_then_older_value() {
        let ops = [
            put(1, "a", 0, 10),
            put(1, "b", 20, 100),
            get(2, Some("b"), 30, 40),
            get(3, Some("a"), 50, 60),
        ];
        let w = assert_violation(&ops);
        assert_eq!(w, vec![0, 1, 2, 3]);
    }

    #[test]
    fn failed_write_is_read() {
        let ops = [
            put(1, "a", 0, 10),
            fail(put(1, "b", 20, 30)),
            get(2, Some("b"), 40, 50),
        ];
        assert_eq!(assert_violation(&ops), vec![2]);
    }

    #[test]
    fn sequential_reads_disagree_without_writes_between() {
        let ops = [
            put(1, "a", 0, 10),
            put(2, "b", 0, 10),
            get(3, Some("a"), 20, 30),
            get(3, Some("b"), 40, 50),
            get(4, Some("a"), 60, 70),
        ];
        let w = assert_violation(&ops);
        assert!(w.len() <= 4, "{w:?}");
        // The write is concurrent with both reads, so only the reads order it.
        let ops = [
            put(1, "a", 0, 100),
            get(2, Some("a"), 20, 30),
            get(2, None, 40, 50),
        ];
        assert_eq!(assert_violation(&ops), vec![0, 1, 2]);
        // Once the write has completed, it alone contradicts the second read.
        let ops = [
            put(1, "a", 0, 10),
            get(2, Some("a"), 20, 30),
            get(2, None, 40, 50),
        ];
        assert_eq!(assert_violation(&ops), vec![0, 2]);
    }

    #[test]
    fn more_violations() {
        // Read before the (unknown) write was even invoked.
        assert_violation(&[get(2, Some("b"), 0, 10), unknown(put(1, "b", 20, 30))]);
        // A delete is overwritten history.
        assert_violation(&[
            put(1, "a", 0, 10),
            del(1, 20, 30),
            get(2, Some("a"), 40, 50),
        ]);
        // Absent after a completed put: needs the key to start absent.
        let w = assert_violation(&[put(1, "a", 0, 10), get(2, None, 20, 30)]);
        assert_eq!(w, vec![0, 1]);
        // Absent, then present with no write, i.e. a read from the future.
        assert_violation(&[get(1, Some("a"), 0, 10), put(2, "a", 20, 30)]);
    }

    #[test]
    fn violation_on_one_key_only() {
        let ops = [
            on("x", put(1, "a", 0, 10)),
            on("y", put(2, "a", 0, 10)),
            on("x", get(1, Some("a"), 20, 30)),
            on("y", put(2, "b", 20, 30)),
            on("y", get(3, Some("a"), 40, 50)),
            on("x", get(3, Some("a"), 40, 50)),
        ];
        let r = check(&ops, big());
        assert_eq!(r.verdict, Verdict::Violation);
        assert_eq!(r.keys[0].verdict, Verdict::Linearizable);
        assert!(r.keys[0].window.is_empty());
        assert_eq!(r.keys[1].verdict, Verdict::Violation);
        assert_eq!(r.keys[1].window, vec![1, 3, 4]);
    }

    #[test]
    fn windows_are_one_minimal() {
        // Violation buried in a longer linearizable history.
        let mut ops = Vec::new();
        for i in 0..40u64 {
            let v = format!("v{i}");
            ops.push(put(1, &v, i * 100, i * 100 + 30));
            ops.push(get(2, Some(&v), i * 100 + 10, i * 100 + 60));
            ops.push(get(3, Some(&v), i * 100 + 40, i * 100 + 70));
        }
        ops.push(get(4, Some("v7"), 2050, 2060));
        let w = assert_violation(&ops);
        assert!(w.contains(&(ops.len() - 1)));
        assert!(w.len() <= 4, "{w:?}");
        // Dropping any one operation (that the keep-observed-writes rule allows) makes it
        // linearizable.
        let alone = pick(&ops, &w);
        for skip in 0..alone.len() {
            let o = &alone[skip];
            let observed = o.kind.is_write()
                && alone
                    .iter()
                    .any(|r| !r.kind.is_write() && r.value == o.value);
            if observed {
                continue;
            }
            let rest: Vec<Operation> = alone
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != skip)
                .map(|(_, o)| o.clone())
                .collect();
            assert_eq!(verdict(&rest), Verdict::Linearizable, "{rest:#?}");
        }
    }

    // ---- budget ----

    /// Many fully concurrent writes and an impossible read: exhausting the orders is
    /// exponential.
    fn pathological(writers: u64) -> Vec<Operation> {
        let mut ops: Vec<Operation> = (0..writers)
            .map(|p| put(p, &format!("v{p}"), 0, 1000))
            .collect();
        for p in 0..writers {
            ops.push(get(100 + p, Some(&format!("v{p}")), 0, 1000));
        }
        ops.push(get(999, Some("v0"), 2000, 2100));
        ops.push(get(998, Some("v1"), 2200, 2300));
        ops
    }

    #[test]
    fn budget_exhaustion_is_unknown_never_linearizable() {
        let ops = pathological(14);
        let r = check(&ops, Budget { max_steps: 2_000 });
        assert_eq!(r.verdict, Verdict::Unknown);
        assert_eq!(r.keys[0].verdict, Verdict::Unknown);
        assert!(r.keys[0].window.is_empty());
        assert!(r.steps <= 2_000);
        // Even an easy linearizable history is Unknown with a budget too small to finish.
        let easy = [
            put(1, "a", 0, 10),
            get(2, Some("a"), 20, 30),
            put(1, "b", 40, 50),
        ];
        assert_eq!(
            check(&easy, Budget { max_steps: 2 }).verdict,
            Verdict::Unknown
        );
        assert_eq!(
            check(&easy, Budget { max_steps: 0 }).verdict,
            Verdict::Unknown
        );
        // A violation elsewhere still wins over Unknown.
        let mut mixed = ops.clone();
        mixed.push(on("z", get(1, Some("ghost"), 0, 1)));
        let r = check(&mixed, Budget { max_steps: 2_000 });
        assert_eq!(r.verdict, Verdict::Violation);
        // With enough budget the pathological history is decided.
        let r = check(&pathological(8), big());
        assert_eq!(r.verdict, Verdict::Violation);
    }

    #[test]
    fn huge_budget_use_is_bounded_while_shrinking() {
        // A violating key whose shrinking would be expensive still returns quickly with
        // a verified (if larger) window.
        let ops = pathological(10);
        let r = check(&ops, Budget { max_steps: 200_000 });
        if r.verdict == Verdict::Violation {
            let w = &r.keys[0].window;
            assert!(!w.is_empty());
            assert_eq!(verdict(&pick(&ops, w)), Verdict::Violation);
        } else {
            assert_eq!(r.verdict, Verdict::Unknown);
        }
        assert!(r.steps <= 400_000);
    }

    // ---- a brute-force reference for tiny histories ----

    /// Tries every order: definite operations must all appear, unknown writes may.
    fn brute_force(ops: &[Operation]) -> bool {
        let live: Vec<&Operation> = ops
            .iter()
            .filter(|o| match o.outcome {
                Outcome::Ok => true,
                Outcome::Fail => false,
                Outcome::Unknown => o.kind.is_write(),
            })
            .collect();
        fn go(live: &[&Operation], done: &mut Vec<bool>, state: Option<&str>) -> bool {
            let all_definite = live
                .iter()
                .zip(done.iter())
                .all(|(o, &d)| d || o.outcome == Outcome::Unknown);
            if all_definite {
                return true;
            }
            for i in 0..live.len() {
                if done[i] {
                    continue;
                }
                // Every definite op that completed before this one was invoked goes first.
                let blocked = live.iter().enumerate().any(|(j, p)| {
                    !done[j]
                        && j != i
                        && p.outcome == Outcome::Ok
                        && p.complete_us.max(p.invoke_us) < live[i].invoke_us
                });
                if blocked {
                    continue;
                }
                let o = live[i];
                let next = match o.kind {
                    OpKind::Put => o.value.as_deref(),
                    OpKind::Delete => None,
                    OpKind::Get | OpKind::GetStale => {
                        if o.value.as_deref() != state {
                            continue;
                        }
                        state
                    }
                };
                done[i] = true;
                let ok = go(live, done, next);
                done[i] = false;
                if ok {
                    return true;
                }
            }
            false
        }
        let mut done = vec![false; live.len()];
        go(&live, &mut done, None)
    }

    #[test]
    fn agrees_with_brute_force_on_tiny_random_histories() {
        let mut disagreements = 0;
        let (mut lin, mut viol) = (0, 0);
        for seed in 0..6000 {
            let mut rng = Rng::new(seed);
            // Half the seeds are heavy on unknown writes, the hard part of the search.
            let unknown_pct = if seed % 2 == 0 { 10 } else { 35 };
            let n = 1 + rng.below(if seed % 2 == 0 { 7 } else { 9 }) as usize;
            let values = ["a", "b", "c"];
            let ops: Vec<Operation> = (0..n)
                .map(|i| {
                    let inv = rng.below(40);
                    let comp = inv + rng.below(25);
                    let v = values[rng.below(3) as usize];
                    let mut o = match rng.below(6) {
                        0 | 1 => put(i as u64, v, inv, comp),
                        2 => del(i as u64, inv, comp),
                        3 => get(i as u64, None, inv, comp),
                        _ => get(i as u64, Some(v), inv, comp),
                    };
                    o.outcome = if rng.chance(unknown_pct) {
                        Outcome::Unknown
                    } else if rng.chance(8) {
                        Outcome::Fail
                    } else {
                        Outcome::Ok
                    };
                    o
                })
                .collect();
            let expected = brute_force(&ops);
            let r = check(&ops, big());
            let got = r.verdict == Verdict::Linearizable;
            assert_ne!(r.verdict, Verdict::Unknown);
            if got != expected {
                disagreements += 1;
                eprintln!(
                    "seed {seed}: brute force {expected}, checker {:?}\n{ops:#?}",
                    r.verdict
                );
            }
            if expected {
                lin += 1;
            } else {
                viol += 1;
                let w = pick(&ops, &r.keys[0].window);
                assert!(
                    !brute_force(&w),
                    "window of seed {seed} is linearizable: {w:#?}"
                );
            }
        }
        assert_eq!(disagreements, 0);
        assert!(lin > 1000 && viol > 1000, "lin {lin} viol {viol}");
    }

    // ---- randomised histories from a sequential model ----

    /// SplitMix64: a tiny seeded PRNG, enough for test data.
    pub(crate) struct Rng(u64);

    impl Rng {
        pub(crate) fn new(seed: u64) -> Rng {
            Rng(seed.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ 0x1234_5678)
        }
        pub(crate) fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(1);
            mix(self.0)
        }
        /// Uniform-ish in `0..n` (n > 0).
        pub(crate) fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        /// True with probability `percent`/100.
        pub(crate) fn chance(&mut self, percent: u64) -> bool {
            self.below(100) < percent
        }
    }

    /// Shape of a simulated run.
    #[derive(Clone, Copy)]
    pub(crate) struct Sim {
        pub clients: u64,
        pub keys: u64,
        pub ops: usize,
        /// Max latency in µs; think time between a client's ops is up to a fifth of it.
        pub latency: u64,
        /// Put values come from this many distinct strings per key (0 = all unique).
        pub distinct_values: u64,
        /// Percent of writes with an unknown outcome, and of ops that fail.
        pub unknown_pct: u64,
        pub fail_pct: u64,
    }

    impl Sim {
        pub(crate) fn small() -> Sim {
            Sim {
                clients: 4,
                keys: 2,
                ops: 60,
                latency: 200,
                distinct_values: 0,
                unknown_pct: 8,
                fail_pct: 5,
            }
        }
    }

    /// Simulates clients against an atomic register: each op that takes effect does so at
    /// one random instant (its linearization point) inside its interval (for unknown
    /// writes: any time after invocation, or never). The result is linearizable by
    /// construction.
    pub(crate) fn simulate(seed: u64, sim: Sim) -> Vec<Operation> {
        let mut rng = Rng::new(seed);
        let mut ops: Vec<Operation> = Vec::with_capacity(sim.ops);
        let mut points: Vec<Option<u64>> = Vec::with_capacity(sim.ops);
        let mut clock: Vec<u64> = (0..sim.clients).map(|_| rng.below(50)).collect();
        let mut counter = 0u64;
        while ops.len() < sim.ops {
            // The client that is free earliest goes next, so clients interleave.
            let p = (0..sim.clients)
                .min_by_key(|&c| (clock[c as usize], c))
                .unwrap_or(0);
            let inv = clock[p as usize];
            let latency = 1 + rng.below(sim.latency);
            let comp = inv + latency;
            clock[p as usize] = comp + rng.below(sim.latency / 5 + 1);
            let key = format!("k{}", rng.below(sim.keys));
            let roll = rng.below(100);
            let (kind, value) = if roll < 40 {
                counter += 1;
                let v = if sim.distinct_values == 0 {
                    format!("v{counter}")
                } else {
                    format!("v{}", rng.below(sim.distinct_values))
                };
                (OpKind::Put, Some(v))
            } else if roll < 55 {
                (OpKind::Delete, None)
            } else if roll < 90 {
                (OpKind::Get, None)
            } else {
                (OpKind::GetStale, None)
            };
            let mut outcome = Outcome::Ok;
            let mut point = Some(inv + rng.below(latency + 1));
            if rng.chance(sim.fail_pct) {
                outcome = Outcome::Fail;
                point = None;
            } else if rng.chance(sim.unknown_pct) {
                outcome = Outcome::Unknown;
                if kind.is_write() {
                    // May land after the client gave up, or never.
                    point = rng
                        .chance(50)
                        .then(|| inv + rng.below(latency + 3 * sim.latency));
                } else {
                    point = None;
                }
            }
            ops.push(Operation {
                process: p,
                kind,
                key,
                value,
                invoke_us: inv,
                complete_us: comp,
                outcome,
                answered_by: 0,
            });
            points.push(point);
        }
        // Replay the effective ops in linearization order to learn what reads returned.
        let mut order: Vec<usize> = (0..ops.len()).filter(|&i| points[i].is_some()).collect();
        order.sort_by_key(|&i| (points[i], i));
        let mut register: HashMap<String, String> = HashMap::new();
        for i in order {
            let o = &mut ops[i];
            match o.kind {
                OpKind::Put => {
                    register.insert(o.key.clone(), o.value.clone().unwrap_or_default());
                }
                OpKind::Delete => {
                    register.remove(&o.key);
                }
                OpKind::Get | OpKind::GetStale => o.value = register.get(&o.key).cloned(),
            }
        }
        // Failed and unknown reads got no (trustworthy) answer: give them junk.
        for o in &mut ops {
            if !o.kind.is_write() && o.outcome != Outcome::Ok && rng.chance(50) {
                o.value = Some("junk".into());
            }
        }
        ops
    }

    #[test]
    fn random_linearizable_histories_pass() {
        let mut steps = 0;
        for seed in 0..400 {
            let sim = match seed % 4 {
                0 => Sim::small(),
                1 => Sim {
                    distinct_values: 3,
                    ..Sim::small()
                },
                2 => Sim {
                    clients: 8,
                    keys: 3,
                    ops: 200,
                    latency: 400,
                    ..Sim::small()
                },
                _ => Sim {
                    clients: 6,
                    keys: 1,
                    ops: 120,
                    distinct_values: 2,
                    unknown_pct: 20,
                    ..Sim::small()
                },
            };
            let ops = simulate(seed, sim);
            let r = check(&ops, big());
            assert_eq!(r.verdict, Verdict::Linearizable, "seed {seed}");
            assert!(r.keys.iter().all(|k| k.window.is_empty()));
            steps += r.steps;
        }
        assert!(steps > 0);
    }

    /// Makes one Ok read of `ops` provably non-linearizable; returns its index.
    pub(crate) fn corrupt(ops: &mut [Operation], rng: &mut Rng) -> Option<usize> {
        let reads: Vec<usize> = (0..ops.len())
            .filter(|&i| !ops[i].kind.is_write() && ops[i].outcome == Outcome::Ok)
            .collect();
        if reads.is_empty() {
            return None;
        }
        let r = reads[rng.below(reads.len() as u64) as usize];
        if rng.chance(30) {
            ops[r].value = Some("never-written".into());
            return Some(r);
        }
        // A stale value: an Ok write `w` of another value completed before the read began,
        // and every write of the chosen value (if any can take effect) completed before `w`
        // began, so `w` always overwrites it first. The latest-invoked such `w` leaves the
        // most choice.
        let key = ops[r].key.clone();
        let writes: Vec<&Operation> = ops
            .iter()
            .filter(|o| o.key == key && o.outcome != Outcome::Fail && o.kind.is_write())
            .collect();
        let value = |o: &Operation| match o.kind {
            OpKind::Delete => None,
            _ => o.value.clone(),
        };
        let w = writes
            .iter()
            .filter(|w| w.outcome == Outcome::Ok && w.complete_us < ops[r].invoke_us)
            .max_by_key(|w| w.invoke_us);
        let mut choices: Vec<Option<String>> = Vec::new();
        if let Some(w) = w {
            // The last moment each value may have been written (unknown writes: never over).
            let mut last_end: HashMap<Option<String>, u64> = HashMap::new();
            last_end.insert(None, 0);
            for x in &writes {
                let end = match x.outcome {
                    Outcome::Ok => x.complete_us.max(x.invoke_us),
                    _ => u64::MAX,
                };
                let e = last_end.entry(value(x)).or_insert(0);
                *e = (*e).max(end);
            }
            let mut values: Vec<(Option<String>, u64)> = last_end.into_iter().collect();
            values.sort();
            choices = values
                .into_iter()
                .filter(|(v, end)| *v != value(w) && *end < w.invoke_us)
                .map(|(v, _)| v)
                .collect();
        }
        if choices.is_empty() {
            ops[r].value = Some("never-written".into());
        } else {
            ops[r].value = choices[rng.below(choices.len() as u64) as usize].clone();
        }
        Some(r)
    }

    #[test]
    fn corrupted_histories_fail_with_a_window_holding_the_bad_read() {
        let mut tested = 0;
        for seed in 0..300 {
            let sim = match seed % 3 {
                0 => Sim::small(),
                1 => Sim {
                    distinct_values: 3,
                    ..Sim::small()
                },
                _ => Sim {
                    clients: 8,
                    keys: 2,
                    ops: 160,
                    ..Sim::small()
                },
            };
            let mut ops = simulate(seed, sim);
            let mut rng = Rng::new(seed ^ 0xdead);
            let Some(bad) = corrupt(&mut ops, &mut rng) else {
                continue;
            };
            tested += 1;
            let r = check(&ops, big());
            assert_eq!(r.verdict, Verdict::Violation, "seed {seed}");
            let key = r.keys.iter().find(|k| k.key == ops[bad].key).unwrap();
            assert_eq!(key.verdict, Verdict::Violation);
            assert!(
                key.window.contains(&bad),
                "seed {seed}: {:?} lacks {bad}",
                key.window
            );
            assert!(key.window.len() <= key.ops);
            let alone = pick(&ops, &key.window);
            assert_eq!(verdict(&alone), Verdict::Violation, "seed {seed}");
            // The other keys are untouched and still pass.
            for k in r.keys.iter().filter(|k| k.key != ops[bad].key) {
                assert_eq!(k.verdict, Verdict::Linearizable);
            }
        }
        assert!(tested > 250);
    }

    #[test]
    fn time_slices_find_late_violations() {
        // Force the slice path (no quick attempt) on long single-key histories.
        let mut found = 0;
        for seed in 0..12 {
            let sim = Sim {
                clients: 8,
                keys: 1,
                ops: 1_500,
                ..Sim::small()
            };
            let ops = simulate(seed, sim);
            let indices: Vec<usize> = (0..ops.len()).collect();
            let mut steps = 0;
            let history = KeyHistory::new(&ops, &indices);
            let (found_verdict, window) = check_key(&ops, &history, big(), 0, &mut steps);
            assert_eq!(found_verdict, Verdict::Linearizable, "seed {seed}");
            assert!(window.is_empty());

            let mut bad = ops.clone();
            let i = corrupt(&mut bad, &mut Rng::new(seed)).unwrap();
            let history = KeyHistory::new(&bad, &indices);
            let (found_verdict, window) = check_key(&bad, &history, big(), 0, &mut steps);
            assert_eq!(found_verdict, Verdict::Violation, "seed {seed}");
            assert!(window.contains(&i), "seed {seed}");
            assert_eq!(verdict(&pick(&bad, &window)), Verdict::Violation);
            found += 1;
        }
        assert_eq!(found, 12);
    }

    // ---- speed ----

    /// 10 clients, `keys` keys, latencies up to 2 ms with think times up to 0.4 ms, so
    /// about eight operations are in flight at any time.
    pub(crate) fn realistic(ops: usize, keys: u64, unknown_pct: u64) -> Sim {
        Sim {
            clients: 10,
            keys,
            ops,
            latency: 2_000,
            distinct_values: 0,
            unknown_pct,
            fail_pct: 2,
        }
    }

    /// Median seconds per call of `f` over `rounds` calls.
    fn median_secs(rounds: usize, mut f: impl FnMut()) -> f64 {
        let mut times: Vec<f64> = (0..rounds)
            .map(|_| {
                let start = std::time::Instant::now();
                f();
                start.elapsed().as_secs_f64()
            })
            .collect();
        times.sort_by(f64::total_cmp);
        times[rounds / 2]
    }

    #[test]
    #[ignore = "benchmark: cargo test --release -- --ignored --nocapture"]
    fn speed_10k_operations() {
        let scenarios = [
            ("20 keys, 2% unknown writes", realistic(10_000, 20, 2)),
            ("10 keys, 5% unknown writes", realistic(10_000, 10, 5)),
            ("50 keys, 2% unknown writes", realistic(10_000, 50, 2)),
            (
                "10 keys, 3 values per key",
                Sim {
                    distinct_values: 3,
                    ..realistic(10_000, 10, 5)
                },
            ),
            ("1 hot key, 2% unknown writes", realistic(10_000, 1, 2)),
        ];
        for (seed, (name, sim)) in scenarios.into_iter().enumerate() {
            let ops = simulate(seed as u64 + 42, sim);
            let mut report = check(&ops, Budget::default());
            assert_eq!(report.verdict, Verdict::Linearizable, "{name}");
            let secs = median_secs(15, || report = check(&ops, Budget::default()));
            println!(
                "{name}: linearizable, {} ops checked in {:.2} ms ({} steps): {:.0} ops/s",
                report.ops_checked,
                secs * 1e3,
                report.steps,
                report.ops_checked as f64 / secs
            );

            // The same history with one corrupted read: verdict plus window shrinking.
            let mut bad = ops.clone();
            let i = corrupt(&mut bad, &mut Rng::new(7 + seed as u64)).unwrap();
            let mut report = check(&bad, Budget::default());
            assert_eq!(report.verdict, Verdict::Violation, "{name}");
            let secs = median_secs(15, || report = check(&bad, Budget::default()));
            let key = report.keys.iter().find(|k| k.key == bad[i].key).unwrap();
            assert!(key.window.contains(&i));
            println!(
                "{name}: violation, {:.2} ms including shrinking {} ops to a {}-op window ({} steps): {:.0} ops/s",
                secs * 1e3,
                key.ops,
                key.window.len(),
                report.steps,
                report.ops_checked as f64 / secs
            );
        }
    }
}
