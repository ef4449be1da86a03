//! The tour's acts in step mode: choosing held messages by kind, sender and addressee,
//! delivering or dropping them one `step next|drop NODE ID` at a time (shown as one line),
//! rounds of that until a claim holds, and ticking a node until it campaigns.

use std::time::Duration;

use tokio::time::Instant;

use super::engine::{Expect, Held, HeldView, Side, Tone, Tour, TourCluster, Var};

impl<C: TourCluster> Tour<'_, C> {
    /// Whether node `id` is one `side` chooses.
    fn side(&self, side: Side, id: u64) -> bool {
        match side {
            Side::Any => true,
            Side::Is(v) => id == self.var(v),
            Side::Not(v) => id != self.var(v),
            Side::In(vs) => vs.iter().any(|v| id == self.var(*v)),
        }
    }

    fn chooses(&self, held: &Held, m: &HeldView) -> bool {
        (held.kinds.is_empty() || held.kinds.contains(&m.kind.as_str()))
            && self.side(held.from, m.from)
            && self.side(held.to, m.to)
    }

    /// The held messages `held` chooses, once there are at least `n` (None, having said
    /// what was held instead, if not by `deadline`).
    pub(super) async fn held_matching(
        &self,
        held: &Held,
        n: usize,
        deadline: Instant,
    ) -> Option<Vec<HeldView>> {
        loop {
            let all = self.cluster.held().await;
            let chosen: Vec<HeldView> = all
                .iter()
                .filter(|m| self.chooses(held, m))
                .cloned()
                .collect();
            if chosen.len() >= n {
                return Some(chosen);
            }
            if Instant::now() >= deadline {
                self.say(
                    Tone::Failed,
                    format!(
                        "✗ expected {n} held messages of {} in time, but {} came; held: {}",
                        self.describe_held(held),
                        chosen.len(),
                        describe_messages(&all)
                    ),
                );
                return None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Delivers (or drops) `chosen`, one `step next|drop NODE ID` each; with `show`, as one
    /// command line naming the messages, and one line of what it did. False (said) if one
    /// could not be.
    pub(super) async fn release(&mut self, chosen: &[HeldView], deliver: bool, show: bool) -> bool {
        let verb = if deliver { "next" } else { "drop" };
        if show && !chosen.is_empty() {
            let typed: Vec<String> = chosen
                .iter()
                .map(|m| format!("step {verb} {} {}", m.node, m.hold_id))
                .collect();
            self.say(
                Tone::Command,
                format!("› {}   ({})", typed.join(" ; "), describe_messages(chosen)),
            );
        }
        for m in chosen {
            let ran = self
                .cluster
                .run(&format!("step {verb} {} {}", m.node, m.hold_id))
                .await;
            if !ran.ok {
                self.say(
                    Tone::Failed,
                    format!(
                        "✗ step {verb} {} {} ({} {}→{}): {}",
                        m.node,
                        m.hold_id,
                        m.kind,
                        m.from,
                        m.to,
                        ran.lines.join(" ")
                    ),
                );
                return false;
            }
        }
        if show {
            let done = if deliver { "delivered" } else { "dropped" };
            let s = if chosen.len() == 1 { "" } else { "s" };
            self.say(
                Tone::Output,
                format!("  ✓ {} message{s} {done}", chosen.len()),
            );
        }
        true
    }

    /// Rounds of delivering what `held` chooses and dropping the rest, until `expect`.
    pub(super) async fn deliver_until(
        &mut self,
        held: &Held,
        expect: &Expect,
        deadline: Instant,
    ) -> bool {
        let what = if *held == Held::ALL {
            "every held message".to_string()
        } else {
            format!(
                "{}, step drop for every other message",
                self.describe_held(held)
            )
        };
        self.say(
            Tone::Command,
            format!("› step next for {what}, until {}", self.describe(expect)),
        );
        let (mut delivered, mut dropped) = (0, 0);
        loop {
            let all = self.cluster.held().await;
            let (chosen, rest): (Vec<HeldView>, Vec<HeldView>) =
                all.into_iter().partition(|m| self.chooses(held, m));
            if !self.release(&chosen, true, false).await || !self.release(&rest, false, false).await
            {
                return false;
            }
            delivered += chosen.len();
            dropped += rest.len();
            match self.holds(expect).await {
                Ok(said) => {
                    self.say(
                        Tone::Output,
                        format!("  ✓ {delivered} delivered, {dropped} dropped: {said}"),
                    );
                    return true;
                }
                Err(seen) if Instant::now() >= deadline => {
                    self.say(
                        Tone::Failed,
                        format!(
                            "✗ expected {} in time ({delivered} delivered, {dropped} dropped); \
                             last seen: {seen}",
                            self.describe(expect)
                        ),
                    );
                    return false;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// `step tick ID` until node `v` is a Candidate, shown as one line.
    pub(super) async fn campaign(&mut self, v: Var, deadline: Instant) -> bool {
        let id = self.var(v);
        let mut ticks = 0;
        loop {
            let role = self
                .cluster
                .nodes()
                .await
                .into_iter()
                .find(|n| n.id == id && n.up)
                .map(|n| (n.role, n.term));
            if let Some((role, term)) = &role
                && role == "Candidate"
            {
                self.say(
                    Tone::Command,
                    format!("› step tick {id}   ({ticks} times, until its election timer ran out)"),
                );
                self.say(
                    Tone::Output,
                    format!("  ✓ node {id} campaigns: a Candidate in term {term}"),
                );
                return true;
            }
            if Instant::now() >= deadline || ticks >= 200 {
                self.say(
                    Tone::Failed,
                    format!(
                        "✗ expected node {id} to campaign after step tick {id}, but after {ticks} \
                         ticks it is {}",
                        role.map_or("not answering".to_string(), |(r, t)| format!(
                            "a {r} in term {t}"
                        ))
                    ),
                );
                return false;
            }
            let ran = self.cluster.run(&format!("step tick {id}")).await;
            if !ran.ok {
                self.say(
                    Tone::Failed,
                    format!("✗ step tick {id}: {}", ran.lines.join(" ")),
                );
                return false;
            }
            ticks += 1;
        }
    }

    /// `held` in words: "MsgAppend from node 1 to node 3", ...
    fn describe_held(&self, held: &Held) -> String {
        let kinds = if held.kinds.is_empty() {
            "every message".to_string()
        } else {
            held.kinds.join("/")
        };
        let side = |s: Side, word: &str| match s {
            Side::Any => String::new(),
            Side::Is(v) => format!(" {word} node {}", self.var(v)),
            Side::Not(v) => format!(" {word} any node but {}", self.var(v)),
            Side::In(vs) => {
                let ids: Vec<String> = vs.iter().map(|v| self.var(*v).to_string()).collect();
                format!(" {word} node {}", ids.join(" or "))
            }
        };
        format!("{kinds}{}{}", side(held.from, "from"), side(held.to, "to"))
    }
}

/// Held messages in words, grouped by kind: "MsgAppend 1→2, 1→3; MsgRequestVote 5→1".
fn describe_messages(held: &[HeldView]) -> String {
    if held.is_empty() {
        return "none".to_string();
    }
    let mut kinds: Vec<(&str, Vec<String>)> = Vec::new();
    for m in held {
        let hop = format!("{}→{}", m.from, m.to);
        match kinds.iter_mut().find(|(k, _)| *k == m.kind) {
            Some((_, hops)) => hops.push(hop),
            None => kinds.push((&m.kind, vec![hop])),
        }
    }
    kinds
        .iter()
        .map(|(k, hops)| format!("{k} {}", hops.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}
