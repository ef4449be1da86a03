//! The tour's labs: chapters that switch one of Raft's protections off on the running
//! cluster (the `lab` command, as if every node had been started with the server's flag),
//! show what breaks, and switch it back on. Each asks the learner to predict first.

use std::time::Duration;

use super::chapters::{SHORT, SLOW, step};
use super::engine::{Act, Ask, Chapter, Expect, Held, Pick, Side, Var};

/// How long a step may wait for a node's elections to count up: the count is over the
/// last minute, so elections the node started in the chapter before must drop out first.
const CAMPAIGNS: Duration = Duration::from_secs(75);

/// The labs, in order.
pub fn chapters() -> Vec<Chapter> {
    vec![
        pre_vote(),
        check_quorum(),
        lease(),
        forget_vote(),
        early_ack(),
    ]
}

fn pre_vote() -> Chapter {
    Chapter {
        title: "Lab: why pre-vote",
        steps: vec![
            step(
                "Every protection on. Node {follower} is cut off. Its election timer fires \
                 again and again (its dashboard says PreCandidate), but with pre-vote it first \
                 asks whether it could win, without raising its term; nobody answers, so it \
                 never becomes a Candidate, and its term stays {term}.",
                vec![
                    Act::Note(Var::Leader, Pick::Leader),
                    Act::Note(Var::Term, Pick::Term),
                    Act::Note(Var::Follower, Pick::Follower),
                    Act::Note(Var::Elections, Pick::ElectionsOf(Var::Follower)),
                    Act::Type("fault isolate {follower}"),
                ],
                Expect::All(vec![
                    Expect::Campaigned(Var::Follower, 2),
                    Expect::Steady(Var::Follower),
                ]),
                CAMPAIGNS,
            ),
            step(
                "Healed: node {follower} is back.",
                vec![Act::Type("fault heal")],
                Expect::All(vec![
                    Expect::LeaderIs(Var::Leader),
                    Expect::Steady(Var::Follower),
                ]),
                SHORT,
            )
            .with(Ask {
                question: "node {follower} tried to start elections while it was away. \
                               What happens now that it is back?",
                answers: &[
                    "its attempts depose node {leader}: a new election",
                    "nothing: it follows node {leader}, still in term {term}",
                ],
                right: 1,
                why: "Its pre-votes raised no term, so the leader's next heartbeat is \
                          simply accepted.",
            }),
            step(
                "The lab: lab --no-pre-vote switches pre-vote off on every node (as if each \
                 had been started with raft-server --no-pre-vote). The same follower is cut \
                 off again. Now each time its timer fires it becomes a Candidate in a new term: \
                 watch its term climb in its dashboard's header.",
                vec![
                    Act::Type("lab --no-pre-vote"),
                    Act::Type("fault isolate {follower}"),
                ],
                Expect::TermAbove(Var::Follower, 2),
                SHORT,
            ),
            step(
                "Healed again.",
                vec![Act::Type("fault heal")],
                Expect::All(vec![
                    Expect::TermAbove(Var::Leader, 2),
                    Expect::NewLeader { not: None },
                ]),
                SHORT,
            )
            .with(Ask {
                question: "node {follower} comes back in a higher term than node \
                               {leader}'s. What happens?",
                answers: &[
                    "nothing: node {leader} is a healthy leader",
                    "node {leader} steps down: an election, in a term above node \
                         {follower}'s",
                    "node {follower} is refused for good",
                ],
                right: 1,
                why: "Check-quorum makes the others ignore its vote requests while they \
                          hear from their leader, but the leader's next heartbeat reaches a \
                          node in a higher term, which answers with that term, and a leader \
                          that sees a higher term steps down (Raft paper §5.1). A healthy \
                          leader was deposed by a node that could not even reach it: pre-vote \
                          (Ongaro's thesis §9.6) exists to stop this.",
            }),
            step(
                "lab none: every protection back on.",
                vec![Act::Type("lab none")],
                Expect::Succeeded,
                SHORT,
            ),
        ],
    }
}

fn check_quorum() -> Chapter {
    Chapter {
        title: "Lab: why check-quorum",
        steps: vec![
            step(
                "lab --no-check-quorum: a leader no longer checks that it still hears \
                     from a majority. The leader, node {old_leader}, is cut off; the other two \
                     elect a leader after an election timeout.",
                vec![
                    Act::Note(Var::OldLeader, Pick::Leader),
                    Act::Note(Var::Term, Pick::Term),
                    Act::Type("lab --no-check-quorum"),
                    Act::Type("fault isolate {old_leader}"),
                ],
                Expect::StillLeads(Var::OldLeader),
                SHORT,
            )
            .with(Ask {
                question: "once the others have a new leader, what does node {old_leader} \
                               say it is?",
                answers: &[
                    "a follower: it notices that it lost its majority",
                    "still the leader, in its old term: nothing tells it otherwise",
                    "a candidate",
                ],
                right: 1,
                why: "Without check-quorum a leader steps down only when it hears a \
                          higher term, and cut off it hears nothing. It cannot commit anything \
                          (no majority), so Raft stays safe, but clients that reach it wait \
                          in vain. With check-quorum (the partitioned-leader chapter) it steps \
                          down after an election timeout.",
            }),
            step(
                "Healed: the higher term reaches node {old_leader}, and it follows.",
                vec![Act::Type("fault heal")],
                Expect::All(vec![
                    Expect::FollowsInHigherTerm(Var::OldLeader),
                    Expect::Converged,
                ]),
                SHORT,
            ),
            step(
                "A one-way cut, every protection on again (lab none): node {leader}'s messages \
                 to node {follower} are lost, node {follower}'s reach node {leader}. Node \
                 {follower} hears no heartbeat, so its timer fires again and again, but it asks \
                 for pre-votes first, and the leader and node {other} (who hear from the \
                 leader) ignore them: check-quorum's lease. Its elections count up in the \
                 liveness line (status), and nothing else changes.",
                vec![
                    Act::Note(Var::Leader, Pick::Leader),
                    Act::Note(Var::Term, Pick::Term),
                    Act::Note(Var::Follower, Pick::Follower),
                    Act::Note(Var::Other, Pick::OtherFollower),
                    Act::Note(Var::Elections, Pick::ElectionsOf(Var::Follower)),
                    Act::Type("lab none"),
                    Act::Type("fault cut {leader} {follower} --one-way"),
                ],
                Expect::All(vec![
                    Expect::Campaigned(Var::Follower, 3),
                    Expect::Steady(Var::Follower),
                ]),
                CAMPAIGNS,
            ),
            step(
                "The same cut, with pre-vote and check-quorum off: lab --no-pre-vote \
                     --no-check-quorum.",
                vec![Act::Type("lab --no-pre-vote --no-check-quorum")],
                Expect::TermAbove(Var::Leader, 1),
                SHORT,
            )
            .with(Ask {
                question: "what happens now?",
                answers: &[
                    "nothing, as before",
                    "node {follower} raises its term, and its vote requests depose node \
                         {leader}",
                ],
                right: 1,
                why: "Nothing stops a vote request in a higher term now: whoever gets it \
                          adopts the term and stops leading. If node {follower} wins, the \
                          cluster settles (its messages reach everyone); if another node wins, \
                          node {follower} hears nothing again and starts over. Real clusters \
                          churned like this for hours; status counts the leader changes.",
            }),
            step(
                "Healed, and every protection on again.",
                vec![Act::Type("fault heal"), Act::Type("lab none")],
                Expect::All(vec![Expect::NewLeader { not: None }, Expect::Converged]),
                SHORT,
            ),
        ],
    }
}

fn lease() -> Chapter {
    Chapter {
        title: "Lab: a lease needs bounded pauses",
        steps: vec![
            step(
                "lab --read-mode lease: a leader answers linearizable reads from its lease, \
                 without the heartbeat round ReadIndex takes, trusting that no other leader \
                 can exist before its election timeout runs out. Slow motion, and a value.",
                vec![
                    Act::Type("lab --read-mode lease"),
                    Act::Type("slow 10"),
                    Act::Type("put lease lease-1"),
                ],
                Expect::Reads("lease", Some("lease-1")),
                SHORT,
            ),
            step(
                "The leader, node {old_leader}, pauses (frozen, as a process stopped by a long \
                 garbage collection), and its network with it (isolated: when it wakes it has \
                 heard nothing new). The others elect a leader (5-10 s in slow motion) and \
                 overwrite the value.",
                vec![
                    Act::Note(Var::OldLeader, Pick::Leader),
                    Act::Note(Var::Term, Pick::Term),
                    Act::Type("fault freeze {old_leader}"),
                    Act::Type("fault isolate {old_leader}"),
                    Act::Until(Expect::OthersLead(Var::OldLeader)),
                    Act::Type("put lease lease-2"),
                ],
                Expect::Reads("lease", Some("lease-2")),
                SLOW,
            ),
            step(
                "Node {old_leader} wakes (thawed), still cut off, and is asked for a \
                     linearizable read.",
                vec![
                    Act::Type("fault thaw {old_leader}"),
                    Act::Type("get --node {old_leader} lease"),
                ],
                Expect::Said("lease-1"),
                SHORT,
            )
            .with(Ask {
                question: "what does the read at node {old_leader} return?",
                answers: &[
                    "lease-2, the latest value",
                    "lease-1: the old value, from its lease",
                    "an error: it is not the leader any more",
                ],
                right: 1,
                why: "A stale read, though lease-2 was acknowledged before it began: not \
                          linearizable. Its clock did not count the pause, so by its clock its \
                          lease still holds; it steps down only after check-quorum's next \
                          election timeout without a majority. A lease is only as good as the \
                          bound on pauses and clock drift (Ongaro's thesis §6.4). With ReadIndex \
                          (the default, safe) it would have needed a heartbeat round with a \
                          majority first, and cut off it could not: the read is refused.",
            }),
            step(
                "Healed, at normal speed, reads safe again (lab none): node {old_leader} hears \
                 the new term and follows.",
                vec![
                    Act::Type("fault heal"),
                    Act::Type("lab none"),
                    Act::Type("slow 1"),
                ],
                Expect::All(vec![
                    Expect::FollowsInHigherTerm(Var::OldLeader),
                    Expect::Converged,
                    Expect::Reads("lease", Some("lease-2")),
                ]),
                SHORT,
            ),
        ],
    }
}

fn forget_vote() -> Chapter {
    Chapter {
        title: "Lab: a voter that forgets its vote",
        steps: vec![
            step(
                "Node {follower} voted for node {leader} in term {term} (status shows each \
                 node's vote). lab --unsafe forget-vote: from now on no node writes its vote \
                 to disk. A few writes make node {follower} write its hard state (term, vote, \
                 commit) again, now without the vote.",
                vec![
                    Act::Note(Var::Leader, Pick::Leader),
                    Act::Note(Var::Term, Pick::Term),
                    Act::Note(Var::Follower, Pick::LeadersVoter),
                    Act::Type("lab --unsafe forget-vote"),
                    Act::Writes("forget", 3),
                ],
                Expect::Reads("forget-3", Some("v")),
                SHORT,
            ),
            step(
                "Now node {follower} crashes and restarts: in its pane press Ctrl+C, then ↑ \
                 Enter (it starts again with its data, and as it was started: a lab switched \
                 at run time ends with the process). Press Enter here first: the tour waits \
                 for node {follower} to stop and start again.",
                // Its vote in memory stays until the process ends: a vote of nobody in
                // the same term is the restart (however early the learner did it).
                vec![],
                Expect::VotedForNobody(Var::Follower),
                Duration::from_secs(180),
            )
            .with(Ask {
                question: "back in term {term}, whom has node {follower} voted for?",
                answers: &[
                    "node {leader}, as before the restart",
                    "nobody: its vote was never written",
                ],
                right: 1,
                why: "A vote is a promise for the whole term, so Raft writes it to disk \
                      before answering (votedFor is persistent state, Figure 2 of the paper). \
                      Forgotten, the node may vote again in a term it already voted in: with \
                      an election under way, two candidates could each count it in their \
                      majority. The next steps stage exactly that.",
            }),
            step(
                "Two candidates in one term, in step mode. lab --no-pre-vote \
                 --no-check-quorum --unsafe forget-vote: plain Raft, and no node writes its \
                 vote (node {follower}'s restart ended its lab, so the lab is typed again). \
                 step on. Nodes {follower} and {other} are ticked until their election timers \
                 run out: both campaign, in the same term. Node {follower}'s request is \
                 delivered to node {leader}, which votes for it (a higher term makes a leader \
                 step down), and the vote back: with its own, two of three. Node {follower} \
                 leads; its first appends are dropped, and node {other}'s request stays held.",
                vec![
                    Act::Note(Var::Leader, Pick::Leader),
                    Act::Note(Var::Other, Pick::OtherFollower),
                    Act::Type("lab --no-pre-vote --no-check-quorum --unsafe forget-vote"),
                    Act::Until(Expect::Settled),
                    Act::Type("step on"),
                    Act::Campaign(Var::Follower),
                    Act::Campaign(Var::Other),
                    vote(Var::Follower, Var::Leader, Part::Asked),
                    vote(Var::Follower, Var::Leader, Part::Answered),
                    Act::Drop(
                        Held::new(&["MsgAppend"], Side::Is(Var::Follower), Side::Any),
                        2,
                    ),
                    Act::Note(Var::Term, Pick::Term),
                ],
                Expect::All(vec![
                    Expect::Role(Var::Follower, "Leader"),
                    Expect::Role(Var::Other, "Candidate"),
                ]),
                SHORT,
            ),
            step(
                "Node {leader}, which voted for node {follower} in term {term}, crashes and \
                 restarts: in its pane press Ctrl+C, then ↑ Enter. Press Enter here first: \
                 the tour waits for node {leader} to stop and start again, puts it in step \
                 mode, switches the lab on it again, and delivers node {other}'s request to it, \
                 and its answer.",
                vec![
                    Act::Until(Expect::VotedForNobody(Var::Leader)),
                    Act::Type("step on"),
                    Act::Type("lab --no-pre-vote --no-check-quorum --unsafe forget-vote"),
                    vote(Var::Other, Var::Leader, Part::Asked),
                    vote(Var::Other, Var::Leader, Part::Answered),
                ],
                Expect::TwoLeaders(Var::Follower, Var::Other),
                Duration::from_secs(180),
            )
            .with(Ask {
                question: "node {other} asks node {leader} for its vote in term {term}. What \
                           does node {leader} answer?",
                answers: &[
                    "no: it voted for node {follower} in this term",
                    "yes: as far as it knows it has voted for nobody, and node {other} leads \
                     too",
                ],
                right: 1,
                why: "Two leaders in term {term}, each elected by a majority of three, and the \
                      node the two majorities share voted twice: both dashboards say LEADER \
                      in the same term. Raft's election safety (at most one leader per term, \
                      Figure 3 of the paper) rests on each vote being kept; two leaders of \
                      one term could each commit a different entry at the same index. With \
                      the vote on disk the restarted node refuses (tests/labs.rs plays both).",
            }),
            step(
                "To end it, newer terms. Node {leader} campaigns in term {term+1}: both \
                 leaders see the higher term and step down, and refuse it (its log lacks the \
                 entry each appended as leader). Then node {follower} campaigns in term \
                 {term+2}, every message is delivered, and it leads alone. step off, and lab \
                 none: every protection back on.",
                vec![
                    Act::Drop(Held::ALL, 0),
                    Act::Campaign(Var::Leader),
                    Act::Deliver(
                        Held::new(&["MsgRequestVote"], Side::Is(Var::Leader), Side::Any),
                        2,
                    ),
                    Act::Deliver(
                        Held::new(
                            &["MsgRequestVoteResponse"],
                            Side::Any,
                            Side::Is(Var::Leader),
                        ),
                        2,
                    ),
                    Act::Campaign(Var::Follower),
                    Act::DeliverUntil(
                        Held::ALL,
                        Expect::All(vec![
                            Expect::Role(Var::Follower, "Leader"),
                            Expect::Role(Var::Other, "Follower"),
                            Expect::Role(Var::Leader, "Follower"),
                        ]),
                    ),
                    Act::Type("step off"),
                    Act::Type("lab none"),
                ],
                Expect::All(vec![Expect::LeaderIs(Var::Follower), Expect::Converged]),
                SHORT,
            ),
        ],
    }
}

/// Which half of a vote [`vote`] delivers.
enum Part {
    /// The candidate's request to the voter.
    Asked,
    /// The voter's answer to the candidate.
    Answered,
}

/// Delivers, in step mode, the vote request `candidate` holds for `voter`, or the answer
/// `voter` holds for `candidate`, once it is held.
fn vote(candidate: Var, voter: Var, part: Part) -> Act {
    let held = match part {
        Part::Asked => Held::new(&["MsgRequestVote"], Side::Is(candidate), Side::Is(voter)),
        Part::Answered => Held::new(
            &["MsgRequestVoteResponse"],
            Side::Is(voter),
            Side::Is(candidate),
        ),
    };
    Act::Deliver(held, 1)
}

fn early_ack() -> Chapter {
    Chapter {
        title: "Lab: an acknowledgement before the commit",
        steps: vec![
            step(
                "lab --unsafe ack-on-append: a leader tells the client a write succeeded as \
                 soon as it has appended it to its own log (and written it to disk), before a \
                 majority has it.",
                vec![Act::Type("lab --unsafe ack-on-append")],
                Expect::Succeeded,
                SHORT,
            ),
            step(
                "The leader, node {old_leader}, is cut off, and a write is sent to it.",
                vec![
                    Act::Note(Var::OldLeader, Pick::Leader),
                    Act::Note(Var::Term, Pick::Term),
                    Act::Type("fault isolate {old_leader}"),
                    Act::Type("put --node {old_leader} early acknowledged"),
                ],
                Expect::Succeeded,
                SHORT,
            )
            .with(Ask {
                question: "will the client be told that the write succeeded?",
                answers: &[
                    "no: cut off, the leader cannot commit it",
                    "yes: the leader has appended it, and that is all it waits for now",
                ],
                right: 1,
                why: "It is in one log only, node {old_leader}'s, uncommitted (yellow).",
            }),
            step(
                "The others elect a leader; then the cut heals.",
                vec![
                    Act::Until(Expect::OthersLead(Var::OldLeader)),
                    Act::Type("fault heal"),
                ],
                Expect::All(vec![
                    Expect::FollowsInHigherTerm(Var::OldLeader),
                    Expect::Converged,
                    Expect::Reads("early", None),
                ]),
                SHORT,
            )
            .with(Ask {
                question: "once healed, what will get early return?",
                answers: &[
                    "acknowledged: the client was told it succeeded",
                    "not found: the acknowledged write is gone",
                ],
                right: 1,
                why: "The new leader never had the entry; its own entry took that index, \
                          and node {old_leader} replaced its uncommitted entry with the \
                          leader's (log matching). Only a committed entry is sure to survive, \
                          which is why a write is acknowledged only once committed and \
                          applied; chaos calls this a lost write.",
            }),
            step(
                "lab none: every protection back on.",
                vec![Act::Type("lab none")],
                Expect::Succeeded,
                SHORT,
            ),
        ],
    }
}
