//! The step engine against a fake cluster: keys, claims that never come true, leaving and
//! going back (which must heal), and every chapter's commands parsing as the client's own.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use super::chapters::chapters;
use super::engine::{
    Act, Ask, Chapter, Ended, Expect, HeldView, Key, Line, NodeView, Pick, Ran, Step, Tone,
    TourCluster, Var, play,
};

/// Three nodes, node 1 leading in term 2; every command succeeds; `k` holds `value`.
#[derive(Default)]
struct Fake {
    runs: Mutex<Vec<String>>,
    value: Mutex<Option<String>>,
}

impl TourCluster for Fake {
    async fn nodes(&self) -> Vec<NodeView> {
        (1..=3)
            .map(|id| NodeView {
                id,
                addr: format!("127.0.0.1:{}", 7000 + id),
                up: true,
                role: if id == 1 { "Leader" } else { "Follower" }.into(),
                term: 2,
                leader: 1,
                commit: 5,
                applied: 5,
                last: 5,
                member: true,
                ..NodeView::default()
            })
            .collect()
    }
    async fn run(&self, line: &str) -> Ran {
        self.runs.lock().unwrap().push(line.to_string());
        Ran {
            ok: true,
            lines: vec!["✓ done".into()],
            duplicate: false,
        }
    }
    async fn members(&self) -> Vec<(u64, String)> {
        (1..=3).map(|id| (id, "voter".to_string())).collect()
    }
    async fn read(&self, _key: &str, _at: Option<u64>) -> Result<Option<String>, String> {
        Ok(self.value.lock().unwrap().clone())
    }
    async fn held(&self) -> Vec<HeldView> {
        Vec::new()
    }
}

/// A tour running in the background, and what it showed.
struct Running {
    keys: mpsc::UnboundedSender<Key>,
    lines: Arc<Mutex<Vec<Line>>>,
    cluster: Arc<Fake>,
    task: tokio::task::JoinHandle<Ended>,
}

fn start(chapters: Vec<Chapter>, start: usize) -> Running {
    let cluster = Arc::new(Fake::default());
    let lines = Arc::new(Mutex::new(Vec::new()));
    let (keys, rx) = mpsc::unbounded_channel();
    let task = {
        let (cluster, lines) = (Arc::clone(&cluster), Arc::clone(&lines));
        tokio::spawn(async move {
            let show = move |l: Line| lines.lock().unwrap().push(l);
            play(cluster, &chapters, start, rx, &show).await
        })
    };
    Running {
        keys,
        lines,
        cluster,
        task,
    }
}

impl Running {
    /// Waits (up to 10 s) for a line of `tone` containing `text`, after the first `from`.
    async fn wait_for(&self, tone: Tone, text: &str) -> usize {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            {
                let lines = self.lines.lock().unwrap();
                if let Some(i) = lines
                    .iter()
                    .position(|l| l.tone == tone && l.text.contains(text))
                {
                    return i;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "expected a {tone:?} line with {text:?}; the tour showed:\n{}",
                    lines
                        .iter()
                        .map(|l| format!("{:?} {}", l.tone, l.text))
                        .collect::<Vec<_>>()
                        .join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn prompts(&self) -> usize {
        let lines = self.lines.lock().unwrap();
        lines.iter().filter(|l| l.tone == Tone::Prompt).count()
    }

    /// Waits for the `n`th prompt (a key is awaited), up to 10 s.
    async fn wait_prompt(&self, n: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while self.prompts() < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "expected prompt {n}, saw {}",
                self.prompts()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn runs(&self) -> Vec<String> {
        self.cluster.runs.lock().unwrap().clone()
    }

    async fn ended(self) -> Ended {
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the tour did not end within 10 s")
            .expect("the tour panicked")
    }
}

fn step(acts: Vec<Act>, expect: Expect, within_ms: u64) -> Step {
    Step {
        say: "node {leader} leads",
        acts,
        expect,
        within: Duration::from_millis(within_ms),
        ask: None,
    }
}

fn chapter(title: &'static str, steps: Vec<Step>) -> Chapter {
    Chapter { title, steps }
}

#[tokio::test]
async fn a_claim_that_never_comes_true_ends_in_the_deadline_message() {
    let tour = start(
        vec![chapter(
            "never",
            vec![step(vec![], Expect::Reads("k", Some("v")), 300)],
        )],
        0,
    );
    tour.wait_prompt(1).await;
    tour.keys.send(Key::Next).unwrap();
    let failed = tour
        .wait_for(Tone::Failed, "expected get k to return \"v\" in time")
        .await;
    let text = tour.lines.lock().unwrap()[failed].text.clone();
    assert!(text.contains("get k returned (not found)"), "{text}");
    // It then offers the step again rather than going on.
    tour.wait_for(Tone::Prompt, "try the step again").await;
    *tour.cluster.value.lock().unwrap() = Some("v".into());
    tour.keys.send(Key::Next).unwrap();
    tour.wait_for(Tone::Passed, "get k returns \"v\"").await;
    assert_eq!(tour.ended().await, Ended::Finished);
}

#[tokio::test]
async fn leaving_mid_chapter_heals() {
    let tour = start(
        vec![chapter(
            "break",
            vec![
                step(
                    vec![
                        Act::Note(Var::Leader, Pick::Leader),
                        Act::Type("fault isolate {leader}"),
                        Act::Type("slow 10"),
                    ],
                    Expect::Nothing,
                    1000,
                ),
                step(vec![Act::Type("put a b")], Expect::Nothing, 1000),
            ],
        )],
        0,
    );
    tour.wait_prompt(1).await;
    tour.keys.send(Key::Next).unwrap();
    tour.wait_prompt(2).await;
    assert_eq!(tour.runs(), ["fault isolate 1", "slow 10"]);
    tour.keys.send(Key::Leave).unwrap();
    tour.wait_for(Tone::Title, "You left the tour; the cluster is healed")
        .await;
    let runs = tour.runs();
    assert_eq!(tour.ended().await, Ended::Left);
    assert_eq!(runs, ["fault isolate 1", "slow 10", "fault heal", "slow 1"]);
}

#[tokio::test]
async fn leaving_while_a_step_waits_heals_at_once() {
    let tour = start(
        vec![chapter(
            "wait",
            vec![step(
                vec![
                    Act::Type("fault freeze 2"),
                    Act::Until(Expect::Reads("k", Some("never"))),
                ],
                Expect::Nothing,
                60_000,
            )],
        )],
        0,
    );
    tour.wait_prompt(1).await;
    tour.keys.send(Key::Next).unwrap();
    tour.wait_for(Tone::Command, "fault freeze 2").await;
    tour.keys.send(Key::Leave).unwrap();
    // Well before the step's 60 s deadline.
    let cluster = Arc::clone(&tour.cluster);
    assert_eq!(tour.ended().await, Ended::Left);
    let runs = cluster.runs.lock().unwrap().clone();
    assert_eq!(runs, ["fault freeze 2", "fault heal", "slow 1"]);
}

#[tokio::test]
async fn back_heals_and_replays_the_chapter_before() {
    let tour = start(
        vec![
            chapter(
                "one",
                vec![step(vec![Act::Type("put one 1")], Expect::Nothing, 1000)],
            ),
            chapter(
                "two",
                vec![step(
                    vec![Act::Type("fault isolate 3")],
                    Expect::Nothing,
                    1000,
                )],
            ),
        ],
        1,
    );
    tour.wait_for(Tone::Title, "Chapter 2 of 2: two").await;
    tour.wait_prompt(1).await;
    tour.keys.send(Key::Back).unwrap();
    tour.wait_for(Tone::Title, "Chapter 1 of 2: one").await;
    tour.wait_prompt(2).await;
    assert_eq!(tour.runs(), ["fault heal", "slow 1"]);
    tour.keys.send(Key::Next).unwrap();
    tour.wait_prompt(3).await;
    tour.keys.send(Key::Next).unwrap();
    let cluster = Arc::clone(&tour.cluster);
    assert_eq!(tour.ended().await, Ended::Finished);
    let runs = cluster.runs.lock().unwrap().clone();
    // Every chapter ends healed.
    assert_eq!(
        runs,
        [
            "fault heal",
            "slow 1",
            "put one 1",
            "fault heal",
            "slow 1",
            "fault isolate 3",
            "fault heal",
            "slow 1"
        ]
    );
}

#[tokio::test]
async fn noted_values_fill_the_text_and_the_commands() {
    let tour = start(
        vec![chapter(
            "vars",
            vec![step(
                vec![
                    Act::Note(Var::Leader, Pick::Leader),
                    Act::Note(Var::Follower, Pick::Follower),
                    Act::Note(Var::Other, Pick::OtherFollower),
                    Act::Note(Var::NewNode, Pick::NextId),
                    Act::Type("fault cut {follower} {other}"),
                    Act::Type("member add {new} 127.0.0.1:{new_peer_port}"),
                ],
                Expect::NewLeader { not: None },
                1000,
            )],
        )],
        0,
    );
    tour.wait_prompt(1).await;
    tour.keys.send(Key::Next).unwrap();
    tour.wait_for(Tone::Passed, "node 1 is leader in term 2")
        .await;
    let cluster = Arc::clone(&tour.cluster);
    assert_eq!(tour.ended().await, Ended::Finished);
    let runs = cluster.runs.lock().unwrap().clone();
    assert_eq!(runs[..2], ["fault cut 2 3", "member add 4 127.0.0.1:6004"]);
}

/// Every command a chapter types is one the client's prompt accepts, once noted values are
/// filled in: the learner can type it again.
#[test]
fn every_chapter_types_commands_the_client_accepts() {
    let fill = |c: &str| {
        let mut c = c.to_string();
        for (name, value) in [
            ("leader", "1"),
            ("old_leader", "1"),
            ("follower", "2"),
            ("other", "3"),
            ("new", "4"),
            ("new_peer_port", "6004"),
            ("spare", "5"),
            ("spare2", "6"),
            ("spare_port", "6005"),
            ("spare2_port", "6006"),
            ("s1", "1"),
            ("term", "2"),
        ] {
            c = c.replace(&format!("{{{name}}}"), value);
        }
        c
    };
    let all = chapters();
    assert!(all.len() >= 8, "{} chapters", all.len());
    for ch in &all {
        for st in &ch.steps {
            assert!(!st.say.is_empty());
            for act in &st.acts {
                if let Act::Type(c) | Act::Background(c) = act {
                    let line = fill(c);
                    assert!(!line.contains('{'), "{line}: a value left unfilled");
                    match crate::tui::command::parse(&line) {
                        Ok(Some(_)) => {}
                        other => panic!("{:?}: {line:?} does not parse: {other:?}", ch.title),
                    }
                }
            }
        }
    }
}

/// A learner may start at any chapter (`tour N`), so every `{name}` a step shows or types
/// must be noted earlier in the same chapter: by the time its text is shown (after the
/// step's leading notes) or its command typed (after the acts before it).
#[test]
fn every_value_a_chapter_names_is_noted_in_that_chapter_first() {
    fn names(text: &str) -> Vec<String> {
        text.split('{')
            .skip(1)
            .filter_map(|rest| rest.split_once('}').map(|(name, _)| name.to_string()))
            // `{index+1}`: the noted index, plus one.
            .map(|name| name.split('+').next().unwrap_or_default().to_string())
            .collect()
    }
    fn notes(act: &Act, known: &mut Vec<&'static str>) {
        if let Act::Note(var, pick) = act {
            known.push(var.name());
            if *pick == Pick::NextId {
                known.push(Var::NewPeerPort.name());
            }
        }
    }
    fn expects(e: &Expect, known: &mut Vec<&'static str>) {
        match e {
            Expect::NewLeader { .. } => known.extend([Var::Leader.name(), Var::Term.name()]),
            Expect::All(all) => all.iter().for_each(|e| expects(e, known)),
            _ => {}
        }
    }
    for ch in chapters() {
        let mut known: Vec<&'static str> = Vec::new();
        for (i, st) in ch.steps.iter().enumerate() {
            let leading = st.acts.iter().take_while(|a| matches!(a, Act::Note(..)));
            leading.for_each(|a| notes(a, &mut known));
            let asked = st
                .ask
                .iter()
                .flat_map(|a| a.answers.iter().copied().chain([a.question]));
            for name in asked.chain([st.say]).flat_map(names) {
                assert!(
                    known.contains(&name.as_str()),
                    "{:?} step {}: its text names {{{name}}} before it is noted",
                    ch.title,
                    i + 1
                );
            }
            for act in &st.acts {
                notes(act, &mut known);
                if let Act::Type(c) | Act::Background(c) = act {
                    for name in names(c) {
                        assert!(
                            known.contains(&name.as_str()),
                            "{:?} step {}: {c:?} names {{{name}}} before it is noted",
                            ch.title,
                            i + 1
                        );
                    }
                }
                if let Act::Until(e) = act {
                    expects(e, &mut known);
                }
            }
            expects(&st.expect, &mut known);
        }
    }
}

fn predicting(right: usize) -> Vec<Chapter> {
    vec![chapter(
        "predict",
        vec![
            step(
                vec![Act::Note(Var::Leader, Pick::Leader), Act::Type("put a b")],
                Expect::Nothing,
                1000,
            )
            .with(Ask {
                question: "will node {leader} answer?",
                answers: &["no", "yes, node {leader} does"],
                right,
                why: "it leads.",
            }),
        ],
    )]
}

#[tokio::test]
async fn a_prediction_is_asked_before_the_step_and_told_after_its_check() {
    let tour = start(predicting(1), 0);
    tour.wait_for(Tone::Text, "will node 1 answer?").await;
    tour.wait_for(Tone::Text, "2. yes, node 1 does").await;
    tour.wait_for(Tone::Prompt, "1-2: your prediction").await;
    // A digit out of range and Enter-less keys do nothing; the step waits for an answer.
    tour.keys.send(Key::Answer(7)).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(tour.runs().is_empty(), "{:?}", tour.runs());
    tour.keys.send(Key::Answer(2)).unwrap();
    tour.wait_for(
        Tone::Passed,
        "your prediction held: yes, node 1 does. it leads.",
    )
    .await;
    assert_eq!(tour.runs()[0], "put a b");
    assert_eq!(tour.ended().await, Ended::Finished);
}

#[tokio::test]
async fn a_wrong_prediction_and_none_are_told_the_right_answer() {
    let tour = start(predicting(0), 0);
    tour.wait_prompt(1).await;
    tour.keys.send(Key::Answer(2)).unwrap();
    tour.wait_for(Tone::Text, "not this time: you said 2, and it was 1: no.")
        .await;
    assert_eq!(tour.ended().await, Ended::Finished);
    let tour = start(predicting(1), 0);
    tour.wait_prompt(1).await;
    tour.keys.send(Key::Next).unwrap();
    tour.wait_for(Tone::Text, "The answer was 2: yes, node 1 does.")
        .await;
    assert_eq!(tour.ended().await, Ended::Finished);
}

#[tokio::test]
async fn a_chapter_that_switched_a_protection_off_ends_with_every_protection_on() {
    let tour = start(
        vec![chapter(
            "lab",
            vec![step(
                vec![Act::Type("lab --no-pre-vote")],
                Expect::Nothing,
                1000,
            )],
        )],
        0,
    );
    tour.wait_prompt(1).await;
    tour.keys.send(Key::Next).unwrap();
    let cluster = Arc::clone(&tour.cluster);
    assert_eq!(tour.ended().await, Ended::Finished);
    let runs = cluster.runs.lock().unwrap().clone();
    assert_eq!(
        runs,
        ["lab --no-pre-vote", "fault heal", "slow 1", "lab none"]
    );
}

#[test]
fn every_chapter_of_the_labs_and_chapters_1_3_4_asks_for_a_prediction() {
    let all = chapters();
    for (i, ch) in all.iter().enumerate() {
        let asks = ch.steps.iter().filter(|s| s.ask.is_some()).count();
        if [0, 2, 3].contains(&i) || ch.title.starts_with("Lab:") {
            assert!(asks >= 1, "chapter {} ({}) asks nothing", i + 1, ch.title);
        }
        for s in ch.steps.iter().filter_map(|s| s.ask.as_ref()) {
            assert!(
                (2..=4).contains(&s.answers.len()) && s.right < s.answers.len(),
                "{}: {:?}",
                ch.title,
                s.question
            );
        }
    }
    assert!(all.iter().filter(|c| c.title.starts_with("Lab:")).count() >= 4);
}
