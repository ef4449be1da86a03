//! End to end: the interactive client in tmux against three real servers. A put, a SIGKILL
//! of the leader, a put that fails over (and says so), a get; and the UI keeps answering
//! keys while a request is stuck, shows its attempts as they happen, until Esc cancels it.

mod common;

use common::Cluster;
use common::tmux::Tmux;

#[test]
fn the_client_tui_fails_over_and_stays_responsive() {
    let mut cluster = Cluster::start(3);
    let tmux = Tmux::new();
    tmux.shell("c", 120, 40);
    tmux.type_line(
        "c",
        &format!(
            "{} --peers {} --timeout 8",
            common::client_bin().display(),
            cluster.api_addrs()
        ),
    );
    tmux.wait_screen("c", "the client TUI and a cluster bar with a leader", |s| {
        s.contains("Cluster · leader node")
    });

    tmux.type_line("c", "put foo bar");
    tmux.wait_screen("c", "put foo bar to succeed", |s| s.contains("✓ OK (index"));

    let leader = cluster.wait_leader();
    cluster.kill(leader);
    tmux.type_line("c", "put hello world");
    let screen = tmux.wait_screen("c", "put hello world to fail over and succeed", |s| {
        s.matches("✓ OK (index").count() == 2
    });
    // The failover is visible: the dead leader was tried and failed, the write was resent
    // with the same request id, and it succeeded on another node.
    let after_put = &screen[screen.find("› put hello world").expect("the command echo")..];
    assert!(
        after_put.contains(&format!("node {leader} (hint): unreachable")),
        "the trace should show the dead leader failing:\n{after_put}"
    );
    assert!(
        after_put.contains("resent"),
        "the trace should show the resend:\n{after_put}"
    );
    assert!(
        after_put.contains("same request id"),
        "the summary names the request id:\n{after_put}"
    );

    tmux.type_line("c", "get hello");
    tmux.wait_screen("c", "get hello to show world", |s| s.contains("✓ world"));

    // Freeze every live node: the next read cannot finish. The UI still takes keys.
    let live: Vec<u64> = (1..=3).filter(|id| *id != leader).collect();
    for id in &live {
        cluster.freeze(*id);
    }
    tmux.type_line("c", "get foo");
    tmux.wait_screen("c", "the spinner of the request in flight", |s| {
        s.contains("get foo · ")
    });
    // Attempts show up while the request is still running, not all at its end: the
    // frozen leader stops answering pings and is given up on within seconds, well inside
    // the 8 s deadline.
    tmux.wait_screen("c", "a hop of the running request before its result", |s| {
        s.contains("get foo · ")
            && s.split("› get foo").nth(1).is_some_and(|after| {
                after.contains("→ node") && !after.contains('✓') && !after.contains('✗')
            })
    });
    tmux.type_text("c", "typed while waiting");
    tmux.wait_screen("c", "keystrokes to show while the request runs", |s| {
        s.contains("› typed while waiting") && s.contains("Esc cancels")
    });
    tmux.key("c", "Escape");
    tmux.wait_screen("c", "Esc to cancel the request", |s| {
        s.contains("✗ cancelled")
    });
    for id in &live {
        cluster.thaw(*id);
    }

    // Ctrl+U empties the line; q on an empty line quits and restores the terminal.
    tmux.key("c", "C-u");
    tmux.type_text("c", "q");
    tmux.wait_prompt("c");
    tmux.type_line("c", "echo EXIT=$?");
    tmux.wait_screen("c", "exit status 0", |s| {
        s.lines().any(|l| l.trim() == "EXIT=0")
    });
}
