//! A terminal picture of a linearizability violation: the operations of a failing window
//! (see [`super::checker::KeyReport::window`]) as bars on a shared time axis, one row per
//! client, and, when a simple pattern explains it, one line saying why no order works.
//!
//! ```text
//! key k · 3 ops · 0.000–0.050 ms (span 0.050 ms)
//! c1 │├put a────────────┤                ├put b────────────┤
//! c2 │                                                                      ├get→a────────────┤
//!    │0.000                                                                            0.050 ms
//! why: get→a (client 2) started after put b (client 1) completed; nothing wrote a after that
//! ```
//!
//! Everything is laid out in a grid of cells, one `char` each (box-drawing characters are
//! one column wide), and cut to `width` before colour codes are added, so no line is ever
//! wider than asked.

use super::history::{OpKind, Operation, Outcome};

/// Renders the operations `ops[i]` for `i` in `window` (indices out of range are skipped)
/// as a timeline at most `width` columns wide; with `color`, writes, reads, unknown
/// outcomes and the offending read(s) are coloured with ANSI escapes.
///
/// Labels: `put v3`, `get→v1`, `get→∅`, `del`, `stale get→v1`; an unknown-outcome write
/// ends open (`╌╌?`), a failed operation is marked `✗`.
pub fn render(ops: &[Operation], window: &[usize], width: usize, color: bool) -> String {
    let mut shown: Vec<&Operation> = window.iter().filter_map(|&i| ops.get(i)).collect();
    shown.sort_by_key(|o| (o.invoke_us, o.process));
    let Some(t0) = shown.iter().map(|o| o.invoke_us).min() else {
        return emit(
            &[text("timeline: no operations", Style::Header)],
            width,
            color,
        );
    };
    let t1 = shown.iter().map(|o| end(o)).max().unwrap_or(t0);
    let mut keys: Vec<&str> = shown.iter().map(|o| o.key.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    let mut lines = vec![text(
        &format!(
            "key {} · {} ops · {}–{} ms (span {} ms)",
            keys.join(", "),
            shown.len(),
            ms(t0),
            ms(t1),
            ms(t1 - t0)
        ),
        Style::Header,
    )];

    let why = explain(&shown);
    let mut processes: Vec<u64> = shown.iter().map(|o| o.process).collect();
    processes.sort_unstable();
    processes.dedup();
    let names: Vec<String> = processes.iter().map(|p| format!("c{p}")).collect();
    let name_w = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
    let track = width.saturating_sub(name_w + 2);

    // Labels get at most a third of the track, so the bars keep most of it.
    let max_label = (track / 3).clamp(3, 24);
    let labels: Vec<Vec<char>> = shown.iter().map(|o| fit(&label(o), max_label)).collect();

    // Columns per span: as many as fit, keeping every bar plus its open end and an outside
    // label on the track.
    let span = (t1 - t0) as f64;
    let mut scale = track.saturating_sub(1) as f64;
    for (o, l) in shown.iter().zip(&labels) {
        let tail = if open_ended(o) { 3 } else { 0 };
        let reach = (end(o) - t0) as f64 / span.max(1.0);
        if reach > 0.0 {
            // The bar's end column (at least one past its start), its open end, a gap and
            // an outside label must stay on the track.
            let room = track as f64 - 3.0 - tail as f64 - l.len() as f64;
            scale = scale.min(room.max(0.0) / reach);
        }
    }
    let col = |t: u64| -> usize {
        if span == 0.0 {
            0
        } else {
            ((t - t0) as f64 / span * scale).round() as usize
        }
    };

    for (p, name) in processes.iter().zip(&names) {
        // Lanes of cells; a second lane only appears if this client's bars or labels
        // would overlap (a client runs one operation at a time, but be robust).
        let mut lanes: Vec<(Vec<Cell>, usize)> = Vec::new();
        let mine: Vec<usize> = (0..shown.len())
            .filter(|&k| shown[k].process == *p)
            .collect();
        for (j, &k) in mine.iter().enumerate() {
            let o = shown[k];
            let next_start = mine
                .get(j + 1)
                .map_or(usize::MAX, |&k| col(shown[k].invoke_us));
            let s = col(o.invoke_us);
            // At least `├┤`, but not into this client's next bar (`│` if squeezed).
            let mut e = col(end(o)).max(s + 1);
            if e >= next_start && next_start > s {
                e = next_start - 1;
            }
            let l = &labels[k];
            let tail = if open_ended(o) { 3 } else { 0 };
            // The label goes inside the bar if it fits, else after it, or before it when
            // after would run into this client's next bar.
            let right_end = e + tail + 1 + l.len();
            let left_start = s.checked_sub(l.len() + 1);
            let place = if l.len() + 2 <= e - s {
                Place::Inside
            } else if right_end + 1 < next_start {
                Place::Right
            } else {
                match left_start {
                    Some(ls) if lanes.is_empty() || lanes.iter().any(|(_, used)| *used <= ls) => {
                        Place::Left(ls)
                    }
                    _ => Place::Right,
                }
            };
            let (first, last) = match place {
                Place::Inside => (s, e + tail),
                Place::Right => (s, right_end),
                Place::Left(ls) => (ls, e + tail),
            };
            let lane = match lanes.iter().position(|(_, used)| *used <= first) {
                Some(lane) => lane,
                None => {
                    lanes.push((vec![(' ', Style::Plain); track], 0));
                    lanes.len() - 1
                }
            };
            let (cells, used) = &mut lanes[lane];
            // Bars may touch; text gets a blank after it.
            *used = last + 1 + usize::from(place == Place::Right || tail > 0);
            let style = style_of(o, why.offending[k]);
            let mut put = |at: usize, ch: char, st: Style| {
                if let Some(c) = cells.get_mut(at) {
                    *c = (ch, st);
                }
            };
            for c in s..=e {
                put(c, '─', style);
            }
            put(s, '├', style);
            if tail == 0 {
                put(e, if e == s { '│' } else { '┤' }, style);
            }
            for (j, ch) in "╌╌?".chars().enumerate().take(tail) {
                put(e + 1 + j, ch, Style::Unknown);
            }
            let at = match place {
                Place::Inside => s + 1,
                Place::Right => e + tail + 2,
                Place::Left(ls) => ls,
            };
            for (j, &ch) in l.iter().enumerate() {
                put(at + j, ch, style);
            }
        }
        for (n, (cells, _)) in lanes.into_iter().enumerate() {
            let head = if n == 0 { name.as_str() } else { "" };
            let mut line = text(&format!("{head:<name_w$} │"), Style::Plain);
            line.extend(cells);
            lines.push(line);
        }
    }

    let mut axis = text(&format!("{:name_w$} │", ""), Style::Plain);
    let (from, to) = (ms(t0), format!("{} ms", ms(t1)));
    let mut ruler: Vec<Cell> = vec![(' ', Style::Dim); track];
    let right = (col(t1) + 1).max(to.chars().count());
    for (j, ch) in from.chars().enumerate() {
        if let Some(c) = ruler.get_mut(j) {
            *c = (ch, Style::Dim);
        }
    }
    if right >= from.chars().count() + 1 + to.chars().count() {
        for (j, ch) in to.chars().enumerate() {
            if let Some(c) = ruler.get_mut(right - to.chars().count() + j) {
                *c = (ch, Style::Dim);
            }
        }
    }
    axis.extend(ruler);
    lines.push(axis);

    if let Some(sentence) = why.sentence {
        lines.extend(wrap(&format!("why: {sentence}"), width));
    }
    emit(&lines, width, color)
}

/// Where an operation's label goes relative to its bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Inside,
    Right,
    /// Before the bar, starting at this column.
    Left(usize),
}

/// How a cell is coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    Header,
    Write,
    Read,
    Bad,
    Unknown,
    Dim,
}

impl Style {
    fn ansi(self) -> &'static str {
        match self {
            Style::Plain => "",
            Style::Header => "\x1b[1m",
            Style::Write => "\x1b[36m",
            Style::Read => "\x1b[32m",
            Style::Bad => "\x1b[1;31m",
            Style::Unknown => "\x1b[33m",
            Style::Dim => "\x1b[2m",
        }
    }
}

type Cell = (char, Style);

fn text(s: &str, style: Style) -> Vec<Cell> {
    s.chars().map(|c| (c, style)).collect()
}

/// Cuts every line to `width` cells, drops trailing blanks, and adds colour codes.
fn emit(lines: &[Vec<Cell>], width: usize, color: bool) -> String {
    let mut out = String::new();
    for line in lines {
        let mut cells = &line[..line.len().min(width)];
        while let [rest @ .., (' ', _)] = cells {
            cells = rest;
        }
        let mut current = Style::Plain;
        for &(ch, style) in cells {
            if color && style != current {
                if current != Style::Plain {
                    out.push_str("\x1b[0m");
                }
                out.push_str(style.ansi());
                current = style;
            }
            out.push(ch);
        }
        if color && current != Style::Plain {
            out.push_str("\x1b[0m");
        }
        out.push('\n');
    }
    out
}

/// Word-wraps `s` to lines of at most `width` characters (a longer word is cut).
fn wrap(s: &str, width: usize) -> Vec<Vec<Cell>> {
    let mut lines: Vec<Vec<Cell>> = Vec::new();
    let mut line: Vec<Cell> = Vec::new();
    for word in s.split(' ') {
        let w = text(word, Style::Plain);
        if !line.is_empty() && line.len() + 1 + w.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push((' ', Style::Plain));
        }
        line.extend(w);
    }
    lines.push(line);
    lines
}

/// The text cut to `max` characters, ending in `…` if cut.
fn fit(s: &str, max: usize) -> Vec<char> {
    let mut chars: Vec<char> = s.chars().collect();
    if chars.len() > max {
        chars.truncate(max.saturating_sub(1));
        chars.push('…');
    }
    chars
}

/// Microseconds as milliseconds with three decimals.
fn ms(us: u64) -> String {
    format!("{}.{:03}", us / 1000, us % 1000)
}

/// Where the bar ends: completion, or invocation if the completion was recorded earlier.
fn end(o: &Operation) -> u64 {
    o.complete_us.max(o.invoke_us)
}

/// A write with an unknown outcome may take effect after its bar ends.
fn open_ended(o: &Operation) -> bool {
    o.kind.is_write() && o.outcome == Outcome::Unknown
}

fn style_of(o: &Operation, offending: bool) -> Style {
    if offending {
        Style::Bad
    } else if o.outcome == Outcome::Fail || (!o.kind.is_write() && o.outcome != Outcome::Ok) {
        Style::Dim
    } else if o.kind.is_write() {
        Style::Write
    } else {
        Style::Read
    }
}

/// What the register holds after a write, or what a read returned.
fn value(o: &Operation) -> Option<&str> {
    match o.kind {
        OpKind::Delete => None,
        _ => o.value.as_deref(),
    }
}

fn show(v: Option<&str>) -> String {
    v.map_or_else(|| "∅".to_string(), |v| fit(v, 12).into_iter().collect())
}

/// An operation's label on the timeline (`put v3`, `stale get→v1`, `del ✗`), also used by
/// [`super::cause`] to name the same operation.
pub(crate) fn label(o: &Operation) -> String {
    let v = show(value(o));
    let l = match o.kind {
        OpKind::Put => format!("put {v}"),
        OpKind::Delete => "del".to_string(),
        OpKind::Get => format!("get→{v}"),
        OpKind::GetStale => format!("stale get→{v}"),
    };
    match o.outcome {
        Outcome::Fail => format!("{l} ✗"),
        Outcome::Unknown if !o.kind.is_write() => format!("{l} ?"),
        _ => l,
    }
}

/// Which reads are plainly impossible, and a sentence about the first of them.
struct Why {
    offending: Vec<bool>,
    sentence: Option<String>,
}

/// Looks for the two simple shapes of an impossible read `r` returning `v` (the key
/// starting absent counts as a write of `∅` before everything):
///
/// - every write of `v` started after `r` completed (or there is none);
/// - some operation `p` that certainly left the key at another value (a write of another
///   value, or a read that returned one) completed before `r` started, and every write of
///   `v` completed before `p` started: `v` was gone before `p` and never came back.
///
/// Violations of other shapes (which need several reads to pin an order) get no sentence.
fn explain(shown: &[&Operation]) -> Why {
    let live = |o: &&&Operation| match o.outcome {
        Outcome::Ok => true,
        Outcome::Unknown => o.kind.is_write(),
        Outcome::Fail => false,
    };
    // (invoke, complete; None = may take effect any time later) of the writes of a value.
    let writes_of = |v: Option<&str>| -> Vec<(u64, Option<u64>)> {
        shown
            .iter()
            .filter(live)
            .filter(|w| w.kind.is_write() && value(w) == v)
            .map(|w| (w.invoke_us, (w.outcome == Outcome::Ok).then(|| end(w))))
            .collect()
    };
    let mut why = Why {
        offending: vec![false; shown.len()],
        sentence: None,
    };
    for (k, r) in shown.iter().enumerate() {
        if r.kind.is_write() || r.outcome != Outcome::Ok {
            continue;
        }
        let v = value(r);
        let writes = writes_of(v);
        let who = format!("{} (client {})", label(r), r.process);
        let sentence = if v.is_some() && writes.iter().all(|&(inv, _)| inv > end(r)) {
            Some(if writes.is_empty() {
                format!("{who} returned a value that no write shown here wrote")
            } else {
                format!("{who} completed before any write of {} started", show(v))
            })
        } else {
            let gone_before = |p: &&&Operation| {
                p.outcome == Outcome::Ok
                    && value(p) != v
                    && end(p) < r.invoke_us
                    && writes
                        .iter()
                        .all(|&(_, c)| c.is_some_and(|c| c < p.invoke_us))
            };
            // Prefer a write as the witness, then the latest one.
            shown
                .iter()
                .filter(gone_before)
                .max_by_key(|p| (p.kind.is_write(), end(p)))
                .map(|p| {
                    let what = if v.is_some() {
                        format!("wrote {}", show(v))
                    } else {
                        format!("deleted {}", r.key)
                    };
                    format!(
                        "{who} started after {} (client {}) completed; nothing {what} after that",
                        label(p),
                        p.process,
                    )
                })
        };
        if let Some(s) = sentence {
            why.offending[k] = true;
            why.sentence.get_or_insert(s);
        }
    }
    why
}

#[cfg(test)]
mod tests {
    use super::super::checker::tests::{
        Rng, Sim, corrupt, del, get, put, simulate, stale, unknown,
    };
    use super::super::checker::{Budget, Verdict, check};
    use super::*;

    fn strip(s: &str) -> String {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                for c in chars.by_ref() {
                    if c == 'm' {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    fn assert_fits(picture: &str, width: usize) {
        for line in strip(picture).lines() {
            assert!(
                line.chars().count() <= width,
                "line of {} > {width} columns: {line:?}\n{picture}",
                line.chars().count()
            );
        }
    }

    fn all(ops: &[Operation]) -> Vec<usize> {
        (0..ops.len()).collect()
    }

    #[test]
    fn stale_read_picture() {
        let ops = [
            put(1, "a", 0, 10),
            put(1, "b", 20, 30),
            get(2, Some("a"), 40, 50),
        ];
        let pic = render(&ops, &all(&ops), 100, false);
        println!("{pic}");
        assert_fits(&pic, 100);
        let lines: Vec<&str> = pic.lines().collect();
        assert!(lines[0].starts_with("key k · 3 ops · 0.000–0.050 ms"));
        assert!(lines[1].starts_with("c1 │├put a"));
        assert!(lines[1].contains("├put b"));
        assert!(lines[2].starts_with("c2 │"));
        assert!(lines[2].contains("get→a"));
        assert!(lines[3].contains("0.000") && lines[3].ends_with("0.050 ms"));
        assert_eq!(
            lines[4],
            "why: get→a (client 2) started after put b (client 1) completed; nothing wrote a after that"
        );
        assert_eq!(lines.len(), 5);
        // The bars are in time order on a shared axis.
        let put_b = lines[1].chars().position(|c| c == 'b').unwrap();
        let get = lines[2].chars().position(|c| c == '├').unwrap();
        assert!(get > put_b);
    }

    #[test]
    fn colour_only_adds_escapes() {
        let ops = [
            put(1, "a", 0, 10),
            put(1, "b", 20, 30),
            get(2, Some("a"), 40, 50),
        ];
        let plain = render(&ops, &all(&ops), 100, false);
        let colored = render(&ops, &all(&ops), 100, true);
        assert!(!plain.contains('\x1b'));
        assert!(colored.contains("\x1b[36m"), "writes coloured");
        assert!(colored.contains("\x1b[1;31m├"), "the offending read in red");
        assert_eq!(strip(&colored), plain);
        assert_fits(&colored, 100);
    }

    #[test]
    fn labels_for_every_kind() {
        let ops = [
            put(1, "v3", 0, 100),
            unknown(put(2, "v4", 10, 60)),
            get(3, Some("v3"), 20, 200),
            get(4, None, 0, 30),
            del(4, 40, 90),
            stale(5, Some("v1"), 300, 400),
            stale(5, None, 500, 600),
            fail_op(put(6, "v9", 0, 50)),
        ];
        let pic = render(&ops, &all(&ops), 100, false);
        println!("{pic}");
        assert_fits(&pic, 100);
        for l in [
            "put v3",
            "put v4",
            "get→v3",
            "get→∅",
            "del",
            "stale get→v1",
            "stale get→∅",
            "put v9 ✗",
        ] {
            assert!(pic.contains(l), "missing {l}");
        }
        assert!(pic.contains("╌╌?"), "unknown write drawn open-ended");
        assert!(pic.contains("returned a value that no write shown here wrote"));
        for p in 1..=6 {
            assert!(pic.contains(&format!("c{p} │")));
        }
    }

    fn fail_op(mut o: Operation) -> Operation {
        o.outcome = Outcome::Fail;
        o
    }

    #[test]
    fn other_explanations() {
        // A newer value, then the older one.
        let ops = [
            put(1, "a", 0, 10),
            put(1, "b", 20, 100),
            get(2, Some("b"), 30, 40),
            get(3, Some("a"), 50, 60),
        ];
        let pic = render(&ops, &all(&ops), 100, false);
        assert!(pic.contains("why: get→a (client 3) started after get→b (client 2) completed; nothing wrote a after that"), "{pic}");
        // A read from the future.
        let ops = [get(1, Some("a"), 0, 10), put(2, "a", 20, 30)];
        let pic = render(&ops, &all(&ops), 100, false);
        assert!(pic.contains("get→a (client 1) completed before any write of a started"));
        // Absent after a completed put.
        let ops = [put(1, "a", 0, 10), get(2, None, 20, 30)];
        let pic = render(&ops, &all(&ops), 100, false);
        assert!(pic.contains("nothing deleted k after that"), "{pic}");
        // Two reads order a concurrent write.
        let ops = [
            put(1, "a", 0, 100),
            get(2, Some("a"), 20, 30),
            get(2, None, 40, 50),
        ];
        let pic = render(&ops, &all(&ops), 100, false);
        assert!(pic.contains("why: get→∅ (client 2) started after get→a (client 2) completed; nothing deleted k after that"), "{pic}");
        // No simple shape: no sentence, nothing red.
        let ops = [
            put(1, "a", 0, 100),
            put(2, "b", 0, 100),
            get(3, Some("a"), 10, 20),
            get(3, Some("b"), 30, 40),
            get(3, Some("a"), 50, 60),
        ];
        assert_eq!(check(&ops, Budget::default()).verdict, Verdict::Violation);
        let pic = render(&ops, &all(&ops), 100, true);
        assert!(
            !pic.contains("why:") && !pic.contains("\x1b[1;31m"),
            "{pic}"
        );
    }

    #[test]
    fn labels_make_room_instead_of_new_rows() {
        // A short bar right before the same client's next one: its label goes to the left.
        let ops = [
            put(2, "a", 0, 1000),
            del(1, 900, 910),
            get(1, None, 912, 1000),
        ];
        let pic = render(&ops, &all(&ops), 100, false);
        println!("{pic}");
        assert_fits(&pic, 100);
        let rows: Vec<&str> = pic.lines().filter(|l| l.contains('│')).collect();
        assert_eq!(rows.len(), 3, "one row per client plus the axis:\n{pic}");
        assert!(rows[0].starts_with("c1 │") && rows[0].contains("del │├get→∅"));
        assert!(rows[0].contains("get→∅"));
    }

    #[test]
    fn fits_any_width_and_survives_odd_input() {
        let ops = [
            put(1, "a-rather-long-value-that-goes-on-and-on", 0, 10),
            put(1, "b", 5, 8), // overlaps its own client: a second lane
            put(12345, "c", 7, 7),
            get(2, Some("a-rather-long-value-that-goes-on-and-on"), 9, 3), // completes "before" it starts
            unknown(del(3, 1_000_000, 1_000_001)),
        ];
        for width in [0, 1, 5, 10, 20, 40, 60, 80, 100, 200] {
            for color in [false, true] {
                let pic = render(&ops, &all(&ops), width, color);
                assert_fits(&pic, width);
            }
        }
        let pic = render(&ops, &all(&ops), 100, false);
        println!("{pic}");
        assert!(pic.contains("c12345 │"));
        assert!(pic.contains('…'));
        // Empty and out-of-range windows.
        assert_eq!(render(&ops, &[], 100, false), "timeline: no operations\n");
        assert_eq!(render(&ops, &[99], 100, false), "timeline: no operations\n");
        // Zero span.
        let same = [put(1, "a", 5, 5), get(2, Some("a"), 5, 5)];
        assert_fits(&render(&same, &[0, 1], 30, false), 30);
    }

    #[test]
    fn windows_of_corrupted_random_histories() {
        let mut rendered = 0;
        for seed in 0..150 {
            let mut ops = simulate(seed, Sim::small());
            let mut rng = Rng::new(seed ^ 0xbeef);
            let Some(bad) = corrupt(&mut ops, &mut rng) else {
                continue;
            };
            let report = check(&ops, Budget::default());
            assert_eq!(report.verdict, Verdict::Violation);
            let key = report.keys.iter().find(|k| k.key == ops[bad].key).unwrap();
            for width in [100, 72, 30] {
                let pic = render(&ops, &key.window, width, seed % 2 == 0);
                assert_fits(&pic, width);
                if width == 100 {
                    assert!(strip(&pic).contains(&label(&ops[bad])), "{pic}");
                }
            }
            if seed < 3 {
                println!("{}", render(&ops, &key.window, 100, false));
            }
            rendered += 1;
        }
        assert!(rendered > 100);
    }
}
