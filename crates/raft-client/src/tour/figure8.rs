//! The tour's Figure 8 chapter: the Raft paper's Figure 8 staged on five live nodes in step
//! mode, one message at a time. An entry of an old term stored on a majority is not
//! committed, and a later leader replaces it: why a leader counts replicas only for entries
//! of its own term. The two nodes `./playground --tour` starts waiting make five voters for
//! the chapter, and leave again at its end.
//!
//! Where raft-rs differs from the paper, the text says so: a new leader appends a no-op of
//! its term (it plays the paper's client entries of terms 3 and 4), and sends it together
//! with the older entries it is replicating.

use std::time::Duration;

use super::chapters::{SHORT, step};
use super::engine::{Act, Ask, Chapter, Expect, Held, Pick, Side, Var};

/// Appends and their answers.
const APPENDS: &[&str] = &["MsgAppend", "MsgAppendResponse"];
/// Vote requests and appends, and their answers.
const VOTES_AND_APPENDS: &[&str] = &[
    "MsgRequestVote",
    "MsgRequestVoteResponse",
    "MsgAppend",
    "MsgAppendResponse",
];

/// The chapter.
pub fn chapter() -> Chapter {
    Chapter {
        title: "Figure 8: a leader counts replicas only for entries of its own term",
        steps: vec![
            step(
                "The Raft paper's Figure 8 needs five voters. Nodes {spare} and {spare2} run and \
                 wait to be added (./playground --tour started them; elsewhere ./playground \
                 --add N starts one): each joins as a learner, catches up, and is promoted.",
                vec![
                    Act::Note(Var::Spare, Pick::Waiting(1)),
                    Act::Note(Var::Spare2, Pick::Waiting(2)),
                    Act::Note(Var::SparePort, Pick::PeerPortOf(Var::Spare)),
                    Act::Note(Var::Spare2Port, Pick::PeerPortOf(Var::Spare2)),
                    Act::Type("member add {spare} 127.0.0.1:{spare_port}"),
                    Act::Type("member add {spare2} 127.0.0.1:{spare2_port}"),
                ],
                Expect::All(vec![
                    Expect::Member(Var::Spare, "voter"),
                    Expect::Member(Var::Spare2, "voter"),
                    Expect::Converged,
                ]),
                Duration::from_secs(60),
            ),
            step(
                "Node {s1} leads in term {term}; nodes {s2}, {s3}, {s4} and {s5} play the \
                 paper's S2 to S5. Plain Raft, as the paper has it: lab --no-pre-vote \
                 --no-check-quorum (they decide when an election may start, not what a leader \
                 may commit). Then step on: every clock stops, and every message is held until \
                 it is delivered (step next NODE ID) or dropped (step drop NODE ID); the watch \
                 view (its own window) lists what is held.",
                vec![
                    Act::Note(Var::S1, Pick::Leader),
                    Act::Note(Var::Term, Pick::Term),
                    Act::Note(Var::S2, Pick::MemberBut(Var::S1, 1)),
                    Act::Note(Var::S3, Pick::MemberBut(Var::S1, 2)),
                    Act::Note(Var::S4, Pick::MemberBut(Var::S1, 3)),
                    Act::Note(Var::S5, Pick::MemberBut(Var::S1, 4)),
                    Act::Type("lab --no-pre-vote --no-check-quorum"),
                    Act::Until(Expect::Settled),
                    Act::Type("step on"),
                    Act::Note(Var::Index, Pick::LastIndexOf(Var::S1)),
                ],
                Expect::All(vec![Expect::Role(Var::S1, "Leader"), Expect::Settled]),
                SHORT,
            ),
            step(
                "(a) Every log ends at index {index}. A write goes to node {s1} (in the \
                 background): it appends it at {index+1}, in term {term}, and sends it to the \
                 four others. Only the copy to node {s2} is delivered. Then node {s1} falls \
                 silent, as if it had crashed: everything else it sent is dropped, and so is \
                 node {s2}'s acknowledgement. The client waits for an answer that cannot come \
                 and gives up after 4 s: the write's outcome is unknown.",
                vec![
                    Act::Background("put --node {s1} f8 written-in-term-{term}"),
                    Act::Until(Expect::LastIs(Var::S1, 1)),
                    Act::Deliver(Held::new(&["MsgAppend"], Side::Is(Var::S1), Side::Is(Var::S2)), 1),
                    Act::Drop(
                        Held::new(&["MsgAppendResponse"], Side::Is(Var::S2), Side::Any),
                        1,
                    ),
                    Act::Drop(Held::ALL, 0),
                ],
                Expect::All(vec![
                    Expect::LastIs(Var::S1, 1),
                    Expect::LastIs(Var::S2, 1),
                    Expect::CommittedNowhere(1),
                    Expect::BackgroundSaid("outcome is unknown"),
                ]),
                SHORT,
            ),
            step(
                "(b) Node {s5}'s election timer runs out (step tick {s5}, tick after tick): it \
                 campaigns in term {term+1}. Its requests reach nodes {s1}, {s3} and {s4}. \
                 Nodes {s3} and {s4} grant their votes: their logs end at {index}, as its own \
                 does. Node {s1} refuses (its log is longer), but the higher term makes it step \
                 down. With its own vote node {s5} has three of five. It leads in term \
                 {term+1}, appends a no-op at {index+1} (raft-rs appends one whenever a node \
                 becomes leader), and falls silent before anyone gets it.",
                vec![
                    Act::Campaign(Var::S5),
                    Act::Deliver(
                        Held::new(&["MsgRequestVote"], Side::Is(Var::S5), Side::Not(Var::S2)),
                        3,
                    ),
                    Act::Deliver(
                        Held::new(
                            &["MsgRequestVoteResponse"],
                            Side::Not(Var::S1),
                            Side::Is(Var::S5),
                        ),
                        2,
                    ),
                    Act::Drop(Held::new(&["MsgAppend"], Side::Is(Var::S5), Side::Any), 4),
                    Act::Drop(Held::ALL, 0),
                ],
                Expect::All(vec![
                    Expect::Role(Var::S5, "Leader"),
                    Expect::LastIs(Var::S5, 1),
                    Expect::Role(Var::S1, "Follower"),
                ]),
                SHORT,
            ),
            step(
                "(c) Node {s1} campaigns in term {term+2}. Nodes {s2}, {s3} and {s4} vote for \
                 it; node {s5} refuses (its last entry, of term {term+1}, is newer than node \
                 {s1}'s, of term {term}) and steps down. Node {s1} leads in term {term+2} and \
                 appends its no-op at {index+2}. Its appends are delivered to node {s3} only: \
                 node {s3} refuses the first (it lacks entry {index+1}), then takes {index+1} \
                 and {index+2} together.",
                vec![
                    Act::Campaign(Var::S1),
                    Act::Deliver(Held::new(&["MsgRequestVote"], Side::Is(Var::S1), Side::Any), 4),
                    Act::Deliver(
                        Held::new(&["MsgRequestVoteResponse"], Side::Any, Side::Is(Var::S1)),
                        4,
                    ),
                    Act::DeliverUntil(
                        Held::new(
                            APPENDS,
                            Side::In(&[Var::S1, Var::S3]),
                            Side::In(&[Var::S1, Var::S3]),
                        ),
                        Expect::LastIs(Var::S3, 2),
                    ),
                ],
                Expect::All(vec![
                    Expect::Role(Var::S1, "Leader"),
                    Expect::LastIs(Var::S2, 1),
                    Expect::LastIs(Var::S3, 2),
                    Expect::CommittedNowhere(1),
                ]),
                SHORT,
            )
            .with(Ask {
                question: "entry {index+1}, of term {term}, will then be in the logs of nodes \
                           {s1}, {s2} and {s3}: three of five, a majority. Will it be committed?",
                answers: &[
                    "yes: a majority stores it",
                    "no: no node will count it as committed",
                ],
                right: 1,
                why: "Every commit index stays at {index}. Node {s1} knows of two copies only, \
                      its own and node {s3}'s (node {s2}'s acknowledgement was lost in term \
                      {term}), and its no-op at {index+2} is in two logs. But even knowing of \
                      all three it could not count them: a leader may commit an entry by \
                      counting its replicas only if the entry is of the leader's own term, and \
                      {index+1} is of term {term} (the paper, §5.4.2). An older entry is committed only with one of the \
                      leader's own after it. The next step shows what counting it would \
                      break.",
            }),
            step(
                "(d) Node {s1} falls silent again: its messages are dropped from now on. Node \
                 {s5} campaigns in term {term+3}, and every vote and append among the four \
                 others is delivered.",
                vec![
                    Act::Campaign(Var::S5),
                    Act::DeliverUntil(
                        Held::new(VOTES_AND_APPENDS, Side::Not(Var::S1), Side::Not(Var::S1)),
                        Expect::LeadsWith {
                            node: Var::S5,
                            commit: 2,
                            other: Var::S2,
                        },
                    ),
                ],
                Expect::LeadsWith {
                    node: Var::S5,
                    commit: 2,
                    other: Var::S2,
                },
                SHORT,
            )
            .with(Ask {
                question: "entry {index+1} of term {term} is on three of five logs, and node \
                           {s5}'s log does not have it. Can node {s5} win?",
                answers: &[
                    "no: a node with that entry is in every majority, and refuses",
                    "yes: nodes {s2} and {s4} vote for it",
                ],
                right: 1,
                why: "A voter compares the last entries' terms first: node {s5}'s last entry \
                      is of term {term+1}, newer than node {s2}'s (term {term}), so node {s2} \
                      votes for it, and so does node {s4}; only node {s3} refuses (its last \
                      entry is of term {term+2}). Leading, node {s5} makes each log it reaches \
                      match its own: at {index+1} its entry of term {term+1} replaces the \
                      entry of term {term} (node {s2}'s events: \"uncommitted entry {index+1} \
                      (term {term}) replaced\"). Had node {s1} counted that entry committed on \
                      three logs and answered the client, an acknowledged write would now be \
                      gone: the paper's Figure 8 (d). Node {s5}'s no-op at {index+2} is on a \
                      majority, of its own term: it commits, and with it everything before \
                      it.",
            }),
            step(
                "step off: the clocks run again and messages flow. Node {s1} hears the newer \
                 term and follows; lab none turns every protection back on. And the write of \
                 term {term}?",
                vec![
                    Act::Type("step off"),
                    Act::Type("lab none"),
                    // Not NewLeader: it would note the new term over {term}, which the
                    // answer's text still means as term T.
                    Act::Until(Expect::FollowsInHigherTerm(Var::S1)),
                    Act::Type("get f8"),
                ],
                Expect::All(vec![
                    Expect::FollowsInHigherTerm(Var::S1),
                    Expect::Reads("f8", None),
                    Expect::Converged,
                ]),
                SHORT,
            )
            .with(Ask {
                question: "what will get f8 return?",
                answers: &[
                    "written-in-term-{term}: it was on a majority",
                    "not found: it never committed",
                ],
                right: 1,
                why: "The put was told its outcome was unknown, which was the truth: its \
                      entry reached a majority and still did not commit. raft-rs makes one part \
                      of the paper's picture impossible here: a new leader sends its no-op \
                      together with the older entries, so any follower that takes an old \
                      entry from it takes the no-op too, and once that is on a majority both \
                      commit at once. Node {s1} could have committed {index+1} in term \
                      {term+2} only that way: through an entry of its own term.",
            }),
            step(
                "Back to three voters: nodes {spare} and {spare2} are removed (their dashboards \
                 say REMOVED, and they stop a few seconds later).",
                vec![
                    Act::Type("member remove {spare}"),
                    Act::Type("member remove {spare2}"),
                ],
                Expect::All(vec![
                    Expect::NotMember(Var::Spare),
                    Expect::NotMember(Var::Spare2),
                    Expect::Converged,
                ]),
                Duration::from_secs(60),
            ),
        ],
    }
}
