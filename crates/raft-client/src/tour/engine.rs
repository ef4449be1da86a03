//! The step engine of the tour: it shows a step (what is about to happen, what to watch,
//! the commands it will type), waits for the learner, types the commands through the same
//! client a learner uses, then checks that the cluster really did what the text claims,
//! waiting for that state up to a deadline and saying what it saw instead if it never comes.
//!
//! The engine knows the cluster only through [`TourCluster`], so it can be tested against a
//! fake one. It never assumes timing: every claim is a state it polls for.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::claims::{agreed_leader, describe_nodes};

use tokio::sync::mpsc;
use tokio::time::Instant;

/// A node as the tour sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeView {
    /// Its id.
    pub id: u64,
    /// Its client API address.
    pub addr: String,
    /// Whether it answered.
    pub up: bool,
    /// `Leader`, `Follower`, ...
    pub role: String,
    /// Its term.
    pub term: u64,
    /// The leader it knows (0: none).
    pub leader: u64,
    /// Commit, applied and last index.
    pub commit: u64,
    /// Applied index.
    pub applied: u64,
    /// Last index.
    pub last: u64,
    /// Frozen by a fault.
    pub frozen: bool,
    /// Latest snapshot index.
    pub snapshot: u64,
    /// A member of the cluster (not a node waiting to be added).
    pub member: bool,
    /// Elections it started (pre-vote or vote) in the last minute.
    pub elections: u32,
    /// The node it voted for in its term (0: none).
    pub vote: u64,
}

/// What typing a command did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ran {
    /// It succeeded (the one-shot command would have exited 0).
    pub ok: bool,
    /// Lines to show under the command.
    pub lines: Vec<String>,
    /// A write that the cluster had already applied (a retry): not applied again.
    pub duplicate: bool,
}

/// The cluster, as the tour uses it.
pub trait TourCluster: Send + Sync + 'static {
    /// Every node's view, down ones included (as far as addresses are known).
    fn nodes(&self) -> impl Future<Output = Vec<NodeView>> + Send;
    /// Types `line` as a learner would in the client; what it did.
    fn run(&self, line: &str) -> impl Future<Output = Ran> + Send;
    /// The members and their roles (`voter`, `learner`, ...), as the leader knows them.
    fn members(&self) -> impl Future<Output = Vec<(u64, String)>> + Send;
    /// A read of `key`: linearizable through the cluster, or of node `at`'s own copy.
    /// `Ok(None)`: not found; `Err`: no answer (a refusal).
    fn read(
        &self,
        key: &str,
        at: Option<u64>,
    ) -> impl Future<Output = Result<Option<String>, String>> + Send;
    /// In step mode, every message the members hold, oldest first (none otherwise).
    fn held(&self) -> impl Future<Output = Vec<HeldView>> + Send;
}

/// A message held in step mode, as the tour sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeldView {
    /// The node holding it (its sender).
    pub node: u64,
    /// Its id on that node (`step next NODE ID` delivers it).
    pub hold_id: u64,
    /// `MsgAppend`, `MsgRequestVote`, ...
    pub kind: String,
    /// Its sender.
    pub from: u64,
    /// Its addressee.
    pub to: u64,
}

/// The nodes a [`Held`] selector accepts at one end of a message (its sender or its
/// addressee).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Any node.
    Any,
    /// This node.
    Is(Var),
    /// Any node but this one.
    Not(Var),
    /// One of these.
    In(&'static [Var]),
}

/// Held messages chosen by kind, sender and addressee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    /// Their kinds (`MsgAppend`, ...); empty: every kind.
    pub kinds: &'static [&'static str],
    /// Their sender.
    pub from: Side,
    /// Their addressee.
    pub to: Side,
}

impl Held {
    /// The held messages of these kinds (none: every kind) between these ends.
    pub const fn new(kinds: &'static [&'static str], from: Side, to: Side) -> Held {
        Held { kinds, from, to }
    }

    /// Every held message.
    pub const ALL: Held = Held {
        kinds: &[],
        from: Side::Any,
        to: Side::Any,
    };
}

/// A name a step gives to something it noted, filled into texts and commands as `{name}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Var {
    /// The current leader (set by noting it, and by [`Expect::NewLeader`]).
    Leader,
    /// A leader noted before a fault.
    OldLeader,
    /// A follower.
    Follower,
    /// Another follower.
    Other,
    /// A term noted before an election.
    Term,
    /// A node id the next node added takes (noted with [`Pick::NextId`]).
    NewNode,
    /// The peer port of that node: the highest node's plus one, as `./playground --add`
    /// gives it (noted with [`Pick::NextId`] too).
    NewPeerPort,
    /// A log index noted.
    Index,
    /// A node's election count (last minute) noted.
    Elections,
    /// The nodes playing the Raft paper's S1 ... S5 (Figure 8).
    S1,
    /// S2.
    S2,
    /// S3.
    S3,
    /// S4.
    S4,
    /// S5.
    S5,
    /// A node waiting to be added (noted with [`Pick::Waiting`]).
    Spare,
    /// Another node waiting to be added.
    Spare2,
    /// The peer port of [`Var::Spare`] (noted with [`Pick::PeerPortOf`]).
    SparePort,
    /// The peer port of [`Var::Spare2`].
    Spare2Port,
}

impl Var {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Var::Leader => "leader",
            Var::OldLeader => "old_leader",
            Var::Follower => "follower",
            Var::Other => "other",
            Var::Term => "term",
            Var::NewNode => "new",
            Var::NewPeerPort => "new_peer_port",
            Var::Index => "index",
            Var::Elections => "elections",
            Var::S1 => "s1",
            Var::S2 => "s2",
            Var::S3 => "s3",
            Var::S4 => "s4",
            Var::S5 => "s5",
            Var::Spare => "spare",
            Var::Spare2 => "spare2",
            Var::SparePort => "spare_port",
            Var::Spare2Port => "spare2_port",
        }
    }
}

/// What to note.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// The leader's id.
    Leader,
    /// A follower's id.
    Follower,
    /// A follower other than [`Var::Follower`].
    OtherFollower,
    /// The leader's term.
    Term,
    /// The last index of a node (by var).
    LastIndexOf(Var),
    /// One more than the highest node id known.
    NextId,
    /// The elections a node (by var) started in the last minute.
    ElectionsOf(Var),
    /// A follower that voted for the leader in its term.
    LeadersVoter,
    /// The n-th (from 1) node that runs and waits to be added (never a member), by id.
    Waiting(usize),
    /// The peer port of a node (by var): its client port minus 1000.
    PeerPortOf(Var),
    /// The n-th (from 1) member by id other than a node (by var).
    MemberBut(Var, usize),
}

/// What a step types or waits for, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Act {
    /// Type a command, as the learner would (`{vars}` filled in), and show what it said.
    Type(&'static str),
    /// Type a command but do not wait for it; [`Expect::Background`] waits.
    Background(&'static str),
    /// Remember something about the cluster now.
    Note(Var, Pick),
    /// Wait for a state before going on (within the step's deadline).
    Until(Expect),
    /// Write `n` keys `prefix-1..n`, shown as one line.
    Writes(&'static str, u64),
    /// In step mode: wait until at least `n` held messages match, then deliver every one
    /// that does (`step next NODE ID` each), oldest first.
    Deliver(Held, usize),
    /// In step mode: wait until at least `n` held messages match, then drop every one that
    /// does (`step drop NODE ID` each).
    Drop(Held, usize),
    /// In step mode: round after round, deliver every held message that matches and drop
    /// the rest, until the claim holds (within the step's deadline).
    DeliverUntil(Held, Expect),
    /// In step mode: `step tick ID` until the node (by var) campaigns (a Candidate).
    Campaign(Var),
}

/// A claim about the cluster that a step checks, waiting for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// No check.
    Nothing,
    /// Every claim.
    All(Vec<Expect>),
    /// One leader that every answering, unfrozen node follows, other than `not` if given;
    /// it becomes [`Var::Leader`] and its term [`Var::Term`].
    NewLeader {
        /// A node that must not be it.
        not: Option<Var>,
    },
    /// Node `node` follows a leader in a term above [`Var::Term`].
    FollowsInHigherTerm(Var),
    /// Every answering, unfrozen member has applied the same index, the leader's commit.
    Converged,
    /// A linearizable read of `key` returns `value` (`None`: not found).
    Reads(&'static str, Option<&'static str>),
    /// A read of node `node`'s own copy of `key` returns `value`.
    StaleAt(Var, &'static str, Option<&'static str>),
    /// A linearizable read at node `node` alone is refused.
    RefusedAt(Var, &'static str),
    /// Node `node` has entries past its commit (uncommitted, yellow in its log panel).
    Uncommitted(Var),
    /// Node `node` has no uncommitted entries.
    NoneUncommitted(Var),
    /// Node `node`'s last index is above the noted [`Var::Index`].
    LastAbove(Var),
    /// Node `node` has applied the leader's last index; says whether it took a snapshot.
    CaughtUp(Var),
    /// Node `node` has applied at least 100 entries fewer than the leader.
    FarBehind(Var),
    /// Node `node`'s log ends before the leader's.
    LogBehind(Var),
    /// Node `node` is the leader every answering, unfrozen member follows; its term becomes
    /// [`Var::Term`].
    LeaderIs(Var),
    /// Node `id` answers (it runs), is not a member, and never was (it applied nothing).
    Waiting(Var),
    /// Node `id` is a member with this role.
    Member(Var, &'static str),
    /// Node `id` is not a member.
    NotMember(Var),
    /// The background command finished and succeeded; with `duplicate`, as a retry the
    /// cluster had already applied.
    Background {
        /// It must be a retry found already applied.
        duplicate: bool,
    },
    /// The last command typed printed this.
    Said(&'static str),
    /// The last command typed succeeded.
    Succeeded,
    /// Node `node` started at least this many elections (pre-vote or vote) since
    /// [`Var::Elections`] was noted (counted over the last minute: the note is lowered to
    /// the lowest count seen as older elections drop out, so a step that checks this
    /// needs a deadline past a minute when the node campaigned just before).
    Campaigned(Var, u32),
    /// Node `node`'s term is at least [`Var::Term`] plus this.
    TermAbove(Var, u64),
    /// The noted [`Var::Leader`] still leads in [`Var::Term`], and node `node` has not
    /// raised its term: nothing changed.
    Steady(Var),
    /// The nodes other than `node` follow one leader, not `node`, in a term above
    /// [`Var::Term`]; it becomes [`Var::Leader`].
    OthersLead(Var),
    /// [`Expect::OthersLead`], while node `node` still says it leads, in [`Var::Term`]:
    /// two leaders, in two terms.
    StillLeads(Var),
    /// Node `node` answers, in [`Var::Term`], having voted for nobody in it.
    VotedForNobody(Var),
    /// Every answering member's log ends at one index, committed everywhere (and applied
    /// at the leader).
    Settled,
    /// Node `node`'s last index is [`Var::Index`] plus this.
    LastIs(Var, u64),
    /// No answering member's commit index reaches [`Var::Index`] plus this.
    CommittedNowhere(u64),
    /// Node `node` has this role (`Leader`, `Follower`, `Candidate`).
    Role(Var, &'static str),
    /// Node `node` leads, with a commit index of at least [`Var::Index`] plus this, and
    /// node `other`'s log ends where its own does.
    LeadsWith {
        /// The leader.
        node: Var,
        /// How far past [`Var::Index`] it has committed.
        commit: u64,
        /// A node whose log must end at the leader's last index.
        other: Var,
    },
    /// The background command finished, failed, and said this.
    BackgroundSaid(&'static str),
    /// Both nodes say they lead, in one term.
    TwoLeaders(Var, Var),
}

/// A step of a chapter.
#[derive(Debug, Clone)]
pub struct Step {
    /// Two or three lines: what is about to happen, what to watch in which panel.
    pub say: &'static str,
    /// What it types and waits for, in order.
    pub acts: Vec<Act>,
    /// What must then be true.
    pub expect: Expect,
    /// How long the claim may take to come true.
    pub within: Duration,
    /// A question the learner may answer before the step acts ("predict, then watch").
    pub ask: Option<Ask>,
}

impl Step {
    /// This step, asking `ask` before it acts.
    pub fn with(self, ask: Ask) -> Self {
        Self {
            ask: Some(ask),
            ..self
        }
    }
}

/// "Predict, then watch": a question a step asks before it acts, answered by key (1-4);
/// once the step's check has passed, the tour says whether the prediction held and why.
/// The right answer is the one the step's check proves.
#[derive(Debug, Clone)]
pub struct Ask {
    /// The question (`{vars}` filled in).
    pub question: &'static str,
    /// Two to four answers (`{vars}` filled in).
    pub answers: &'static [&'static str],
    /// The right one (from 0).
    pub right: usize,
    /// Why, said after the check.
    pub why: &'static str,
}

/// A chapter: a short story in steps.
#[derive(Debug, Clone)]
pub struct Chapter {
    /// Its title.
    pub title: &'static str,
    /// Its steps.
    pub steps: Vec<Step>,
}

/// A key the learner pressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// Enter: do the step / go on.
    Next,
    /// b: back to the start of the chapter before.
    Back,
    /// q or Esc: leave the tour.
    Leave,
    /// 1-9: an answer to the step's question (from 1).
    Answer(u8),
}

/// The kind of a line the tour shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// A chapter's title.
    Title,
    /// The step's text.
    Text,
    /// A command typed.
    Command,
    /// What a command said.
    Output,
    /// A check that passed.
    Passed,
    /// A check that failed, or an error.
    Failed,
    /// What the keys do now.
    Prompt,
}

/// A line the tour shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Its kind.
    pub tone: Tone,
    /// Its text.
    pub text: String,
}

/// What a tour ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Every chapter played.
    Finished,
    /// The learner left.
    Left,
}

/// Plays `chapters` from `start`, showing lines through `show` and reading keys from `keys`.
/// Every chapter ends healed (the last steps heal, and so does leaving or going back).
pub async fn play<C: TourCluster>(
    cluster: Arc<C>,
    chapters: &[Chapter],
    start: usize,
    mut keys: mpsc::UnboundedReceiver<Key>,
    show: &(dyn Fn(Line) + Sync),
) -> Ended {
    let mut tour = Tour {
        cluster,
        vars: HashMap::new(),
        background: None,
        background_ran: None,
        last_said: Vec::new(),
        last_ok: false,
        lab: false,
        stepping: false,
        show,
    };
    let mut chapter = start.min(chapters.len());
    'chapters: while chapter < chapters.len() {
        let ch = &chapters[chapter];
        tour.say(
            Tone::Title,
            format!(
                "Chapter {} of {}: {}",
                chapter + 1,
                chapters.len(),
                ch.title
            ),
        );
        for (i, step) in ch.steps.iter().enumerate() {
            // What the step notes first (who leads, ...) is noted before its text is shown,
            // so the text and the prompt name the right nodes.
            let first = step
                .acts
                .iter()
                .position(|a| !matches!(a, Act::Note(..)))
                .unwrap_or(step.acts.len());
            let (notes, acts) = step.acts.split_at(first);
            let mut attempt = 0;
            // The learner's answer to the step's question (from 0), once given.
            let mut predicted: Option<Option<usize>> = None;
            loop {
                attempt += 1;
                let deadline = Instant::now() + step.within;
                let noted = match unless_left(tour.act(notes, deadline), &mut keys).await {
                    Some(noted) => noted,
                    None => return tour.leave().await,
                };
                let prompt = if !noted {
                    "Enter: try the step again".to_string()
                } else {
                    if attempt == 1 {
                        tour.say(
                            Tone::Text,
                            format!("[{}/{}] {}", i + 1, ch.steps.len(), tour.fill(step.say)),
                        );
                        if let Some(ask) = &step.ask {
                            tour.ask(ask);
                        }
                    }
                    let doing = tour
                        .typed(acts)
                        .map_or("check".to_string(), |t| format!("type {t}"));
                    match &step.ask {
                        Some(ask) if predicted.is_none() => format!(
                            "1-{}: your prediction · Enter: {doing} without one",
                            ask.answers.len()
                        ),
                        _ if attempt == 1 => format!("Enter: {doing}"),
                        _ => format!("Enter: try the step again ({doing})"),
                    }
                };
                tour.say(
                    Tone::Prompt,
                    format!(
                        // The keys before the commands, which may run long: on a small
                        // terminal it is the end of the line that is cut.
                        "{}.{}/{} · b: back a chapter · q: leave the tour · {prompt}",
                        chapter + 1,
                        i + 1,
                        ch.steps.len()
                    ),
                );
                let answers = step.ask.as_ref().map_or(0, |a| a.answers.len());
                let key = loop {
                    match keys.recv().await {
                        // An answer only counts where there is a question to answer.
                        Some(Key::Answer(n)) if noted && predicted.is_none() => {
                            let n = usize::from(n);
                            if (1..=answers).contains(&n) {
                                tour.say(Tone::Output, format!("  your prediction: {n}"));
                                predicted = Some(Some(n - 1));
                                break Some(Key::Next);
                            }
                        }
                        Some(Key::Answer(_)) => {}
                        other => break other,
                    }
                };
                if noted && predicted.is_none() {
                    predicted = Some(None);
                }
                match key {
                    Some(Key::Next) => {}
                    Some(Key::Answer(_)) => {}
                    Some(Key::Back) => {
                        tour.heal().await;
                        chapter = chapter.saturating_sub(1);
                        continue 'chapters;
                    }
                    Some(Key::Leave) | None => return tour.leave().await,
                }
                if !noted {
                    continue;
                }
                // q or Esc leaves even while the step runs or waits; Enter and b wait for it.
                let deadline = Instant::now() + step.within;
                let run = tour.run_step(acts, &step.expect, deadline);
                match unless_left(run, &mut keys).await {
                    Some(true) => {
                        if let Some(ask) = &step.ask {
                            tour.tell(ask, predicted.flatten());
                        }
                        break;
                    }
                    Some(false) => {}
                    None => return tour.leave().await,
                }
            }
        }
        tour.heal().await;
        chapter += 1;
    }
    tour.say(
        Tone::Title,
        "The end of the tour: the cluster is healed and yours to break.".into(),
    );
    Ended::Finished
}

/// `fut`, unless the learner leaves (q, Esc, or the keys' sender gone) first: `None` then.
/// Other keys pressed meanwhile are ignored.
async fn unless_left<T>(
    fut: impl Future<Output = T>,
    keys: &mut mpsc::UnboundedReceiver<Key>,
) -> Option<T> {
    tokio::pin!(fut);
    loop {
        tokio::select! {
            done = &mut fut => return Some(done),
            key = keys.recv() => if matches!(key, Some(Key::Leave) | None) {
                return None;
            },
        }
    }
}

/// A tour being played: what it noted and what runs in the background.
pub(super) struct Tour<'a, C: TourCluster> {
    pub(super) cluster: Arc<C>,
    pub(super) vars: HashMap<Var, u64>,
    pub(super) background: Option<tokio::task::JoinHandle<Ran>>,
    /// What the background command did, once it finished (kept for checks made again).
    pub(super) background_ran: Option<Ran>,
    /// What the last command typed printed.
    pub(super) last_said: Vec<String>,
    /// Whether the last command typed succeeded.
    pub(super) last_ok: bool,
    /// A lab command was typed: the heal turns every protection back on.
    pub(super) lab: bool,
    /// `step on` was typed: the heal turns step mode off.
    pub(super) stepping: bool,
    pub(super) show: &'a (dyn Fn(Line) + Sync),
}

impl<C: TourCluster> Tour<'_, C> {
    pub(super) fn say(&self, tone: Tone, text: String) {
        (self.show)(Line { tone, text });
    }

    pub(super) fn var(&self, v: Var) -> u64 {
        self.vars.get(&v).copied().unwrap_or(0)
    }

    /// `text` with `{leader}`, `{follower}`, ... filled in, and `{index+1}` (a noted value
    /// plus 1 to 3) too.
    fn fill(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (v, value) in &self.vars {
            out = out.replace(&format!("{{{}}}", v.name()), &value.to_string());
            for plus in 1..=3 {
                out = out.replace(
                    &format!("{{{}+{plus}}}", v.name()),
                    &(value + plus).to_string(),
                );
            }
        }
        out
    }

    /// Shows a step's question and its numbered answers.
    fn ask(&self, ask: &Ask) {
        self.say(
            Tone::Text,
            format!(
                "Predict (a number; Enter goes on without): {}",
                self.fill(ask.question)
            ),
        );
        for (n, a) in ask.answers.iter().enumerate() {
            self.say(Tone::Text, format!("  {}. {}", n + 1, self.fill(a)));
        }
    }

    /// Once the step's check passed: whether the prediction held, and why.
    fn tell(&self, ask: &Ask, predicted: Option<usize>) {
        let right = self.fill(ask.answers.get(ask.right).copied().unwrap_or_default());
        let why = self.fill(ask.why);
        match predicted {
            Some(p) if p == ask.right => {
                self.say(
                    Tone::Passed,
                    format!("✓ your prediction held: {right}. {why}"),
                );
            }
            Some(p) => self.say(
                Tone::Text,
                format!(
                    "✗ not this time: you said {}, and it was {}: {right}. {why}",
                    p + 1,
                    ask.right + 1
                ),
            ),
            None => self.say(
                Tone::Text,
                format!("The answer was {}: {right}. {why}", ask.right + 1),
            ),
        }
    }

    /// Does a step's acts, then checks its claim; false (having said why) when either fails.
    async fn run_step(&mut self, acts: &[Act], expect: &Expect, deadline: Instant) -> bool {
        self.act(acts, deadline).await && self.check(expect, deadline).await
    }

    /// The commands `acts` type, filled in and joined by " ; " (None: none).
    fn typed(&self, acts: &[Act]) -> Option<String> {
        let typed: Vec<String> = acts
            .iter()
            .filter_map(|a| match a {
                Act::Type(c) | Act::Background(c) => Some(self.fill(c)),
                Act::Writes(prefix, n) => Some(format!("put {prefix}-1 v … put {prefix}-{n} v")),
                _ => None,
            })
            .collect();
        (!typed.is_empty()).then(|| typed.join(" ; "))
    }

    /// Heals and says so: leaving the tour.
    async fn leave(&mut self) -> Ended {
        self.heal().await;
        self.say(
            Tone::Title,
            "You left the tour; the cluster is healed. tour N picks it up at chapter N.".into(),
        );
        Ended::Left
    }

    /// Does the acts in order; false (having said why) when one could not be done.
    async fn act(&mut self, acts: &[Act], deadline: Instant) -> bool {
        for act in acts {
            match act {
                Act::Type(c) => {
                    let line = self.fill(c);
                    self.say(Tone::Command, format!("› {line}"));
                    self.lab |= line.starts_with("lab");
                    self.stepping |= line == "step on";
                    let ran = self.cluster.run(&line).await;
                    for l in &ran.lines {
                        self.say(Tone::Output, format!("  {l}"));
                    }
                    self.last_said = ran.lines;
                    self.last_ok = ran.ok;
                }
                Act::Background(c) => {
                    let line = self.fill(c);
                    self.say(
                        Tone::Command,
                        format!("› {line}   (running in the background)"),
                    );
                    let cluster = Arc::clone(&self.cluster);
                    self.background_ran = None;
                    self.background = Some(tokio::spawn(async move { cluster.run(&line).await }));
                }
                Act::Writes(prefix, n) => {
                    self.say(
                        Tone::Command,
                        format!("› put {prefix}-1 v … put {prefix}-{n} v   ({n} writes)"),
                    );
                    let mut failed = 0;
                    for i in 1..=*n {
                        if !self.cluster.run(&format!("put {prefix}-{i} v")).await.ok {
                            failed += 1;
                        }
                    }
                    let done = n - failed;
                    self.say(Tone::Output, format!("  {done} of {n} writes acknowledged"));
                }
                Act::Note(var, pick) => {
                    // What to note may not exist yet (no leader elected): wait for it.
                    let (value, nodes) = loop {
                        let nodes = self.cluster.nodes().await;
                        match self.pick(*pick, &nodes) {
                            Some(value) => break (value, nodes),
                            None if Instant::now() >= deadline => {
                                self.say(
                                    Tone::Failed,
                                    format!(
                                        "✗ could not tell the {} in time ({})",
                                        pick_name(*pick),
                                        describe_nodes(&nodes)
                                    ),
                                );
                                return false;
                            }
                            None => tokio::time::sleep(Duration::from_millis(100)).await,
                        }
                    };
                    self.vars.insert(*var, value);
                    if *pick == Pick::NextId
                        && let Some(port) = next_peer_port(&nodes)
                    {
                        self.vars.insert(Var::NewPeerPort, port);
                    }
                }
                Act::Until(expect) => {
                    if !self.wait(expect, deadline, false).await {
                        return false;
                    }
                }
                Act::Deliver(held, n) => {
                    let Some(chosen) = self.held_matching(held, *n, deadline).await else {
                        return false;
                    };
                    if !self.release(&chosen, true, true).await {
                        return false;
                    }
                }
                Act::Drop(held, n) => {
                    let Some(chosen) = self.held_matching(held, *n, deadline).await else {
                        return false;
                    };
                    if !self.release(&chosen, false, true).await {
                        return false;
                    }
                }
                Act::DeliverUntil(held, expect) => {
                    if !self.deliver_until(held, expect, deadline).await {
                        return false;
                    }
                }
                Act::Campaign(v) => {
                    if !self.campaign(*v, deadline).await {
                        return false;
                    }
                }
            }
        }
        true
    }

    /// Checks `expect`, waiting for it until `deadline`; says what passed or what was seen.
    async fn check(&mut self, expect: &Expect, deadline: Instant) -> bool {
        self.wait(expect, deadline, true).await
    }

    async fn wait(&mut self, expect: &Expect, deadline: Instant, tell: bool) -> bool {
        if *expect == Expect::Nothing {
            return true;
        }
        loop {
            let last = match self.holds(expect).await {
                Ok(said) => {
                    if tell {
                        self.say(Tone::Passed, format!("✓ {said}"));
                    }
                    return true;
                }
                Err(seen) => seen,
            };
            if Instant::now() >= deadline {
                self.say(
                    Tone::Failed,
                    format!(
                        "✗ expected {} in time, but it did not happen; last seen: {last}",
                        self.describe(expect)
                    ),
                );
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn pick(&self, pick: Pick, nodes: &[NodeView]) -> Option<u64> {
        let leader = agreed_leader(nodes);
        let followers = || {
            nodes
                .iter()
                .filter(|n| n.up && !n.frozen && n.member && n.role == "Follower")
                .map(|n| n.id)
        };
        match pick {
            Pick::Leader => leader.map(|l| l.id),
            Pick::Term => leader.map(|l| l.term),
            Pick::Follower => followers().next(),
            Pick::OtherFollower => {
                let first = self.var(Var::Follower);
                followers().find(|id| *id != first)
            }
            Pick::LeadersVoter => {
                let l = leader?;
                nodes
                    .iter()
                    .filter(|n| n.up && !n.frozen && n.member && n.role == "Follower")
                    .find(|n| n.vote == l.id && n.term == l.term)
                    .map(|n| n.id)
            }
            Pick::LastIndexOf(v) => {
                let id = self.var(v);
                nodes.iter().find(|n| n.id == id && n.up).map(|n| n.last)
            }
            Pick::ElectionsOf(v) => {
                let id = self.var(v);
                nodes
                    .iter()
                    .find(|n| n.id == id && n.up)
                    .map(|n| u64::from(n.elections))
            }
            Pick::NextId => nodes
                .iter()
                .filter(|n| n.member)
                .map(|n| n.id)
                .max()
                .map(|m| m + 1),
            Pick::Waiting(n) => nodes
                .iter()
                .filter(|v| v.up && !v.member && v.applied == 0)
                .map(|v| v.id)
                .nth(n.checked_sub(1)?),
            Pick::PeerPortOf(v) => {
                let id = self.var(v);
                peer_port(&nodes.iter().find(|n| n.id == id)?.addr)
            }
            Pick::MemberBut(v, n) => {
                let not = self.var(v);
                nodes
                    .iter()
                    .filter(|m| m.member && m.id != not)
                    .map(|m| m.id)
                    .nth(n.checked_sub(1)?)
            }
        }
    }

    /// Clears every fault and slow motion, and a lab's switched protections: the state
    /// every chapter leaves.
    async fn heal(&mut self) {
        if let Some(h) = self.background.take() {
            h.abort();
        }
        if std::mem::take(&mut self.stepping) {
            self.cluster.run("step off").await;
        }
        for line in ["fault heal", "slow 1"] {
            self.cluster.run(line).await;
        }
        if std::mem::take(&mut self.lab) {
            self.cluster.run("lab none").await;
        }
    }
}

/// The peer port after the highest node's (its client port minus 1000, plus one).
fn next_peer_port(nodes: &[NodeView]) -> Option<u64> {
    let top = nodes.iter().filter(|n| n.member).max_by_key(|n| n.id)?;
    Some(peer_port(&top.addr)? + 1)
}

/// The peer port of the node whose client API is at `addr` (client port minus 1000).
fn peer_port(addr: &str) -> Option<u64> {
    let port: u64 = addr.rsplit(':').next()?.parse().ok()?;
    port.checked_sub(1000)
}

fn pick_name(p: Pick) -> &'static str {
    match p {
        Pick::Leader => "leader",
        Pick::Term => "leader's term",
        Pick::Follower | Pick::OtherFollower => "followers",
        Pick::LeadersVoter => "follower that voted for the leader",
        Pick::LastIndexOf(_) => "node's log",
        Pick::NextId => "next node id",
        Pick::ElectionsOf(_) => "node's elections",
        Pick::Waiting(_) => "nodes waiting to be added",
        Pick::PeerPortOf(_) => "node's peer port",
        Pick::MemberBut(..) => "other members",
    }
}
