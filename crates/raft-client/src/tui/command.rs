//! The TUI's command language: shell-like words (quotes, backslash escapes) and the
//! commands built from them. Pure; errors are one line for the user.

use crate::chaos::{ChaosOptions, FaultKind};
use crate::faults::FaultCommand;
use crate::members::MemberCommand;

/// A command typed at the prompt.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `put [--node <id>] <key> <value...>`
    Put {
        /// The key.
        key: String,
        /// The value: the remaining words joined by single spaces (quote to keep spacing).
        value: String,
        /// Send to this node only (no leader search, no failover).
        node: Option<u64>,
    },
    /// `get [--stale] [--node <id>] <key>` or `sget <key>`
    Get {
        /// The key.
        key: String,
        /// Answer from any node's own state machine.
        stale: bool,
        /// Ask this node only.
        node: Option<u64>,
    },
    /// `delete [--node <id>] <key>` (or `del`)
    Delete {
        /// The key.
        key: String,
        /// Send to this node only.
        node: Option<u64>,
    },
    /// `status`: every node's role, term and indexes.
    Status,
    /// `fault ...` and `slow <factor>`: break the cluster on purpose.
    Fault(FaultCommand),
    /// `member ...` and `transfer [<id>]`: change who is in the cluster, or who leads.
    Member(MemberCommand),
    /// `step on|off|next|drop`, `step tick <id>`: step mode.
    Step(crate::step::StepCommand),
    /// `lab ...`: Raft's protections switched on the running cluster.
    Lab(crate::lab::LabCommand),
    /// `timing on|off`: each put prints its journey.
    Timing(bool),
    /// `chaos [...]`: a workload under faults, checked for linearizability.
    Chaos(ChaosOptions),
    /// `tour [<chapter>]`: the guided tour, from chapter 1 or the one given (numbered from 1).
    Tour(Option<usize>),
    /// `view`: the cluster view, until q brings the client back.
    View,
    /// `leader`: who the client thinks leads.
    Leader,
    /// `clear`: empty the output pane.
    Clear,
    /// `help`
    Help,
    /// `help fault`: the fault commands.
    HelpFaults,
    /// `help member`: the membership commands.
    HelpMembers,
    /// `quit` (or `exit`)
    Quit,
}

/// Command names, for Tab completion and help.
pub const COMMANDS: &[&str] = &[
    "put", "get", "sget", "delete", "status", "fault", "slow", "step", "lab", "timing", "member",
    "transfer", "chaos", "tour", "view", "leader", "clear", "help", "quit",
];

/// `member` subcommands, for Tab completion.
pub const MEMBER_SUBCOMMANDS: &[&str] = &["list", "add", "promote", "remove"];

/// `fault` subcommands, for Tab completion.
pub const FAULT_SUBCOMMANDS: &[&str] = &[
    "isolate", "cut", "drop", "delay", "freeze", "thaw", "heal", "list",
];

/// `help`: one line per command, short enough to read whole in the playground's client
/// pane (nine rows); the keys are in the footer.
pub const HELP: &[(&str, &str)] = &[
    (
        "put <key> <value>",
        "write (quotes keep spaces); delete <key> removes",
    ),
    (
        "get <key>",
        "linearizable read (any member: --read-from any)",
    ),
    (
        "sget <key>",
        "stale read of one node's own copy (get --stale)",
    ),
    (
        "--node <id>",
        "on put/get/delete: that node only, no failover",
    ),
    (
        "status, leader",
        "each node's state; the leader (timing on: put's journey)",
    ),
    (
        "fault, lab; member",
        "break it: help fault; reshape it: help member",
    ),
    (
        "tour [<n>]; chaos",
        "guided tour of Raft; clients under faults, checked",
    ),
    (
        "view; clear, quit",
        "the cluster view; empty this pane; leave (q, Ctrl+C)",
    ),
];

/// `help fault`: the fault commands.
pub const HELP_FAULTS: &[(&str, &str)] = &[
    (
        "fault isolate <id>",
        "cut every link of a node (both directions)",
    ),
    (
        "fault cut <a> <b> [--one-way]",
        "cut the link between two nodes (or a's messages to b)",
    ),
    (
        "fault drop <id> <percent>",
        "a node loses that share of its messages",
    ),
    ("fault delay <id> <ms>", "a node's messages arrive late"),
    ("fault freeze|thaw <id>", "pause a node / resume it"),
    ("fault heal [<id>]", "clear a node's faults, or everyone's"),
    (
        "fault list",
        "every node's faults (they clear when it restarts)",
    ),
    ("slow <factor>", "slow motion: ticks x factor (1 = normal)"),
    (
        "step on|off",
        "step mode: clocks stopped, every message held",
    ),
    (
        "step next|drop [<node> <hold>]; tick <id>",
        "deliver/drop the oldest held (or one); one tick of a node",
    ),
    (
        "lab [--no-pre-vote ...]; lab none",
        "switch Raft's protections off (raft-server's flags); on",
    ),
];

/// `help member`: the membership commands.
pub const HELP_MEMBERS: &[(&str, &str)] = &[
    ("member list", "who is in the cluster, with roles"),
    (
        "member add <id> <addr>",
        "add a node started with --join: learner, then voter",
    ),
    ("member add ... --learner", "add it as a learner only"),
    ("member promote <id>", "a caught-up learner becomes a voter"),
    (
        "member remove <id>",
        "take a member out (a leader hands over first)",
    ),
    ("transfer [<id>]", "hand leadership to a voter"),
];

/// The word of `words` within two edits of `typed` (a typo such as `fualt`), if one is.
fn closest<'a>(typed: &str, words: &[&'a str]) -> Option<&'a str> {
    words
        .iter()
        .map(|w| (edits(typed, w), *w))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, w)| w)
}

/// Levenshtein distance, with a swap of two neighbours counted as one edit.
fn edits(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// Splits a line into words: whitespace separates, '...' is literal, "..." allows \" and
/// \\, and a backslash outside quotes escapes the next character.
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("unclosed ' quote".to_string()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("unclosed \" quote".to_string()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("unclosed \" quote".to_string()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => word.push(c),
                    None => return Err("a \\ at the end of the line escapes nothing".to_string()),
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// Parses a line. `Ok(None)` for an empty line.
pub fn parse(line: &str) -> Result<Option<Command>, String> {
    let words = split_words(line)?;
    let Some((name, args)) = words.split_first() else {
        return Ok(None);
    };
    let cmd = match name.to_lowercase().as_str() {
        "put" | "set" => {
            let usage = "put [--node <id>] <key> <value>";
            // Options come first: the value is everything after the key, dashes and all.
            let (opts, rest) = leading_options(args, &["--node"], usage)?;
            match rest {
                [key, value @ ..] if !value.is_empty() => Command::Put {
                    key: key.clone(),
                    value: value.join(" "),
                    node: opts.node,
                },
                [_] => return Err(format!("missing value: usage: {usage}")),
                _ => return Err(format!("missing key and value: usage: {usage}")),
            }
        }
        "get" => {
            let usage = "get [--stale] [--node <id>] <key>";
            let (opts, rest) = options_anywhere(args, usage)?;
            Command::Get {
                key: exactly_one_key(&rest, usage)?,
                stale: opts.stale,
                node: opts.node,
            }
        }
        "sget" => {
            let usage = "sget [--node <id>] <key>";
            let (opts, rest) = leading_options(args, &["--node"], usage)?;
            Command::Get {
                key: exactly_one_key(rest, usage)?,
                stale: true,
                node: opts.node,
            }
        }
        "delete" | "del" | "rm" => {
            let usage = "delete [--node <id>] <key>";
            let (opts, rest) = leading_options(args, &["--node"], usage)?;
            Command::Delete {
                key: exactly_one_key(rest, usage)?,
                node: opts.node,
            }
        }
        "help" | "?" if matches!(args, [w] if w.starts_with("fault") || w == "slow" || w == "step" || w == "lab") => {
            Command::HelpFaults
        }
        "help" | "?" if matches!(args, [w] if w.starts_with("member") || w == "transfer") => {
            Command::HelpMembers
        }
        "status" | "leader" | "clear" | "help" | "quit" | "exit" if !args.is_empty() => {
            return Err(format!("{name} takes no arguments"));
        }
        "status" => Command::Status,
        "fault" | "faults" => Command::Fault(parse_fault(args)?),
        "member" | "members" => Command::Member(parse_member(args)?),
        "chaos" => Command::Chaos(parse_chaos(args)?),
        "transfer" => match args {
            [] => Command::Member(MemberCommand::Transfer(None)),
            [id] => {
                Command::Member(MemberCommand::Transfer(Some(id.parse().map_err(|_| {
                    format!("{id:?} is not a node id: usage: transfer [<id>]")
                })?)))
            }
            _ => return Err("usage: transfer [<id>]".to_string()),
        },
        "step" => Command::Step(parse_step(args)?),
        "lab" => Command::Lab(crate::lab::parse(args)?),
        "timing" => match args {
            [w] if w == "on" => Command::Timing(true),
            [w] if w == "off" => Command::Timing(false),
            _ => return Err("usage: timing on|off (each put prints its journey)".to_string()),
        },
        "slow" => match args {
            [f] => Command::Fault(FaultCommand::Slow(number(f, "slow <factor>")?)),
            _ => return Err("usage: slow <factor> (1 = normal speed, up to 100)".to_string()),
        },
        "tour" => {
            let count = crate::tour::chapters::chapters().len();
            let usage = format!("usage: tour [<chapter>], a chapter from 1 to {count}");
            match args {
                [] => Command::Tour(None),
                [n] => match n.parse::<usize>() {
                    Ok(n) if (1..=count).contains(&n) => Command::Tour(Some(n)),
                    _ => return Err(format!("{n:?} is not a chapter: {usage}")),
                },
                _ => return Err(usage),
            }
        }
        "leader" => Command::Leader,
        "view" => Command::View,
        "clear" => Command::Clear,
        "help" | "?" => Command::Help,
        "quit" | "exit" => Command::Quit,
        other => {
            return Err(match closest(other, COMMANDS) {
                Some(near) => {
                    format!("unknown command {other:?}: did you mean {near}? (help lists them all)")
                }
                None => format!(
                    "unknown command {other:?}: try {} (Tab completes)",
                    COMMANDS.join(", ")
                ),
            });
        }
    };
    Ok(Some(cmd))
}

/// Options of put, get and delete.
#[derive(Debug, Default)]
struct Options {
    stale: bool,
    node: Option<u64>,
}

/// Reads the option at `args[i]` into `opts`; returns how many words it took (0: not an
/// option). `--` ends the options, so a key may start with dashes.
fn option(
    args: &[String],
    i: usize,
    allowed: &[&str],
    opts: &mut Options,
    usage: &str,
) -> Result<usize, String> {
    let word = args[i].as_str();
    if !word.starts_with("--") {
        return Ok(0);
    }
    if word == "--" {
        return Ok(0);
    }
    if !allowed.contains(&word) {
        return Err(format!("unknown option {word}: usage: {usage}"));
    }
    match word {
        "--stale" => {
            opts.stale = true;
            Ok(1)
        }
        _ => {
            let id = args
                .get(i + 1)
                .ok_or_else(|| format!("--node needs a node id: usage: {usage}"))?;
            let id = id
                .parse::<u64>()
                .map_err(|_| format!("{id:?} is not a node id: usage: {usage}"))?;
            opts.node = Some(id);
            Ok(2)
        }
    }
}

/// Options before the first other word (and a `--` that ends them); the rest.
fn leading_options<'a>(
    args: &'a [String],
    allowed: &[&str],
    usage: &str,
) -> Result<(Options, &'a [String]), String> {
    let mut opts = Options::default();
    let mut i = 0;
    while i < args.len() {
        match option(args, i, allowed, &mut opts, usage)? {
            0 if args[i] == "--" => return Ok((opts, &args[i + 1..])),
            0 => break,
            n => i += n,
        }
    }
    Ok((opts, &args[i..]))
}

/// `--stale` and `--node` anywhere among `args` (before a `--`); the other words.
fn options_anywhere(args: &[String], usage: &str) -> Result<(Options, Vec<String>), String> {
    let mut opts = Options::default();
    let mut rest = Vec::new();
    let mut i = 0;
    while i < args.len() {
        if args[i] == "--" {
            rest.extend(args[i + 1..].iter().cloned());
            break;
        }
        match option(args, i, &["--stale", "--node"], &mut opts, usage)? {
            0 => {
                rest.push(args[i].clone());
                i += 1;
            }
            n => i += n,
        }
    }
    Ok((opts, rest))
}

fn exactly_one_key(words: &[String], usage: &str) -> Result<String, String> {
    match words {
        [key] => Ok(key.clone()),
        [] => Err(format!("missing key: usage: {usage}")),
        _ => Err(format!(
            "too many words: usage: {usage} (quote a key that has spaces)"
        )),
    }
}

/// `chaos [--seconds S] [--clients N] [--keys K] [--faults LIST] [--stale-reads] [--seed N]`.
fn parse_chaos(args: &[String]) -> Result<ChaosOptions, String> {
    let usage = "usage: chaos [--seconds S] [--clients N] [--keys K] [--faults LIST] \
                 [--stale-reads] [--seed N]";
    let mut opts = ChaosOptions::default();
    let mut words = args.iter();
    while let Some(flag) = words.next() {
        if flag == "--stale-reads" {
            opts.stale_reads = true;
            continue;
        }
        let value = words
            .next()
            .ok_or_else(|| format!("{flag} needs a value: {usage}"))?;
        let number = |what: &str| -> Result<f64, String> {
            value
                .parse::<f64>()
                .map_err(|_| format!("{what} {value:?} is not a number: {usage}"))
        };
        match flag.as_str() {
            "--seconds" => opts.seconds = number("--seconds")?,
            "--clients" => opts.clients = number("--clients")? as usize,
            "--keys" => opts.keys = number("--keys")? as usize,
            "--seed" => {
                opts.seed = Some(
                    value
                        .parse()
                        .map_err(|_| format!("--seed {value:?} is not a number: {usage}"))?,
                );
            }
            "--faults" => {
                let kinds: Result<Vec<FaultKind>, String> =
                    value.split(',').map(str::parse).collect();
                opts.faults = Some(kinds?);
            }
            "--spawn" => {
                return Err(
                    "chaos here runs on this cluster (the one the dashboards show); --spawn is \
                     for the one-shot raft-client chaos"
                        .to_string(),
                );
            }
            other => return Err(format!("unknown option {other}: {usage}")),
        }
    }
    Ok(opts)
}

/// `member <subcommand> ...`.
fn parse_member(args: &[String]) -> Result<MemberCommand, String> {
    let usage = "usage: member list|add|promote|remove ... (help lists them)";
    let Some((sub, rest)) = args.split_first() else {
        return Err(format!("missing subcommand: {usage}"));
    };
    let id = |w: &String, u: &str| -> Result<u64, String> {
        w.parse::<u64>()
            .ok()
            .filter(|id| *id > 0)
            .ok_or_else(|| format!("{w:?} is not a node id: usage: {u}"))
    };
    let add = "member add <id> <peer addr> [--learner]";
    Ok(match (sub.to_lowercase().as_str(), rest) {
        ("list", []) => MemberCommand::List { json: false },
        ("list", [flag]) if flag == "--json" => MemberCommand::List { json: true },
        ("list", _) => return Err("usage: member list [--json]".to_string()),
        ("add", [i, addr]) => MemberCommand::Add {
            id: id(i, add)?,
            peer_addr: addr.clone(),
            learner: false,
        },
        ("add", [i, addr, flag]) if flag == "--learner" => MemberCommand::Add {
            id: id(i, add)?,
            peer_addr: addr.clone(),
            learner: true,
        },
        ("add", _) => return Err(format!("usage: {add}")),
        ("promote", [i]) => MemberCommand::Promote(id(i, "member promote <id>")?),
        ("promote", _) => return Err("usage: member promote <id>".to_string()),
        ("remove", [i]) => MemberCommand::Remove(id(i, "member remove <id>")?),
        ("remove", _) => return Err("usage: member remove <id>".to_string()),
        (other, _) => return Err(format!("unknown member command {other:?}: {usage}")),
    })
}

/// `fault <subcommand> ...`.
fn parse_step(args: &[String]) -> Result<crate::step::StepCommand, String> {
    use crate::step::StepCommand as S;
    let usage = "usage: step on|off, step next|drop [<node> <hold-id>], or step tick <id>";
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    let held = |node: &str, id: &str| -> Result<Option<(u64, u64)>, String> {
        let node = node
            .parse()
            .map_err(|_| format!("{node:?} is not a node id: {usage}"))?;
        let id = id
            .parse()
            .map_err(|_| format!("{id:?} is not a hold id (the watch view lists them): {usage}"))?;
        Ok(Some((node, id)))
    };
    Ok(match words.as_slice() {
        ["on"] => S::On,
        ["off"] => S::Off,
        ["next"] => S::Next(None),
        ["drop"] => S::Drop(None),
        ["next", node, id] => S::Next(held(node, id)?),
        ["drop", node, id] => S::Drop(held(node, id)?),
        ["tick", id] => S::Tick(
            id.parse()
                .map_err(|_| format!("{id:?} is not a node id: {usage}"))?,
        ),
        _ => return Err(usage.to_string()),
    })
}

fn parse_fault(args: &[String]) -> Result<FaultCommand, String> {
    let usage = "usage: fault isolate|cut|drop|delay|freeze|thaw|heal|list ... (help lists them)";
    let Some((sub, rest)) = args.split_first() else {
        return Err(format!("missing fault: {usage}"));
    };
    let id = |w: &String, u: &str| -> Result<u64, String> {
        w.parse::<u64>()
            .map_err(|_| format!("{w:?} is not a node id: usage: {u}"))
    };
    let wrong = |u: &str| Err(format!("usage: {u}"));
    Ok(match (sub.to_lowercase().as_str(), rest) {
        ("isolate", [a]) => FaultCommand::Isolate(id(a, "fault isolate <id>")?),
        ("isolate", _) => return wrong("fault isolate <id>"),
        ("cut", [a, b]) => {
            FaultCommand::Cut(id(a, "fault cut <a> <b>")?, id(b, "fault cut <a> <b>")?)
        }
        ("cut", [a, b, w]) if w == "--one-way" => {
            let u = "fault cut <a> <b> [--one-way]";
            FaultCommand::CutOneWay(id(a, u)?, id(b, u)?)
        }
        ("cut", _) => return wrong("fault cut <a> <b> [--one-way]"),
        ("drop", [a, p]) => FaultCommand::Drop(
            id(a, "fault drop <id> <percent>")?,
            number(p, "fault drop <id> <percent>")?,
        ),
        ("drop", _) => return wrong("fault drop <id> <percent>"),
        ("delay", [a, ms]) => FaultCommand::Delay(
            id(a, "fault delay <id> <ms>")?,
            number(ms, "fault delay <id> <ms>")?,
        ),
        ("delay", _) => return wrong("fault delay <id> <ms>"),
        ("freeze", [a]) => FaultCommand::Freeze(id(a, "fault freeze <id>")?),
        ("freeze", _) => return wrong("fault freeze <id>"),
        ("thaw", [a]) => FaultCommand::Thaw(id(a, "fault thaw <id>")?),
        ("thaw", _) => return wrong("fault thaw <id>"),
        ("heal", []) => FaultCommand::Heal(None),
        ("heal", [a]) => FaultCommand::Heal(Some(id(a, "fault heal [<id>]")?)),
        ("heal", _) => return wrong("fault heal [<id>]"),
        ("list", []) => FaultCommand::List { json: false },
        ("list", [flag]) if flag == "--json" => FaultCommand::List { json: true },
        ("list", _) => return wrong("fault list [--json]"),
        (other, _) => return Err(format!("unknown fault {other:?}: {usage}")),
    })
}

fn number(word: &str, usage: &str) -> Result<i64, String> {
    word.parse::<i64>()
        .map_err(|_| format!("{word:?} is not a number: usage: {usage}"))
}

/// What Tab does with the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    /// The line, completed (the single match, or the longest prefix several share).
    Line(String),
    /// Several names fit and share no longer prefix: show them.
    Choices(Vec<&'static str>),
    /// Nothing fits (or nothing to complete here).
    Nothing,
}

/// Completes the word being typed: a command name at the start of the line, a `fault`
/// subcommand after `fault `.
pub fn complete(line: &str) -> Completion {
    let trimmed = line.trim_start();
    let (done, partial, names) = match trimmed.split_once(char::is_whitespace) {
        None => ("", trimmed, COMMANDS),
        Some((first, rest)) if first == "fault" && !rest.trim_start().contains(' ') => {
            ("fault ", rest.trim_start(), FAULT_SUBCOMMANDS)
        }
        Some((first, rest)) if first == "member" && !rest.trim_start().contains(' ') => {
            ("member ", rest.trim_start(), MEMBER_SUBCOMMANDS)
        }
        Some(_) => return Completion::Nothing,
    };
    let matches: Vec<&'static str> = names
        .iter()
        .copied()
        .filter(|c| c.starts_with(partial))
        .collect();
    match matches.as_slice() {
        [] => Completion::Nothing,
        [one] => Completion::Line(format!("{done}{one} ")),
        many => {
            let mut prefix = many[0].to_string();
            for m in &many[1..] {
                while !m.starts_with(&prefix) {
                    prefix.pop();
                }
            }
            if prefix.len() > partial.len() {
                Completion::Line(format!("{done}{prefix}"))
            } else {
                Completion::Choices(matches)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &str, value: &str) -> Option<Command> {
        Some(Command::Put {
            key: key.into(),
            value: value.into(),
            node: None,
        })
    }

    #[test]
    fn splits_like_a_shell() {
        assert_eq!(split_words("  a  b ").unwrap(), ["a", "b"]);
        assert_eq!(
            split_words(r#"put "a b" 'c  d'"#).unwrap(),
            ["put", "a b", "c  d"]
        );
        assert_eq!(
            split_words(r#"x "say \"hi\"" a\ b"#).unwrap(),
            ["x", r#"say "hi""#, "a b"]
        );
        assert_eq!(split_words(r#"'it''s'"#).unwrap(), ["its"]);
        assert_eq!(split_words(r#""""#).unwrap(), [""]);
        assert!(split_words("put 'open").is_err());
        assert!(split_words("put \"open").is_err());
        assert!(split_words("trailing\\").is_err());
    }

    #[test]
    fn parses_commands() {
        assert_eq!(parse("put hello world").unwrap(), put("hello", "world"));
        assert_eq!(
            parse("put greeting hello   big world").unwrap(),
            put("greeting", "hello big world")
        );
        assert_eq!(
            parse(r#"put k "  spaced  out ""#).unwrap(),
            put("k", "  spaced  out ")
        );
        assert_eq!(parse("PUT k v").unwrap(), put("k", "v"));
        assert_eq!(
            parse("get --stale k").unwrap(),
            Some(Command::Get {
                key: "k".into(),
                stale: true,
                node: None
            })
        );
        assert_eq!(
            parse("get k --stale").unwrap(),
            Some(Command::Get {
                key: "k".into(),
                stale: true,
                node: None
            })
        );
        assert_eq!(
            parse("sget k").unwrap(),
            Some(Command::Get {
                key: "k".into(),
                stale: true,
                node: None
            })
        );
        assert_eq!(
            parse("get k").unwrap(),
            Some(Command::Get {
                key: "k".into(),
                stale: false,
                node: None
            })
        );
        assert_eq!(
            parse("del k").unwrap(),
            Some(Command::Delete {
                key: "k".into(),
                node: None
            })
        );
        assert_eq!(parse("status").unwrap(), Some(Command::Status));
        assert_eq!(parse("exit").unwrap(), Some(Command::Quit));
        assert_eq!(parse("   ").unwrap(), None);
    }

    #[test]
    fn unicode_keys_and_values() {
        assert_eq!(
            parse("put città 日本語 ✓").unwrap(),
            put("città", "日本語 ✓")
        );
        assert_eq!(parse("put '🦀 key' \"ünï\"").unwrap(), put("🦀 key", "ünï"));
    }

    #[test]
    fn explains_mistakes_in_one_line() {
        for (line, needle) in [
            ("put", "usage: put"),
            ("put k", "missing value"),
            ("get", "missing key"),
            ("get a b", "too many words"),
            ("frob x", "unknown command \"frob\""),
            ("status now", "takes no arguments"),
            ("put 'x", "unclosed"),
        ] {
            let err = parse(line).expect_err(line);
            assert!(err.contains(needle), "{line:?} -> {err:?}");
            assert!(!err.contains('\n'), "one line: {err:?}");
        }
    }

    #[test]
    fn parses_node_and_stale_options() {
        let get = |key: &str, stale, node| {
            Some(Command::Get {
                key: key.into(),
                stale,
                node,
            })
        };
        assert_eq!(parse("get --node 2 x").unwrap(), get("x", false, Some(2)));
        assert_eq!(
            parse("get --stale --node 2 x").unwrap(),
            get("x", true, Some(2))
        );
        assert_eq!(
            parse("get x --node 2 --stale").unwrap(),
            get("x", true, Some(2))
        );
        assert_eq!(parse("sget --node 3 x").unwrap(), get("x", true, Some(3)));
        assert_eq!(
            parse("get -- --stale").unwrap(),
            get("--stale", false, None)
        );
        assert_eq!(
            parse("put --node 1 x lost value").unwrap(),
            Some(Command::Put {
                key: "x".into(),
                value: "lost value".into(),
                node: Some(1)
            })
        );
        assert_eq!(
            parse("put k --node 1").unwrap(),
            Some(Command::Put {
                key: "k".into(),
                value: "--node 1".into(),
                node: None
            }),
            "after the key, words are the value"
        );
        assert_eq!(
            parse("delete --node 2 k").unwrap(),
            Some(Command::Delete {
                key: "k".into(),
                node: Some(2)
            })
        );
        for (line, needle) in [
            ("get --stale", "missing key"),
            ("get --node", "--node needs a node id"),
            ("get --node x k", "not a node id"),
            ("get --fast k", "unknown option --fast"),
            ("put --node 2 k", "missing value"),
        ] {
            let err = parse(line).expect_err(line);
            assert!(err.contains(needle), "{line:?} -> {err:?}");
        }
    }

    #[test]
    fn parses_fault_commands() {
        use FaultCommand as F;
        for (line, want) in [
            ("fault isolate 2", F::Isolate(2)),
            ("fault cut 1 3", F::Cut(1, 3)),
            ("fault drop 2 30", F::Drop(2, 30)),
            ("fault delay 3 -5", F::Delay(3, -5)),
            ("fault freeze 1", F::Freeze(1)),
            ("fault thaw 1", F::Thaw(1)),
            ("fault heal", F::Heal(None)),
            ("fault heal 2", F::Heal(Some(2))),
            ("fault list", F::List { json: false }),
            ("fault list --json", F::List { json: true }),
            ("slow 10", F::Slow(10)),
        ] {
            assert_eq!(parse(line).unwrap(), Some(Command::Fault(want)), "{line}");
        }
        for (line, needle) in [
            ("fault", "missing fault"),
            ("fault zap 1", "unknown fault"),
            ("fault isolate", "usage: fault isolate <id>"),
            ("fault isolate x", "not a node id"),
            ("fault cut 1", "usage: fault cut"),
            ("fault drop 1 lots", "not a number"),
            ("slow", "usage: slow"),
        ] {
            let err = parse(line).expect_err(line);
            assert!(err.contains(needle), "{line:?} -> {err:?}");
        }
    }

    fn line(s: &str) -> Completion {
        Completion::Line(s.into())
    }

    #[test]
    fn parses_member_commands() {
        use MemberCommand as M;
        for (line, want) in [
            ("member list", M::List { json: false }),
            ("member list --json", M::List { json: true }),
            (
                "member add 4 127.0.0.1:6004",
                M::Add {
                    id: 4,
                    peer_addr: "127.0.0.1:6004".into(),
                    learner: false,
                },
            ),
            (
                "member add 4 127.0.0.1:6004 --learner",
                M::Add {
                    id: 4,
                    peer_addr: "127.0.0.1:6004".into(),
                    learner: true,
                },
            ),
            ("member promote 4", M::Promote(4)),
            ("member remove 2", M::Remove(2)),
            ("transfer", M::Transfer(None)),
            ("transfer 3", M::Transfer(Some(3))),
        ] {
            assert_eq!(parse(line).unwrap(), Some(Command::Member(want)), "{line}");
        }
        for (line, needle) in [
            ("member", "missing subcommand"),
            ("member add 4", "usage: member add"),
            ("member add x 127.0.0.1:1", "not a node id"),
            ("member promote", "usage: member promote"),
            ("member kick 2", "unknown member command"),
            ("transfer x", "not a node id"),
        ] {
            let err = parse(line).expect_err(line);
            assert!(err.contains(needle), "{line:?} -> {err:?}");
        }
        assert_eq!(
            complete("member pr"),
            Completion::Line("member promote ".into())
        );
    }

    #[test]
    fn parses_tour() {
        assert_eq!(parse("tour").unwrap(), Some(Command::Tour(None)));
        assert_eq!(parse("tour 3").unwrap(), Some(Command::Tour(Some(3))));
        for (line, needle) in [
            (
                "tour 0",
                "\"0\" is not a chapter: usage: tour [<chapter>], a chapter from 1 to",
            ),
            ("tour 99", "is not a chapter"),
            ("tour x", "is not a chapter"),
            ("tour 1 2", "usage: tour [<chapter>]"),
        ] {
            let err = parse(line).expect_err(line);
            assert!(err.contains(needle), "{line:?} -> {err:?}");
        }
        assert_eq!(complete("to"), line("tour "));
    }

    #[test]
    fn completes_fault_subcommands() {
        assert_eq!(complete("fa"), line("fault "));
        assert_eq!(complete("fault is"), line("fault isolate "));
        assert_eq!(
            complete("fault d"),
            Completion::Choices(vec!["drop", "delay"]),
            "drop and delay share only 'd': both are shown"
        );
        assert_eq!(complete("fault de"), line("fault delay "));
        assert_eq!(complete("fault isolate 2"), Completion::Nothing);
    }

    #[test]
    fn completes_command_names() {
        assert_eq!(complete("pu"), line("put "));
        assert_eq!(complete("sta"), line("status "));
        assert_eq!(complete("ste"), line("step "));
        assert_eq!(
            complete("s"),
            Completion::Choices(vec!["sget", "status", "slow", "step"]),
            "an ambiguous prefix shows the candidates"
        );
        assert_eq!(complete("q"), line("quit "));
        assert_eq!(complete("put k"), Completion::Nothing);
        assert_eq!(complete("zz"), Completion::Nothing);
    }

    #[test]
    fn a_typo_gets_a_suggestion() {
        let err = parse("fualt isolate 1").unwrap_err();
        assert!(err.contains("did you mean fault?"), "{err}");
        let err = parse("stauts").unwrap_err();
        assert!(err.contains("did you mean status?"), "{err}");
        let err = parse("frobnicate").unwrap_err();
        assert!(err.contains("try put, get"), "{err}");
    }

    #[test]
    fn help_fault_is_its_own_page() {
        assert_eq!(parse("help fault").unwrap(), Some(Command::HelpFaults));
        assert_eq!(parse("help faults").unwrap(), Some(Command::HelpFaults));
        assert_eq!(parse("help").unwrap(), Some(Command::Help));
        assert!(parse("help me").is_err());
    }
}
