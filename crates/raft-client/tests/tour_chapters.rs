//! Tour chapters played one at a time on a live cluster, through the tour's own engine and
//! client, at a reader's pace: some prompts are read for longer than a node's request
//! deadline (5 s) while the cluster waits in step mode, and a step that asks for a node to be
//! restarted by hand gets it (killed and started again with its data, as Ctrl+C and ↑
//! Enter in its pane do).

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use raft_client::tour::chapters::chapters;
use raft_client::tour::engine::{Ended, Key, Line, Tone, play};
use raft_client::tour::live::LiveCluster;

/// What playing one chapter showed: each line as `Tone: text`.
struct Played {
    text: Vec<String>,
}

impl Played {
    fn shown(&self) -> String {
        self.text.join("\n")
    }

    /// Asserts that no check failed and every question was told.
    fn passed(&self, questions: usize) {
        let shown = self.shown();
        let failed: Vec<&String> = self
            .text
            .iter()
            .filter(|l| l.starts_with("Failed"))
            .collect();
        assert!(
            failed.is_empty(),
            "every check of the chapter passes: {failed:?}\n{shown}"
        );
        let told = self
            .text
            .iter()
            .filter(|l| {
                l.contains("your prediction held")
                    || l.contains("not this time")
                    || l.contains("The answer was")
            })
            .count();
        assert_eq!(told, questions, "predictions told:\n{shown}");
    }

    fn says(&self, claims: &[&str]) {
        let shown = self.shown();
        for claim in claims {
            assert!(
                shown.contains(claim),
                "the chapter shows {claim:?}:\n{shown}"
            );
        }
    }
}

/// Plays the chapter whose title starts with `title` on `c` (through nodes 1-3's
/// addresses, as `./playground` gives the client), to its end.
fn play_chapter(c: &mut Cluster, title: &str) -> Played {
    let all = chapters();
    let start = all
        .iter()
        .position(|ch| ch.title.starts_with(title))
        .unwrap_or_else(|| panic!("a chapter {title:?}"));
    let chapter = vec![all[start].clone()];
    let peers: Vec<String> = (1..=3).map(|i| c.api_addr(i)).collect();
    let lines: Arc<Mutex<Vec<Line>>> = Arc::default();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (restart_tx, restart_rx) = std::sync::mpsc::channel::<u64>();
    let ended = std::thread::scope(|scope| {
        // Restarts asked for, done by hand as a reader would, beside the tour.
        let restarts = scope.spawn(move || {
            while let Ok(id) = restart_rx.recv() {
                c.kill(id);
                c.spawn(id);
            }
        });
        let ended = rt.block_on(async {
            let cluster = Arc::new(LiveCluster::new(peers, 100).expect("the tour's client"));
            let (keys, keys_rx) = tokio::sync::mpsc::unbounded_channel();
            let (prompts, mut prompts_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
            let seen = Arc::clone(&lines);
            let show = move |line: Line| {
                if line.tone == Tone::Prompt {
                    let _ = prompts.send(line.text.clone());
                }
                seen.lock().expect("lines").push(line);
            };
            let told = Arc::clone(&lines);
            // The reader: every other prompt is read for longer than a request may wait in
            // a node (5 s); a question is answered with 1 or 2 (right or wrong, the tour
            // then says which), any other prompt with Enter. A step that waits for a node
            // to stop and start again gets it, a little after its Enter.
            let reader = tokio::spawn(async move {
                let mut n = 0u64;
                let waits = "the tour waits for node ";
                while let Some(prompt) = prompts_rx.recv().await {
                    n += 1;
                    let pause = if n.is_multiple_of(2) { 6000 } else { 800 };
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                    let key = if prompt.contains(": your prediction") {
                        Key::Answer(if n.is_multiple_of(3) { 1 } else { 2 })
                    } else {
                        Key::Next
                    };
                    let restart = told
                        .lock()
                        .expect("lines")
                        .iter()
                        .rev()
                        .find(|l| l.tone == Tone::Text && l.text.starts_with('['))
                        .and_then(|l| {
                            let at = l.text.rfind(waits)?;
                            l.text[at + waits.len()..]
                                .split(' ')
                                .next()?
                                .parse::<u64>()
                                .ok()
                        });
                    if keys.send(key).is_err() {
                        break;
                    }
                    if let Some(id) = restart {
                        tokio::time::sleep(Duration::from_millis(1500)).await;
                        let _ = restart_tx.send(id);
                    }
                }
            });
            let ended = tokio::time::timeout(
                Duration::from_secs(300),
                play(cluster, &chapter, 0, keys_rx, &show),
            )
            .await;
            reader.abort();
            ended
        });
        // Its tasks dropped with it, the reader's sender is gone: the restarts end.
        drop(rt);
        restarts.join().expect("restarts");
        ended
    });
    let text: Vec<String> = lines
        .lock()
        .expect("lines")
        .iter()
        .map(|l| format!("{:?}: {}", l.tone, l.text))
        .collect();
    let played = Played { text };
    // The transcript, for `cargo test -- --nocapture`.
    eprintln!("{}", played.shown());
    assert_eq!(
        ended.ok(),
        Some(Ended::Finished),
        "the chapter should finish within 5 min:\n{}",
        played.shown()
    );
    played
}

#[test]
fn the_figure_8_chapter_plays_on_five_live_nodes_at_a_readers_pace() {
    let mut c = Cluster::start(3);
    c.add_joining_node();
    c.add_joining_node();
    let played = play_chapter(&mut c, "Figure 8");
    played.passed(3);
    played.says(&[
        "is committed nowhere",
        "the background command said: ✗ the write's outcome is unknown",
        "MsgRequestVote",
        "delivered",
        "not found",
        "leads in term",
    ]);
    // It leaves three voters, step mode off, every protection on.
    let ids = wait_for("nodes 4 and 5 to be removed again", || {
        let out = c.client(&["member", "list", "--json"]);
        let listed: Vec<u64> = serde_json::from_str::<serde_json::Value>(&stdout_line(&out))
            .ok()
            .and_then(|v| {
                v.as_array()
                    .map(|a| a.iter().filter_map(|m| m["id"].as_u64()).collect())
            })
            .unwrap_or_default();
        if listed == [1, 2, 3] {
            Ok(listed)
        } else {
            Err(format!("members {listed:?}: {}", stdout_line(&out)))
        }
    });
    assert_eq!(ids, [1, 2, 3]);
    for id in 1..=3 {
        let status = c.node_status(id);
        assert_eq!(status["step_mode"].as_bool(), Some(false), "{status}");
    }
}

#[test]
fn the_forgetful_voter_chapter_shows_two_leaders_in_one_term_and_recovers() {
    let mut c = Cluster::start(3);
    let played = play_chapter(&mut c, "Lab: a voter that forgets");
    played.passed(2);
    played.says(&["has voted for nobody in it", "two leaders in one term"]);
    let leader = c.wait_leader();
    for id in 1..=3 {
        let status = c.node_status(id);
        assert_eq!(status["step_mode"].as_bool(), Some(false), "{status}");
        assert_eq!(status["leader_id"].as_u64(), Some(leader), "{status}");
    }
}
