//! What the tour's claims mean: each [`Expect`] checked against the cluster as it is now
//! (`Ok` with what holds, in words, or `Err` with what was seen), and described for the
//! message shown when one never comes true.

use super::engine::{Expect, NodeView, Tone, Tour, TourCluster, Var};

impl<C: TourCluster> Tour<'_, C> {
    /// `Ok(what holds, in words)` or `Err(what was seen)`.
    pub(super) async fn holds(&mut self, expect: &Expect) -> Result<String, String> {
        let nodes = self.cluster.nodes().await;
        let node = |id: u64| nodes.iter().find(|n| n.id == id && n.up);
        let leader = agreed_leader(&nodes);
        match expect {
            Expect::Nothing => Ok(String::new()),
            Expect::All(all) => {
                let mut said = Vec::new();
                for e in all {
                    said.push(Box::pin(self.holds(e)).await?);
                }
                Ok(said.join("; "))
            }
            Expect::NewLeader { not } => {
                let not = not.map(|v| self.var(v));
                match leader {
                    Some(l) if Some(l.id) != not => {
                        self.vars.insert(Var::Leader, l.id);
                        let before = self.var(Var::Term);
                        self.vars.insert(Var::Term, l.term);
                        let was = if before > 0 && l.term > before {
                            format!(" (the term was {before}: an election happened)")
                        } else {
                            String::new()
                        };
                        Ok(format!("node {} is leader in term {}{was}", l.id, l.term))
                    }
                    _ => Err(describe_nodes(&nodes)),
                }
            }
            Expect::FollowsInHigherTerm(v) => {
                let (id, term) = (self.var(*v), self.var(Var::Term));
                match node(id) {
                    Some(n) if n.role == "Follower" && n.term >= term && n.leader != 0 => {
                        Ok(format!(
                            "node {id} follows node {} in term {} (it had led in an older term)",
                            n.leader, n.term
                        ))
                    }
                    _ => Err(describe_nodes(&nodes)),
                }
            }
            Expect::Converged => {
                let up: Vec<&NodeView> = nodes
                    .iter()
                    .filter(|n| n.up && !n.frozen && n.member)
                    .collect();
                let applied: Vec<u64> = up.iter().map(|n| n.applied).collect();
                let same = !applied.is_empty() && applied.windows(2).all(|w| w[0] == w[1]);
                match leader {
                    Some(l) if same && l.commit == applied[0] => Ok(format!(
                        "every node has applied index {} (the leader's commit)",
                        applied[0]
                    )),
                    _ => Err(describe_nodes(&nodes)),
                }
            }
            Expect::Reads(key, value) => match self.cluster.read(key, None).await {
                Ok(v) if v.as_deref() == *value => {
                    Ok(format!("get {key} returns {}", shown(v.as_deref())))
                }
                Ok(v) => Err(format!("get {key} returned {}", shown(v.as_deref()))),
                Err(e) => Err(format!("get {key}: {e}")),
            },
            Expect::StaleAt(v, key, value) => {
                let id = self.var(*v);
                match self.cluster.read(key, Some(id)).await {
                    Ok(got) if got.as_deref() == *value => Ok(format!(
                        "node {id}'s own copy of {key} is {}",
                        shown(got.as_deref())
                    )),
                    Ok(got) => Err(format!(
                        "node {id}'s copy of {key} is {}",
                        shown(got.as_deref())
                    )),
                    Err(e) => Err(format!("node {id}: {e}")),
                }
            }
            Expect::RefusedAt(v, key) => {
                let id = self.var(*v);
                let ran = self.cluster.run(&format!("get --node {id} {key}")).await;
                if ran.ok {
                    Err(format!(
                        "node {id} answered a linearizable get: {}",
                        ran.lines.join(" ")
                    ))
                } else {
                    let why = ran.lines.last().map_or("", String::as_str);
                    Ok(format!(
                        "node {id} refuses a linearizable get of {key}: {}",
                        why.trim_start_matches("error: ")
                    ))
                }
            }
            Expect::Uncommitted(v) => {
                let id = self.var(*v);
                match node(id) {
                    Some(n) if n.last > n.commit => Ok(format!(
                        "node {id} has {} entr{} past its commit index {} (yellow in its log)",
                        n.last - n.commit,
                        if n.last - n.commit == 1 { "y" } else { "ies" },
                        n.commit
                    )),
                    _ => Err(describe_nodes(&nodes)),
                }
            }
            Expect::NoneUncommitted(v) => {
                let id = self.var(*v);
                match node(id) {
                    Some(n) if n.last == n.commit => Ok(format!(
                        "node {id} has no uncommitted entries left (log up to {})",
                        n.last
                    )),
                    _ => Err(describe_nodes(&nodes)),
                }
            }
            Expect::LastAbove(v) => {
                let (id, index) = (self.var(*v), self.var(Var::Index));
                match node(id) {
                    Some(n) if n.last > index => Ok(format!(
                        "node {id} has the new entry (log up to {})",
                        n.last
                    )),
                    _ => Err(describe_nodes(&nodes)),
                }
            }
            Expect::CaughtUp(v) => {
                let id = self.var(*v);
                match (node(id), leader) {
                    (Some(n), Some(l)) if n.applied >= l.commit && l.commit > 0 => {
                        let how = if n.snapshot > self.var(Var::Index) {
                            format!("by installing the leader's snapshot (index {})", n.snapshot)
                        } else {
                            "from the leader's log entries".to_string()
                        };
                        Ok(format!("node {id} caught up to index {}, {how}", n.applied))
                    }
                    _ => Err(describe_nodes(&nodes)),
                }
            }
            Expect::FarBehind(v) => {
                let id = self.var(*v);
                match (node(id), leader) {
                    (Some(n), Some(l)) if l.applied >= n.applied + 100 => Ok(format!(
                        "node {id} is {} entries behind the leader",
                        l.applied - n.applied
                    )),
                    _ => Err(describe_nodes(&nodes)),
                }
            }
            Expect::LogBehind(v) => {
                let id = self.var(*v);
                match (node(id), leader) {
                    (Some(n), Some(l)) if n.last < l.last => Ok(format!(
                        "node {id}'s log ends at index {}, the leader's at {}",
                        n.last, l.last
                    )),
                    _ => Err(describe_nodes(&nodes)),
                }
            }
            Expect::LeaderIs(v) => {
                let id = self.var(*v);
                match leader {
                    Some(l) if l.id == id => {
                        self.vars.insert(Var::Term, l.term);
                        Ok(format!("node {id} is leader in term {}", l.term))
                    }
                    _ => Err(describe_nodes(&nodes)),
                }
            }
            Expect::Waiting(v) => {
                let id = self.var(*v);
                let members = self.cluster.members().await;
                let member = members.iter().any(|(m, _)| *m == id);
                match node(id) {
                    Some(n) if !member && n.applied == 0 => {
                        Ok(format!("node {id} runs and waits to be added"))
                    }
                    Some(_) if !member => Err(format!(
                        "node {id} was a member and was removed: with its old data it never \
                         takes part again. Start it afresh: ./playground --add {id} in a shell \
                         (Ctrl+b c opens one) replaces it"
                    )),
                    Some(_) => Err(format!("node {id} is already a member")),
                    None => Err(format!(
                        "node {id} does not answer: start it first (in the playground, \
                         ./playground --add {id} in a shell: Ctrl+b c opens one)"
                    )),
                }
            }
            Expect::Member(v, role) => {
                let id = self.var(*v);
                let members = self.cluster.members().await;
                match members.iter().find(|(m, _)| *m == id) {
                    Some((_, r)) if r == role => Ok(format!("node {id} is a {role}")),
                    Some((_, r)) => Err(format!("node {id} is a {r}")),
                    None => Err(format!("node {id} is not a member")),
                }
            }
            Expect::NotMember(v) => {
                let id = self.var(*v);
                let members = self.cluster.members().await;
                if members.iter().any(|(m, _)| *m == id) {
                    Err(format!("node {id} is still a member"))
                } else {
                    let ids: Vec<String> = members.iter().map(|(m, _)| m.to_string()).collect();
                    Ok(format!(
                        "node {id} is out; the members are {}",
                        ids.join(", ")
                    ))
                }
            }
            Expect::Background { duplicate } => {
                self.finish_background().await;
                let Some(ran) = &self.background_ran else {
                    return Err(if self.background.is_some() {
                        "the background command is still running".to_string()
                    } else {
                        "nothing runs in the background".to_string()
                    });
                };
                match (ran.ok, ran.duplicate, duplicate) {
                    (true, true, true) => Ok(
                        "the write was sent twice with one request id and applied once: the \
                         second time the cluster answered \"already applied\""
                            .to_string(),
                    ),
                    (true, _, false) => Ok("the background command succeeded".to_string()),
                    (true, false, true) => Err(
                        "the write succeeded at its first leader: no retry was needed this time"
                            .to_string(),
                    ),
                    (false, ..) => Err(format!("it failed: {}", ran.lines.join(" "))),
                }
            }
            Expect::Said(text) => {
                if self.last_said.iter().any(|l| l.contains(text)) {
                    Ok(format!("it said: {text}"))
                } else {
                    Err(format!("it said: {}", self.last_said.join(" / ")))
                }
            }
            Expect::Succeeded => {
                if self.last_ok {
                    Ok(format!("it said: {}", self.last_said.join(" / ")))
                } else {
                    Err(format!("it failed: {}", self.last_said.join(" / ")))
                }
            }
            Expect::Campaigned(v, n) => {
                let id = self.var(*v);
                // The count is over the last minute: elections from before the note drop
                // out of it while new ones come in. The lowest count seen since is a floor
                // that only elections started after the note can rise above.
                let Some(x) = node(id) else {
                    return Err(describe_nodes(&nodes));
                };
                let seen = u64::from(x.elections);
                if seen < self.var(Var::Elections) {
                    self.vars.insert(Var::Elections, seen);
                }
                if seen >= self.var(Var::Elections) + u64::from(*n) {
                    Ok(format!(
                        "node {id} has started {seen} elections in the last minute (its liveness \
                         line in status)"
                    ))
                } else {
                    Err(describe_nodes(&nodes))
                }
            }
            Expect::TermAbove(v, by) => {
                let (id, term) = (self.var(*v), self.var(Var::Term));
                match node(id) {
                    Some(x) if x.term >= term + by => {
                        Ok(format!("node {id} is in term {} (it was {term})", x.term))
                    }
                    _ => Err(describe_nodes(&nodes)),
                }
            }
            Expect::Steady(v) => {
                let (id, term, l) = (self.var(*v), self.var(Var::Term), self.var(Var::Leader));
                match (node(l), node(id)) {
                    (Some(a), Some(b))
                        if a.role == "Leader" && a.term == term && b.term == term =>
                    {
                        Ok(format!(
                            "node {l} still leads in term {term}, and node {id} is still in term                              {term}: nothing changed"
                        ))
                    }
                    _ => Err(describe_nodes(&nodes)),
                }
            }
            Expect::VotedForNobody(v) => {
                let (id, term) = (self.var(*v), self.var(Var::Term));
                match node(id) {
                    Some(n) if n.term == term && n.vote == 0 => Ok(format!(
                        "node {id} is back in term {term} and has voted for nobody in it"
                    )),
                    Some(n) => Err(format!(
                        "node {id} is in term {} and has voted for {}",
                        n.term,
                        if n.vote == 0 {
                            "nobody".to_string()
                        } else {
                            format!("node {}", n.vote)
                        }
                    )),
                    None => Err(format!("node {id} does not answer yet")),
                }
            }
            Expect::Settled => {
                let up: Vec<&NodeView> = nodes.iter().filter(|n| n.up && n.member).collect();
                let settled = leader.is_some_and(|l| {
                    l.applied == l.last && up.iter().all(|n| n.commit == l.last && n.last == l.last)
                });
                match leader {
                    Some(l) if settled => Ok(format!(
                        "every member's log ends at index {}, committed everywhere",
                        l.last
                    )),
                    _ => Err(describe_logs(&nodes)),
                }
            }
            Expect::LastIs(v, plus) => {
                let (id, want) = (self.var(*v), self.var(Var::Index) + plus);
                match node(id) {
                    Some(n) if n.last == want => Ok(format!("node {id}'s log ends at {want}")),
                    _ => Err(describe_logs(&nodes)),
                }
            }
            Expect::CommittedNowhere(plus) => {
                let at = self.var(Var::Index) + plus;
                let up: Vec<&NodeView> = nodes.iter().filter(|n| n.up && n.member).collect();
                if !up.is_empty() && up.iter().all(|n| n.commit < at) {
                    Ok(format!(
                        "entry {at} is committed nowhere: every member's commit index is below it"
                    ))
                } else {
                    Err(describe_logs(&nodes))
                }
            }
            Expect::Role(v, role) => {
                let id = self.var(*v);
                match node(id) {
                    Some(n) if n.role == *role => {
                        Ok(format!("node {id} is a {role} in term {}", n.term))
                    }
                    _ => Err(describe_logs(&nodes)),
                }
            }
            Expect::LeadsWith {
                node: v,
                commit,
                other,
            } => {
                let (id, with) = (self.var(*v), self.var(*other));
                let at = self.var(Var::Index) + commit;
                match (node(id), node(with)) {
                    (Some(l), Some(o))
                        if l.role == "Leader" && l.commit >= at && o.last == l.last =>
                    {
                        Ok(format!(
                            "node {id} leads in term {}, has committed up to {}, and node \
                             {with}'s log ends where its own does ({})",
                            l.term, l.commit, l.last
                        ))
                    }
                    _ => Err(describe_logs(&nodes)),
                }
            }
            Expect::TwoLeaders(a, b) => {
                let (a, b) = (self.var(*a), self.var(*b));
                match (node(a), node(b)) {
                    (Some(x), Some(y))
                        if x.role == "Leader" && y.role == "Leader" && x.term == y.term =>
                    {
                        Ok(format!(
                            "nodes {a} and {b} both lead, in term {}: two leaders in one term",
                            x.term
                        ))
                    }
                    _ => Err(describe_logs(&nodes)),
                }
            }
            Expect::BackgroundSaid(text) => {
                self.finish_background().await;
                match &self.background_ran {
                    Some(ran) if !ran.ok && ran.lines.iter().any(|l| l.contains(text)) => Ok(
                        format!("the background command said: {}", ran.lines.join(" ")),
                    ),
                    Some(ran) => Err(format!(
                        "the background command {}: {}",
                        if ran.ok { "succeeded" } else { "failed" },
                        ran.lines.join(" ")
                    )),
                    None if self.background.is_some() => {
                        Err("the background command is still running".to_string())
                    }
                    None => Err("nothing runs in the background".to_string()),
                }
            }
            Expect::OthersLead(v) | Expect::StillLeads(v) => {
                let (id, term) = (self.var(*v), self.var(Var::Term));
                let others: Vec<&NodeView> = nodes
                    .iter()
                    .filter(|n| n.up && !n.frozen && n.member && n.id != id)
                    .collect();
                let new = others
                    .first()
                    .map(|n| n.leader)
                    .filter(|l| *l != 0 && *l != id);
                let agreed = new.filter(|l| {
                    others.iter().all(|n| n.leader == *l && n.term > term)
                        && others.iter().any(|n| n.id == *l && n.role == "Leader")
                });
                let old = node(id);
                let still = matches!(expect, Expect::StillLeads(_));
                match (agreed, old) {
                    (Some(l), Some(o)) if still && o.role == "Leader" && o.term == term => {
                        self.vars.insert(Var::Leader, l);
                        Ok(format!(
                            "node {l} leads the others in term {}, and node {id} still says                              Leader, in term {term}: two leaders, in two terms",
                            others[0].term
                        ))
                    }
                    (Some(l), _) if !still => {
                        self.vars.insert(Var::Leader, l);
                        Ok(format!(
                            "the others follow node {l} in term {}",
                            others[0].term
                        ))
                    }
                    _ => Err(describe_nodes(&nodes)),
                }
            }
        }
    }

    pub(super) fn describe(&self, expect: &Expect) -> String {
        let v = |v: &Var| self.var(*v);
        match expect {
            Expect::Nothing => "nothing".into(),
            Expect::All(all) => all
                .iter()
                .map(|e| self.describe(e))
                .collect::<Vec<_>>()
                .join(" and "),
            Expect::NewLeader { not: Some(n) } => format!("a leader other than node {}", v(n)),
            Expect::NewLeader { not: None } => "a leader".into(),
            Expect::FollowsInHigherTerm(n) => format!("node {} to follow in a newer term", v(n)),
            Expect::Converged => "every node to apply the same index".into(),
            Expect::Reads(k, val) => format!("get {k} to return {}", shown(*val)),
            Expect::StaleAt(n, k, val) => {
                format!("node {}'s copy of {k} to be {}", v(n), shown(*val))
            }
            Expect::RefusedAt(n, k) => format!("node {} to refuse a linearizable get of {k}", v(n)),
            Expect::Uncommitted(n) => format!("node {} to hold uncommitted entries", v(n)),
            Expect::NoneUncommitted(n) => format!("node {} to hold no uncommitted entry", v(n)),
            Expect::LastAbove(n) => format!("node {} to receive the new entry", v(n)),
            Expect::CaughtUp(n) => format!("node {} to catch up with the leader", v(n)),
            Expect::FarBehind(n) => format!("node {} to fall 100 entries behind", v(n)),
            Expect::LogBehind(n) => format!("node {}'s log to end before the leader's", v(n)),
            Expect::LeaderIs(n) => format!("node {} to lead", v(n)),
            Expect::Waiting(n) => format!("node {} to run, waiting to be added", v(n)),
            Expect::Member(n, r) => format!("node {} to be a {r}", v(n)),
            Expect::NotMember(n) => format!("node {} to leave the cluster", v(n)),
            Expect::Background { .. } => "the background command to finish".into(),
            Expect::Said(t) => format!("the command to say {t:?}"),
            Expect::Succeeded => "the command to succeed".into(),
            Expect::Campaigned(n, k) => format!("node {} to start {k} elections", v(n)),
            Expect::TermAbove(n, by) => format!("node {}'s term to rise by {by}", v(n)),
            Expect::Steady(n) => format!(
                "node {} to keep leading, and node {} to keep its term",
                v(&Var::Leader),
                v(n)
            ),
            Expect::OthersLead(n) => format!("the nodes but {} to elect a leader", v(n)),
            Expect::VotedForNobody(n) => format!(
                "node {} to be restarted (Ctrl+C, ↑ Enter in its pane) and answer, having voted for nobody in its term",
                v(n)
            ),
            Expect::StillLeads(n) => format!(
                "the others to elect a leader while node {} still says Leader",
                v(n)
            ),
            Expect::Settled => "every member's log to end at one committed index".into(),
            Expect::LastIs(n, plus) => format!(
                "node {}'s log to end at {}",
                v(n),
                self.var(Var::Index) + plus
            ),
            Expect::CommittedNowhere(plus) => format!(
                "entry {} to be committed nowhere",
                self.var(Var::Index) + plus
            ),
            Expect::Role(n, role) => format!("node {} to be a {role}", v(n)),
            Expect::LeadsWith {
                node,
                commit,
                other,
            } => format!(
                "node {} to lead, commit {} and bring node {} to its log",
                v(node),
                self.var(Var::Index) + commit,
                v(other)
            ),
            Expect::BackgroundSaid(t) => format!("the background command to fail, saying {t:?}"),
            Expect::TwoLeaders(a, b) => {
                format!("nodes {} and {} to lead in one term", v(a), v(b))
            }
        }
    }

    /// Takes the background command's result once it has finished, showing what it said.
    async fn finish_background(&mut self) {
        if let Some(handle) = self.background.take_if(|h| h.is_finished()) {
            let ran = handle.await.unwrap_or_default();
            for l in &ran.lines {
                self.say(Tone::Output, format!("  {l}"));
            }
            self.background_ran = Some(ran);
        }
    }
}

/// Each node's role, term, commit and last index: what the log claims are about.
fn describe_logs(nodes: &[NodeView]) -> String {
    let parts: Vec<String> = nodes
        .iter()
        .filter(|n| n.member || n.up)
        .map(|n| {
            if n.up {
                format!(
                    "node {} {} t{} commit {} last {}",
                    n.id, n.role, n.term, n.commit, n.last
                )
            } else {
                format!("node {} down", n.id)
            }
        })
        .collect();
    parts.join(", ")
}

/// The leader of the highest term among answering, unfrozen members, unless another member
/// of that term names a different leader (a cut-off node of the same term may name none).
pub(super) fn agreed_leader(nodes: &[NodeView]) -> Option<&NodeView> {
    let live: Vec<&NodeView> = nodes
        .iter()
        .filter(|n| n.up && !n.frozen && n.member)
        .collect();
    let leader = live
        .iter()
        .filter(|n| n.role == "Leader")
        .max_by_key(|n| n.term)?;
    let agreed = live
        .iter()
        .filter(|n| n.term == leader.term && n.id != leader.id)
        .all(|n| n.leader == leader.id || n.leader == 0);
    agreed.then_some(*leader)
}

pub(super) fn describe_nodes(nodes: &[NodeView]) -> String {
    let parts: Vec<String> = nodes
        .iter()
        .map(|n| {
            if !n.up {
                format!("node {} down", n.id)
            } else {
                format!(
                    "node {} {}{}{} t{} applied {}",
                    n.id,
                    n.role,
                    if n.frozen { " (frozen)" } else { "" },
                    if n.member { "" } else { " (not a member)" },
                    n.term,
                    n.applied
                )
            }
        })
        .collect();
    parts.join(", ")
}

fn shown(v: Option<&str>) -> String {
    v.map_or("(not found)".to_string(), |v| format!("{v:?}"))
}
