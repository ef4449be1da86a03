//! The tour's chapters, as data: the classic Raft scenarios, each a few steps that say what
//! is about to happen and where to look, type the commands a learner would, and claim what
//! the cluster will then show. Every chapter ends healed and at normal speed.

use std::time::Duration;

use super::engine::{Act, Ask, Chapter, Expect, Pick, Step, Var};

pub(super) const SHORT: Duration = Duration::from_secs(15);
/// Slow-motion elections take 5-10 s after the last heartbeat, pre-vote and vote on top.
pub(super) const SLOW: Duration = Duration::from_secs(40);

/// Every chapter, in order.
pub fn chapters() -> Vec<Chapter> {
    vec![
        election(),
        crash(),
        journey(),
        partition(),
        catching_up(),
        membership(),
        exactly_once(),
        restriction(),
    ]
    .into_iter()
    .chain(super::labs::chapters())
    .chain([super::figure8::chapter(), chaos()])
    .collect()
}

pub(super) fn step(say: &'static str, acts: Vec<Act>, expect: Expect, within: Duration) -> Step {
    Step {
        say,
        acts,
        expect,
        within,
        ask: None,
    }
}

fn election() -> Chapter {
    Chapter {
        title: "Leader election, and what a term is",
        steps: vec![
            step(
                "A voter is a follower, a pre-candidate, a candidate or the leader (raft-rs's \
                 pre-vote asks first whether an election could win, without raising any term; a \
                 learner only follows); the client's cluster bar and each dashboard's header say \
                 which. Time is counted in terms: each election that gets past its pre-vote \
                 starts a new one. First, slow motion: ten times slower timers (election \
                 timeout, heartbeats, check-quorum). Messages, disk writes and appends still go \
                 at full speed: an election is a long wait, then a burst of messages.",
                vec![Act::Note(Var::Leader, Pick::Leader), Act::Type("slow 10")],
                Expect::NewLeader { not: None },
                SHORT,
            ),
            step(
                "The leader, node {old_leader}, now freezes, as if its process were paused. Watch \
                 the other two dashboards' events: for 5-10 s nothing (no heartbeat, but no one \
                 has waited long enough); then, within milliseconds, one becomes a PreCandidate \
                 and asks for pre-votes, then a Candidate in a new term, asks for votes, wins. \
                 Press m in a dashboard to see each message, or look at the cluster view \
                 (window view; h there folds the heartbeats away): the election as a diagram.",
                vec![
                    Act::Note(Var::OldLeader, Pick::Leader),
                    Act::Note(Var::Term, Pick::Term),
                    Act::Type("fault freeze {old_leader}"),
                ],
                Expect::NewLeader {
                    not: Some(Var::OldLeader),
                },
                SLOW,
            ),
            step(
                "Node {old_leader} thaws. It still believes it leads, in the term before \
                     {term}.",
                vec![Act::Type("fault thaw {old_leader}"), Act::Type("slow 1")],
                Expect::FollowsInHigherTerm(Var::OldLeader),
                SLOW,
            )
            .with(Ask {
                question: "two nodes now say Leader. What happens?",
                answers: &[
                    "node {old_leader} leads again: it was leader first",
                    "node {old_leader} becomes a follower once it hears term {term}",
                    "the cluster splits in two",
                ],
                right: 1,
                why: "Terms order leaders: a node that sees a higher term adopts it and \
                          steps down. The vote requests that waited for it are ignored (a \
                          leader does not answer them while its check-quorum lease holds); the \
                          first append or heartbeat of term {term} from the new leader makes it \
                          a follower (its events say so). At most one leader per term, and the \
                          old one could not commit anything once a majority had moved on.",
            }),
        ],
    }
}

fn crash() -> Chapter {
    Chapter {
        title: "The leader crashes and a new one is elected",
        steps: vec![
            step(
                "A write first: the leader appends it; once a majority stores it (an entry of \
                 the leader's own term), it is committed, and applied everywhere.",
                vec![Act::Type("put color blue")],
                Expect::Reads("color", Some("blue")),
                SHORT,
            ),
            step(
                "Now the leader, node {old_leader}, crashes (frozen here; in the playground Ctrl+C \
                 in its pane stops it for real). Within a second or two the others notice the \
                 silence and elect a new leader in a new term.",
                vec![
                    Act::Note(Var::OldLeader, Pick::Leader),
                    Act::Note(Var::Term, Pick::Term),
                    Act::Type("fault freeze {old_leader}"),
                ],
                Expect::NewLeader {
                    not: Some(Var::OldLeader),
                },
                SHORT,
            ),
            step(
                "The cluster goes on: two of three is a majority. The client finds the new \
                 leader by itself (it tries the leader it knew, then follows what the others \
                 say), and nothing acknowledged is lost.",
                vec![Act::Type("put color green")],
                Expect::Reads("color", Some("green")),
                SHORT,
            ),
            step(
                "Node {old_leader} comes back (thawed). It learns of the new term, follows, and \
                 its log catches up: its log panel fills in.",
                vec![Act::Type("fault thaw {old_leader}")],
                Expect::All(vec![
                    Expect::FollowsInHigherTerm(Var::OldLeader),
                    Expect::Converged,
                ]),
                SHORT,
            ),
        ],
    }
}

fn journey() -> Chapter {
    Chapter {
        title: "A write's journey: uncommitted, committed, applied",
        steps: vec![
            step(
                "Slow motion, and the followers' messages made slow (1 s each way), so a write \
                 can be watched: yellow (uncommitted) in the leader's log, then in the \
                 followers' logs, then green everywhere. Committing (a majority stores an entry \
                 of the leader's term) and applying (the state machine runs it) are two steps; \
                 this server takes both in the loop that learns of the commit, so an entry goes \
                 from yellow straight to green (cyan, committed but not applied, rarely shows).",
                vec![
                    Act::Note(Var::Leader, Pick::Leader),
                    Act::Note(Var::Follower, Pick::Follower),
                    Act::Note(Var::Other, Pick::OtherFollower),
                    Act::Type("slow 10"),
                    Act::Type("fault delay {follower} 1000"),
                    Act::Type("fault delay {other} 1000"),
                ],
                Expect::Nothing,
                SHORT,
            ),
            step(
                "Now the write. Watch node {leader}'s log panel: the new entry is yellow \
                     until a majority has it; then the followers' panels: theirs stays yellow \
                     until the leader's next message tells them the commit index.",
                vec![
                    Act::Background("put journey step-by-step"),
                    Act::Until(Expect::Uncommitted(Var::Leader)),
                ],
                Expect::All(vec![
                    Expect::Background { duplicate: false },
                    Expect::Converged,
                ]),
                SLOW,
            )
            .with(Ask {
                question: "every message to and from the followers takes a second. Will \
                               the write be acknowledged?",
                answers: &[
                    "no: the client gives up before every node has it",
                    "yes, once one follower has stored it: with the leader, a majority",
                    "yes, at once: the leader has it",
                ],
                right: 1,
                why: "Slow messages are late, not lost. The leader counts itself: one \
                          follower's acknowledgement makes two of three, the entry commits, \
                          the leader applies it and answers, about two seconds after the send.",
            }),
            step(
                "Back to normal speed and timing.",
                vec![Act::Type("fault heal"), Act::Type("slow 1")],
                Expect::Converged,
                SHORT,
            ),
        ],
    }
}

fn partition() -> Chapter {
    Chapter {
        title: "The partitioned leader",
        steps: vec![
            step(
                "A value to watch, and slow motion again: a leader cut off from the others only \
                 notices after 5-10 s.",
                vec![Act::Type("put x old"), Act::Type("slow 10")],
                Expect::Reads("x", Some("old")),
                SHORT,
            ),
            step(
                "Node {old_leader} is cut off from the others, and a write is sent to it alone. It \
                 still believes it leads: it appends the write (yellow in its log panel) and \
                 waits for a majority it cannot reach. The write never commits. (If the client \
                 resends it before giving up, the log shows it twice with one request id: one \
                 request, two entries.) In the cluster view's logs, once the others have a \
                 leader, its entry stands out in red: not the leader's.",
                vec![
                    Act::Note(Var::OldLeader, Pick::Leader),
                    Act::Note(Var::Term, Pick::Term),
                    Act::Type("fault isolate {old_leader}"),
                    Act::Background("put --node {old_leader} x lost"),
                ],
                Expect::Uncommitted(Var::OldLeader),
                SHORT,
            )
            .with(Ask {
                question: "node {old_leader} still leads, cut off. Will the write sent to it \
                           commit?",
                answers: &[
                    "yes: it is the leader",
                    "no: it is appended, but no majority can store it",
                    "it is refused at once",
                ],
                right: 1,
                why: "A leader commits an entry only once a majority has stored it; alone, \
                      node {old_leader} cannot count to two.",
            }),
            step(
                "Within 5-10 s node {old_leader} steps down (check-quorum: it heard from no \
                 majority), and the other two elect a leader in a new term.",
                vec![],
                Expect::NewLeader {
                    not: Some(Var::OldLeader),
                },
                SLOW,
            ),
            step(
                "The majority side writes on. On the cut-off node, a linearizable read is \
                 refused: it has stepped down by now and knows no leader to ask for a read \
                 index (a follower serves one only with the leader's; had it still believed it \
                 led, the read would have waited for a heartbeat quorum it cannot reach, until \
                 its deadline). A stale read returns its own old copy.",
                vec![Act::Type("slow 1"), Act::Type("put x new")],
                Expect::All(vec![
                    Expect::Reads("x", Some("new")),
                    Expect::RefusedAt(Var::OldLeader, "x"),
                    Expect::StaleAt(Var::OldLeader, "x", Some("old")),
                ]),
                SHORT,
            )
            .with(Ask {
                question: "x is now new on the majority side. What will a stale read (get \
                           --stale) at node {old_leader} return?",
                answers: &["new", "old", "lost"],
                right: 1,
                why: "A stale read answers from the node's own state machine: lost was \
                      never committed, so never applied, and new has not reached it.",
            }),
            step(
                "Healed: node {old_leader} hears of the new term and follows. Its uncommitted \
                 write is replaced by the leader's entries (its events say which). Press m in \
                 its dashboard to see how: each append names the index and term of the entry \
                 before it; where node {old_leader}'s log disagrees, it rejects with a hint of \
                 where its log could match, the leader sends from there, and node \
                 {old_leader} drops its conflicting entry for the leader's (log matching). Raft \
                 keeps only what was committed; an entry that was not may be erased (here: only \
                 the cut-off node had it, so no new leader could) or still be committed later \
                 (the retry chapter shows that). It was never reported as a success.",
                vec![Act::Type("fault heal")],
                Expect::All(vec![
                    Expect::FollowsInHigherTerm(Var::OldLeader),
                    Expect::Converged,
                    Expect::NoneUncommitted(Var::OldLeader),
                    Expect::StaleAt(Var::OldLeader, "x", Some("new")),
                ]),
                SHORT,
            ),
        ],
    }
}

fn catching_up() -> Chapter {
    Chapter {
        title: "A follower that missed messages catches up",
        steps: vec![
            step(
                "Follower {follower} is cut off, and 150 writes go on without it. Watch the \
                 leader's cluster panel: node {follower} falls behind.",
                vec![
                    Act::Note(Var::Follower, Pick::Follower),
                    Act::Type("fault isolate {follower}"),
                    Act::Writes("catchup", 150),
                ],
                Expect::FarBehind(Var::Follower),
                Duration::from_secs(60),
            ),
            step(
                "Healed: the leader probes where node {follower}'s log ends and sends what it \
                 misses. If the entries it needs were already compacted into a snapshot (every \
                 --snapshot-every entries), it sends the snapshot instead. The cluster view \
                 shows it: node {follower}'s row of the logs fills in (or jumps to the \
                 snapshot, ▓), and the diagram shows the probe and the appends (or Snap).",
                vec![
                    Act::Note(Var::Index, Pick::LastIndexOf(Var::Follower)),
                    Act::Type("fault heal {follower}"),
                ],
                Expect::CaughtUp(Var::Follower),
                Duration::from_secs(30),
            ),
        ],
    }
}

fn membership() -> Chapter {
    Chapter {
        title: "Adding and removing a node",
        steps: vec![
            step(
                "A cluster changes shape while it serves. A new node, started with --join (in \
                 the playground: ./playground --tour starts node {new}; else ./playground --add \
                 {new} in a shell), waits to be added.",
                vec![Act::Note(Var::NewNode, Pick::NextId)],
                Expect::Waiting(Var::NewNode),
                SHORT,
            ),
            step(
                "It joins as a learner: it gets the log (by snapshot) but does not vote, so it \
                 cannot hold up commits while it catches up. Watch its dashboard fill in, and \
                 the leader's cluster panel.",
                vec![Act::Type(
                    "member add {new} 127.0.0.1:{new_peer_port} --learner",
                )],
                Expect::All(vec![
                    Expect::Member(Var::NewNode, "learner"),
                    Expect::CaughtUp(Var::NewNode),
                ]),
                Duration::from_secs(30),
            ),
            step(
                "Promoted to voter through a joint configuration: from the moment the entry \
                 that enters it is applied until the entry that leaves it is, every commit and \
                 every election needs a majority of the old voters and of the new ones (the \
                 cluster panel says JOINT, and how long it lasted). The leader leaves it by \
                 itself; the log panels show CONF promote and CONF leave joint.",
                vec![Act::Type("member promote {new}")],
                Expect::Member(Var::NewNode, "voter"),
                Duration::from_secs(30),
            ),
            step(
                "And removed again, the same way. Its dashboard says REMOVED: it takes no part \
                 any more, and in the playground it stops a few seconds later (a removed node \
                 comes back only as a new member: a fresh data dir, --join, member add).",
                vec![Act::Type("member remove {new}")],
                Expect::NotMember(Var::NewNode),
                Duration::from_secs(30),
            ),
        ],
    }
}

fn exactly_once() -> Chapter {
    Chapter {
        title: "A retried write is applied once",
        steps: vec![
            step(
                "A write can be applied and its answer lost: the client must send it again, and \
                 the cluster must not apply it twice. The cluster promises at most once: a \
                 request id it has applied is never applied again. Exactly once needs the \
                 client too: it keeps resending until it gets an answer. The next step stages \
                 a lost answer: one follower's messages are made slow (1.5 s each way), the \
                 other follower is cut off, so the leader's commit waits for the slow \
                 acknowledgement; the write goes out, and the leader is cut off before that \
                 acknowledgement arrives.",
                vec![],
                Expect::Nothing,
                SHORT,
            ),
            step(
                "Now: follower {follower} is made slow, follower {other} is cut off, and the \
                 write goes out. Once node {follower} has stored it, and before its \
                 acknowledgement arrives, the leader {old_leader} is cut off. It steps down, \
                 the client resends the write (same request id), the other two elect a leader \
                 that already has the write. Watch the new leader's log panel: the same \
                 [request id] twice; the first entry applied the write, the second is marked \
                 dup: applied as a recognised duplicate, it changed nothing.",
                vec![
                    Act::Note(Var::OldLeader, Pick::Leader),
                    Act::Note(Var::Follower, Pick::Follower),
                    Act::Note(Var::Other, Pick::OtherFollower),
                    Act::Type("fault delay {follower} 1500"),
                    Act::Type("fault isolate {other}"),
                    Act::Note(Var::Index, Pick::LastIndexOf(Var::Follower)),
                    Act::Background("put once 1"),
                    Act::Until(Expect::LastAbove(Var::Follower)),
                    Act::Type("fault isolate {old_leader}"),
                    Act::Type("fault heal {other}"),
                    Act::Type("fault heal {follower}"),
                ],
                Expect::Background { duplicate: true },
                Duration::from_secs(30),
            ),
            step(
                "Healed. The value was written once: the second copy of the request was \
                 recognised by its id and not applied again. Two more lessons in it. The write \
                 was of the old term, and a leader counts replicas only for entries of its own \
                 term (the paper's Figure 8: an old-term entry on a majority can still be \
                 replaced): it committed when the new leader's first entry, its no-op, did, \
                 and everything before the no-op with it (reads at a new leader wait for that \
                 no-op too). And uncommitted is not lost: this write was never acknowledged \
                 before its leader was cut off, yet it committed, while in the partitioned \
                 leader's chapter an uncommitted write was erased. Erasing is safe because no \
                 client was ever told it succeeded.",
                vec![Act::Type("fault heal")],
                Expect::All(vec![Expect::Reads("once", Some("1")), Expect::Converged]),
                SHORT,
            ),
        ],
    }
}

fn restriction() -> Chapter {
    Chapter {
        title: "Who can win an election: the election restriction, and terms as a clock",
        steps: vec![
            step(
                "Follower {follower} is cut off while ten writes commit on the other two: its \
                 log falls behind theirs.",
                vec![
                    Act::Note(Var::Leader, Pick::Leader),
                    Act::Note(Var::Follower, Pick::Follower),
                    Act::Note(Var::Other, Pick::OtherFollower),
                    Act::Type("fault isolate {follower}"),
                    Act::Writes("behind", 10),
                ],
                Expect::LogBehind(Var::Follower),
                SHORT,
            ),
            step(
                "Now the leader, node {leader}, freezes, and node {follower} comes back: it asks \
                 node {other} for a (pre-)vote. A voter grants one only to a candidate whose \
                 log is at least as up to date as its own: the last entry's term, then its \
                 index. That is Raft's election restriction, and why a leader always holds \
                 every committed entry. Node {other} never grants it: within its election \
                 timeout it sends no answer at all, and after that it refuses, saying that \
                 node {follower}'s log is behind (its events say which). Then node {other}'s own \
                 timer fires, and node {follower} votes for it: its log is ahead. Node {other} \
                 wins.",
                vec![
                    Act::Note(Var::Term, Pick::Term),
                    Act::Type("fault freeze {leader}"),
                    Act::Type("fault heal {follower}"),
                ],
                Expect::LeaderIs(Var::Other),
                SHORT,
            ),
            step(
                "Node {leader} thaws: the first message of the new term makes it follow. Terms \
                 are a logical clock, kept on disk with the vote: a higher term makes a node \
                 follow, a lower one is refused, and a node votes once per term, across \
                 restarts too. A node whose data dir was wiped would have forgotten its vote and \
                 could vote twice in one term: so the others refuse it until it is removed and \
                 added again (its dashboard says REFUSED).",
                vec![Act::Type("fault thaw {leader}"), Act::Type("fault heal")],
                Expect::All(vec![
                    Expect::FollowsInHigherTerm(Var::Leader),
                    Expect::Converged,
                ]),
                SHORT,
            ),
        ],
    }
}

fn chaos() -> Chapter {
    Chapter {
        title: "The chaos checker catches a stale read",
        steps: vec![step(
            "chaos runs clients against the cluster while it breaks it, then checks that one \
             order of all the operations, each taking effect at some moment between its call \
             and its answer, explains every result. With --stale-reads some reads ask one \
             node's own copy, which may be behind: the checker finds a read no such order \
             explains, and draws it.",
            vec![Act::Type(
                "chaos --seconds 6 --stale-reads --faults isolate --clients 4 --keys 3",
            )],
            Expect::Said("NOT LINEARIZABLE"),
            Duration::from_secs(60),
        )],
    }
}
