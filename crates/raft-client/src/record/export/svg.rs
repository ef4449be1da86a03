//! The SVG export: a window of a recording as a space-time diagram, to open in a browser.
//!
//! A column per node (`node N`), time going down from the window's start, a time axis on
//! the left (seconds, or milliseconds for a window under 2 s). Along each column a bar of
//! the node's role and term ([`roles`]: leader green, candidate yellow, pre-candidate light
//! yellow, follower grey-blue) with `leader t3` where it changes and `silent` where the node
//! stops being heard (killed, frozen). Faults are small red marks with their text.
//!
//! Every message sent in the window is drawn (`class="msg"`, `data-msg-id`, a tooltip with
//! all its fields): received, an arrow from the sender at the send to the receiver at the
//! receipt, labelled `RequestVote t3`, `Append t3 +2`; dropped by a fault, a short line
//! ending in ✕ (`msg dropped`); never received (in flight at the end, or lost with its
//! receiver), a short dashed stub (`msg unpaired`). Colours by type: votes purple, appends
//! blue, heartbeats grey, responses teal, rejects red, others orange. Labels that would
//! overlap are left out, heartbeats' first (the tooltip still has them).
//!
//! Time ([`layout`]) is linear, about [`layout::PX_PER_MESSAGE`] px per message and at least
//! [`layout::MIN_PX_PER_S`] px per second, except that message events closer than a row
//! ([`layout::ROW`] px) get a row each (an election's messages, a fraction of a millisecond
//! apart, stay apart) and push what follows down; at most [`layout::MAX_HEIGHT`] px. A window of more than [`MAX_MESSAGES`] messages leaves the
//! heartbeats out first (elections and appends stay visible), then keeps the first
//! [`MAX_MESSAGES`]; a line at the top says so.

pub mod layout;
pub mod roles;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, Write};

use kv_proto::watch::{self as pb, watch_record::Kind};

use super::{Message, Selection};
use layout::{BOTTOM, LEFT, Layout, TOP};
use roles::Segment;

/// Most messages drawn.
pub const MAX_MESSAGES: usize = 2000;
const BAR_W: f64 = 8.0;
const RED: &str = "#e03131";
const GREY: &str = "#868e96";
/// Message categories: marker id, colour, legend.
const KINDS: [(&str, &str, &str); 6] = [
    ("vote", "#9c36b5", "votes"),
    ("append", "#1971c2", "appends"),
    ("heartbeat", "#909296", "heartbeats"),
    ("response", "#0c8599", "responses"),
    ("reject", RED, "rejects"),
    ("other", "#e8590c", "other"),
];
/// Roles: name in the records, word, colour.
const ROLES: [(&str, &str, &str); 4] = [
    ("Leader", "leader", "#2f9e44"),
    ("Candidate", "candidate", "#f2c200"),
    ("PreCandidate", "pre-candidate", "#f8df70"),
    ("Follower", "follower", "#8fa6bf"),
];

/// Writes `sel` as an SVG diagram; returns the messages drawn and what was left out.
pub fn write(sel: &Selection<'_>, out: &mut impl Write) -> io::Result<(usize, Option<String>)> {
    let (msgs, left_out, cut_us) = pick(sel.messages());
    let layout = Layout::new(sel, &msgs);
    let mut s = String::with_capacity(64 * 1024 + msgs.len() * 600);
    header(&mut s, sel, &layout, msgs.len(), left_out.as_deref());
    axis(&mut s, sel, &layout);
    let mut beside = Beside::default();
    for seg in roles::segments(sel, layout.bottom_us) {
        bar(&mut s, &layout, &seg, &mut beside);
    }
    marks(&mut s, sel, &layout, &mut beside);
    if let Some(t) = cut_us {
        let y = layout.y(t);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{RED}" stroke-dasharray="6 4"/><text x="{:.1}" y="{:.1}" fill="{RED}" font-size="11" text-anchor="end">messages after this left out</text>"##,
            layout.width - 10.0,
            layout.width - 10.0,
            y - 4.0
        );
    }
    let mut labels = Vec::new();
    let mut drawn = 0;
    for m in &msgs {
        if let Some(label) = arrow(&mut s, sel, &layout, m) {
            drawn += 1;
            labels.extend(label);
        }
    }
    place_labels(&mut s, labels, &beside.boxes);
    s.push_str("</svg>\n");
    out.write_all(s.as_bytes())?;
    Ok((drawn, left_out))
}

fn is_heartbeat(m: &pb::PeerMessage) -> bool {
    m.msg_type.starts_with("MsgHeartbeat")
}

/// At most [`MAX_MESSAGES`]: heartbeats left out first, then the latest. Returns them,
/// what was left out, and the time after which messages are missing.
fn pick(msgs: Vec<Message<'_>>) -> (Vec<Message<'_>>, Option<String>, Option<u64>) {
    let total = msgs.len();
    if total <= MAX_MESSAGES {
        return (msgs, None, None);
    }
    let mut kept: Vec<Message<'_>> = msgs.into_iter().filter(|m| !is_heartbeat(m.msg)).collect();
    let beats = total - kept.len();
    let mut why = format!("{total} messages in the window: the {beats} heartbeats left out");
    let mut cut = None;
    if kept.len() > MAX_MESSAGES {
        cut = kept.get(MAX_MESSAGES).map(|m| m.t_us);
        why.push_str(&format!(
            ", and of the others only the first {MAX_MESSAGES} drawn"
        ));
        kept.truncate(MAX_MESSAGES);
    }
    why.push_str("; narrow the window with --from/--to to see them all");
    (kept, Some(why), cut)
}

/// Escapes text for XML (content and attribute values).
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Not allowed in XML 1.0 at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn header(s: &mut String, sel: &Selection<'_>, l: &Layout, n: usize, left_out: Option<&str>) {
    let (from, to) = sel.bounds_s();
    let nodes: Vec<String> = sel.nodes.iter().map(u64::to_string).collect();
    let (w, h) = (l.width, l.height);
    let _ = writeln!(
        s,
        r##"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{h:.0}" viewBox="0 0 {w:.0} {h:.0}" font-family="DejaVu Sans, Verdana, sans-serif">
<rect x="0" y="0" width="{w:.0}" height="{h:.0}" fill="#ffffff"/>
<defs>"##
    );
    for (id, colour, _) in KINDS {
        let _ = writeln!(
            s,
            r#"<marker id="ah-{id}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>"#
        );
    }
    s.push_str("</defs>\n");
    let _ = writeln!(
        s,
        r##"<text x="12" y="24" font-size="16" font-weight="bold" fill="#212529">{}: nodes {}, {from:.2}–{to:.2} s after the first record</text>"##,
        esc(&sel.name),
        nodes.join(", ")
    );
    let _ = writeln!(
        s,
        r##"<text x="12" y="44" font-size="12" fill="#495057">{n} messages. Time goes down from {from:.2} s, 1 s = {:.0} px, but events closer than {:.0} px get that much room (the axis stays exact).</text>"##,
        l.px_per_us * 1e6,
        l.row
    );
    if let Some(why) = left_out {
        let _ = writeln!(
            s,
            r#"<text x="12" y="62" font-size="12" fill="{RED}">{}</text>"#,
            esc(why)
        );
    }
    legend(s);
    for id in &sel.nodes {
        let Some(cx) = l.x(*id) else { continue };
        let _ = writeln!(
            s,
            r##"<text x="{cx:.1}" y="{:.1}" font-size="13" font-weight="bold" text-anchor="middle" fill="#212529">node {id}</text><line x1="{cx:.1}" y1="{TOP}" x2="{cx:.1}" y2="{:.1}" stroke="#dee2e6"/>"##,
            TOP - 6.0,
            l.height - BOTTOM
        );
    }
}

/// What the colours and strokes mean.
fn legend(s: &mut String) {
    let mut x = 12.0;
    for (id, colour, name) in KINDS {
        let _ = write!(
            s,
            r##"<line x1="{x}" y1="80" x2="{}" y2="80" stroke="{colour}" stroke-width="1.5" marker-end="url(#ah-{id})"/><text x="{}" y="84" font-size="11" fill="#495057">{name}</text>"##,
            x + 24.0,
            x + 30.0
        );
        x += 38.0 + name.len() as f64 * 6.5;
    }
    let _ = write!(
        s,
        r##"<path d="M{x} 80 L{} 80 M{} 76 L{} 84 M{} 84 L{} 76" stroke="{RED}" stroke-width="1.5" fill="none"/><text x="{}" y="84" font-size="11" fill="#495057">dropped</text>"##,
        x + 20.0,
        x + 16.0,
        x + 24.0,
        x + 16.0,
        x + 24.0,
        x + 30.0
    );
    x += 85.0;
    let _ = writeln!(
        s,
        r##"<line x1="{x}" y1="80" x2="{}" y2="80" stroke="#909296" stroke-dasharray="4 3" stroke-width="1.5"/><text x="{}" y="84" font-size="11" fill="#495057">never received</text>"##,
        x + 24.0,
        x + 30.0
    );
    x = 12.0;
    for (_, word, colour) in ROLES {
        let _ = write!(
            s,
            r##"<rect x="{x}" y="92" width="20" height="8" fill="{colour}"/><text x="{}" y="100" font-size="11" fill="#495057">{word}</text>"##,
            x + 26.0
        );
        x += 40.0 + word.len() as f64 * 6.5;
    }
    s.push('\n');
}

/// The time axis: ticks [1, 2, 5] × 10^k apart, at least 60 px at the linear scale; a
/// label only where it does not run into the one before.
fn axis(s: &mut String, sel: &Selection<'_>, l: &Layout) {
    let mut step: u64 = 1000;
    'find: for _ in 0..12 {
        for k in [1, 2, 5] {
            if (step * k) as f64 * l.px_per_us >= 60.0 {
                step *= k;
                break 'find;
            }
        }
        step *= 10;
    }
    let in_ms = sel.end_us.saturating_sub(sel.start_us) < 2_000_000;
    let bottom = l.height - BOTTOM;
    let _ = writeln!(
        s,
        r##"<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom:.1}" stroke="#495057"/>"##
    );
    let mut dt = 0;
    let mut last_label = f64::MIN;
    while sel.start_us + dt <= l.bottom_us {
        let y = l.y(sel.start_us + dt);
        let _ = write!(
            s,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#f1f3f5"/><line x1="{}" y1="{y:.1}" x2="{LEFT}" y2="{y:.1}" stroke="#495057"/>"##,
            l.width - 10.0,
            LEFT - 5.0,
        );
        if y - last_label >= 16.0 {
            let text = if in_ms {
                format!("{} ms", dt / 1000)
            } else if step >= 1_000_000 {
                format!("{:.0} s", dt as f64 / 1e6)
            } else if step >= 100_000 {
                format!("{:.1} s", dt as f64 / 1e6)
            } else {
                format!("{:.2} s", dt as f64 / 1e6)
            };
            let _ = write!(
                s,
                r##"<text x="{}" y="{:.1}" font-size="11" text-anchor="end" fill="#495057">{text}</text>"##,
                LEFT - 8.0,
                y + 4.0
            );
            last_label = y;
        }
        s.push('\n');
        dt += step;
    }
}

/// A label's box: from x, to x, its middle's y.
type LabelBox = (f64, f64, f64);

/// Labels beside each column (roles, faults), pushed down so that they do not overlap;
/// their boxes, for the messages' labels to keep clear of.
#[derive(Default)]
struct Beside {
    last_y: HashMap<u64, f64>,
    boxes: Vec<LabelBox>,
}

impl Beside {
    /// Where a label of `text` at `x` goes, beside node `node`'s column, at `y` or below.
    fn place(&mut self, node: u64, x: f64, y: f64, text: &str) -> f64 {
        let last = self.last_y.get(&node).copied().unwrap_or(f64::MIN);
        let y = y.max(last + 12.0);
        self.last_y.insert(node, y);
        let width = text.chars().count() as f64 * 7.0;
        self.boxes.push((x, x + width, y - 4.0));
        y
    }
}

fn role_style(role: &str) -> (&'static str, &'static str) {
    ROLES
        .iter()
        .find(|(name, _, _)| *name == role)
        .map_or(("unknown", "#ced4da"), |(_, word, colour)| (word, colour))
}

fn bar(s: &mut String, l: &Layout, seg: &Segment, beside: &mut Beside) {
    let Some(cx) = l.x(seg.node) else { return };
    let (y0, y1) = (l.y(seg.from_us), l.y(seg.to_us));
    let (word, colour) = role_style(&seg.role);
    let tx = cx + BAR_W / 2.0 + 3.0;
    let _ = writeln!(
        s,
        r#"<rect class="role" x="{:.1}" y="{y0:.1}" width="{BAR_W}" height="{:.1}" fill="{colour}"><title>node {}: {word} in term {}</title></rect>"#,
        cx - BAR_W / 2.0,
        (y1 - y0).max(1.0),
        seg.node,
        seg.term
    );
    let text = format!("{word} t{}", seg.term);
    let ly = beside.place(seg.node, tx, y0 + 10.0, &text);
    let _ = writeln!(
        s,
        r##"<text x="{tx:.1}" y="{ly:.1}" font-size="11" font-weight="bold" fill="#343a40" stroke="#ffffff" stroke-width="3" paint-order="stroke">{text}</text>"##
    );
    if seg.silent {
        let ly = beside.place(seg.node, tx, y1 + 10.0, "silent");
        let _ = writeln!(
            s,
            r##"<line x1="{:.1}" y1="{y1:.1}" x2="{:.1}" y2="{y1:.1}" stroke="#495057" stroke-width="2"/><text x="{tx:.1}" y="{ly:.1}" font-size="11" font-style="italic" fill="{GREY}" stroke="#ffffff" stroke-width="3" paint-order="stroke">silent</text>"##,
            cx - BAR_W,
            cx + BAR_W
        );
    }
}

/// Faults and gaps in the streams, as small marks with their text.
fn marks(s: &mut String, sel: &Selection<'_>, l: &Layout, beside: &mut Beside) {
    for r in sel.in_window() {
        let (text, colour) = match &r.kind {
            Some(Kind::Fault(f)) => (format!("fault: {}", shorten(&f.text, 60)), RED),
            Some(Kind::Missed(m)) => (format!("missed {} records", m.count), GREY),
            _ => continue,
        };
        let Some(cx) = l.x(r.node) else { continue };
        let y = l.y(r.t_us);
        let tx = cx + BAR_W / 2.0 + 3.0;
        let ly = beside.place(r.node, tx, y + 4.0, &text);
        let _ = writeln!(
            s,
            r##"<path class="mark" d="M{:.1} {y:.1} L{cx:.1} {:.1} L{:.1} {y:.1} L{cx:.1} {:.1} z" fill="{colour}"/><text x="{:.1}" y="{ly:.1}" font-size="11" fill="{colour}" stroke="#ffffff" stroke-width="3" paint-order="stroke">{}</text>"##,
            cx - 6.0,
            y - 6.0,
            cx + 6.0,
            y + 6.0,
            tx,
            esc(&text)
        );
    }
}

fn shorten(text: &str, max: usize) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.chars().count() <= max {
        one_line
    } else {
        let mut cut: String = one_line.chars().take(max - 1).collect();
        cut.push('…');
        cut
    }
}

/// A message's marker and colour.
fn kind_of(m: &pb::PeerMessage) -> (&'static str, &'static str) {
    let t = m.msg_type.as_str();
    let id = if m.reject {
        "reject"
    } else if is_heartbeat(m) {
        "heartbeat"
    } else if t.ends_with("Response") {
        "response"
    } else if t.contains("Vote") {
        "vote"
    } else if t == "MsgAppend" {
        "append"
    } else {
        "other"
    };
    let colour = KINDS
        .iter()
        .find(|(k, _, _)| *k == id)
        .map_or("#000000", |(_, c, _)| c);
    (id, colour)
}

/// `RequestVote t3`, `Append t3 +2`, `AppendResponse t3 reject`.
pub fn label(m: &pb::PeerMessage) -> String {
    let mut text = format!("{} t{}", m.msg_type.trim_start_matches("Msg"), m.term);
    if m.entries > 0 {
        text.push_str(&format!(" +{}", m.entries));
    }
    if m.reject {
        text.push_str(" reject");
    }
    if m.fate == "delayed" {
        text.push_str(&format!(" delayed {} ms", m.delay_ms));
    }
    text
}

/// Every field, for the tooltip.
fn tooltip(sel: &Selection<'_>, m: &Message<'_>) -> String {
    let p = m.msg;
    let mut text = format!(
        "{} {}→{} term {} index {} log_term {} entries {} commit {}",
        p.msg_type, p.from, p.to, p.term, p.index, p.log_term, p.entries, p.commit
    );
    if p.reject {
        text.push_str(&format!(" reject (hint {})", p.reject_hint));
    }
    text.push_str(&format!(" · {} · sent {:.6} s", p.fate, sel.secs(m.t_us)));
    match m.recv_us {
        Some(r) => text.push_str(&format!(", received {:.6} s", sel.secs(r))),
        None => text.push_str(", never received"),
    }
    text.push_str(&format!(" · msg {}", p.msg_id));
    esc(&text)
}

/// A message's label, to be placed if it does not overlap another.
struct Label {
    /// Heartbeats' labels go last.
    heartbeat: bool,
    /// The line it goes along: from, to.
    from: (f64, f64),
    to: (f64, f64),
    angle: f64,
    colour: &'static str,
    text: String,
}

/// Draws one message; `None` if it has no column to go to, else its label if it has one.
fn arrow(
    s: &mut String,
    sel: &Selection<'_>,
    l: &Layout,
    m: &Message<'_>,
) -> Option<Option<Label>> {
    let (x1, xt) = (l.x(m.node)?, l.x(m.msg.to)?);
    if x1 == xt {
        return None;
    }
    let (kind, colour) = kind_of(m.msg);
    let y1 = l.y(m.t_us);
    let id = m.msg.msg_id;
    let tip = tooltip(sel, m);
    let (x2, y2) = match m.recv_us {
        Some(r) => {
            let y2 = l.y(r);
            let _ = writeln!(
                s,
                r#"<line class="msg" data-msg-id="{id}" x1="{x1:.1}" y1="{y1:.1}" x2="{xt:.1}" y2="{y2:.1}" stroke="{colour}" stroke-width="1.3" marker-end="url(#ah-{kind})"><title>{tip}</title></line>"#
            );
            (xt, y2)
        }
        None if m.msg.fate == "dropped" => {
            let (x2, y2) = (x1 + (xt - x1) * 0.4, y1 + 6.0);
            let _ = writeln!(
                s,
                r#"<path class="msg dropped" data-msg-id="{id}" d="M{x1:.1} {y1:.1} L{x2:.1} {y2:.1}" stroke="{colour}" stroke-width="1.3" fill="none"><title>{tip}</title></path><path class="cross" d="M{:.1} {:.1} L{:.1} {:.1} M{:.1} {:.1} L{:.1} {:.1}" stroke="{RED}" stroke-width="2"/>"#,
                x2 - 5.0,
                y2 - 5.0,
                x2 + 5.0,
                y2 + 5.0,
                x2 - 5.0,
                y2 + 5.0,
                x2 + 5.0,
                y2 - 5.0
            );
            (x2, y2)
        }
        None => {
            let (x2, y2) = (x1 + (xt - x1) * 0.25, y1 + 4.0);
            let _ = writeln!(
                s,
                r##"<path class="msg unpaired" data-msg-id="{id}" d="M{x1:.1} {y1:.1} L{x2:.1} {y2:.1}" stroke="{colour}" stroke-width="1.3" stroke-dasharray="4 3" fill="none"><title>{tip}</title></path><text x="{:.1}" y="{:.1}" font-size="10" fill="{GREY}" text-anchor="middle">?</text>"##,
                x2 + (xt - x1).signum() * 6.0,
                y2 + 3.0
            );
            return Some(None);
        }
    };
    // Along the arrow, upright, at its middle.
    let mut angle = (y2 - y1).atan2(x2 - x1).to_degrees();
    if angle > 90.0 {
        angle -= 180.0;
    } else if angle < -90.0 {
        angle += 180.0;
    }
    Some(Some(Label {
        heartbeat: is_heartbeat(m.msg),
        from: (x1, y1),
        to: (x2, y2),
        angle,
        colour,
        text: label(m.msg),
    }))
}

/// Writes the labels, each at the middle of its line or else a little before or after,
/// where it overlaps neither `taken` nor one placed before (the heartbeats' go last); a
/// label with no room is left out.
fn place_labels(s: &mut String, mut labels: Vec<Label>, taken: &[LabelBox]) {
    labels.sort_by_key(|l| l.heartbeat);
    // Boxes placed, by their y in rows of 20 px, to look near ones up.
    let mut placed: HashMap<i64, Vec<LabelBox>> = HashMap::new();
    let row_of = |y: f64| (y / 20.0).floor() as i64;
    for b in taken {
        placed.entry(row_of(b.2)).or_default().push(*b);
    }
    for l in labels {
        let half = l.text.chars().count() as f64 * 2.7 + 2.0;
        let spot = [0.5, 0.62, 0.38, 0.72, 0.28].into_iter().find_map(|f| {
            let x = l.from.0 + (l.to.0 - l.from.0) * f;
            let y = l.from.1 + (l.to.1 - l.from.1) * f;
            let (x0, x1, mid) = (x - half, x + half, y - 6.0);
            let row = row_of(mid);
            let clash = (row - 1..=row + 1).any(|r| {
                placed.get(&r).is_some_and(|boxes| {
                    boxes
                        .iter()
                        .any(|(a, b, y)| (y - mid).abs() < 10.0 && x0 < *b && *a < x1)
                })
            });
            (!clash).then_some((x, y, (x0, x1, mid), row))
        });
        let Some((x, y, bx, row)) = spot else {
            continue;
        };
        placed.entry(row).or_default().push(bx);
        let a = l.angle;
        let _ = writeln!(
            s,
            r##"<text class="label" x="{x:.1}" y="{:.1}" transform="rotate({a:.1} {x:.1} {y:.1})" font-size="9" text-anchor="middle" fill="{}" stroke="#ffffff" stroke-width="2.5" paint-order="stroke">{}</text>"##,
            y - 2.5,
            l.colour,
            esc(&l.text)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::{Format, Window, export};
    use super::*;

    fn svg_of(rec: &crate::record::file::Recording, w: Window) -> String {
        let mut out = Vec::new();
        export(rec, "run <1>.jsonl", Format::Svg, &w, &mut out).expect("export");
        String::from_utf8(out).expect("utf-8")
    }

    /// The msg ids of the elements of class `class`.
    fn ids(doc: &roxmltree::Document<'_>, class: &str) -> Vec<u64> {
        doc.descendants()
            .filter(|n| n.attribute("class") == Some(class))
            .map(|n| {
                n.attribute("data-msg-id")
                    .and_then(|v| v.parse().ok())
                    .expect("a data-msg-id")
            })
            .collect()
    }

    fn texts<'a>(doc: &'a roxmltree::Document<'_>) -> Vec<&'a str> {
        doc.descendants().filter_map(|n| n.text()).collect()
    }

    #[test]
    fn the_diagram_parses_and_draws_each_message_as_it_went() {
        let rec = election();
        let text = svg_of(&rec, Window::default());
        let doc = roxmltree::Document::parse(&text).expect("well-formed XML");
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        // Every paired message is an arrow with a head; the dropped and the lost are not.
        assert_eq!(ids(&doc, "msg"), [1, 2, 3, 4, 5, 6, 7, 8, 9, 12]);
        assert_eq!(ids(&doc, "msg dropped"), [10]);
        assert_eq!(ids(&doc, "msg unpaired"), [11]);
        let arrows = doc
            .descendants()
            .filter(|n| n.attribute("class") == Some("msg"))
            .filter(|n| n.attribute("marker-end").is_some())
            .count();
        assert_eq!(arrows, 10);
        let texts = texts(&doc);
        for want in [
            "node 1",
            "node 3",
            "RequestVote t3",
            "Append t3 +2",
            "AppendResponse t3 reject",
            "leader t3",
            "pre-candidate t2",
            "silent",
        ] {
            assert!(texts.contains(&want), "{want} in {texts:?}");
        }
        // Text is escaped: the file name and the fault's markup come back as they were.
        assert!(
            texts
                .iter()
                .any(|t| t.starts_with("run <1>.jsonl: nodes 1, 2, 3")),
            "{texts:?}"
        );
        assert!(texts.contains(&"fault: freeze <1> & \"all\""));
        let white = doc
            .descendants()
            .find(|n| n.tag_name().name() == "rect")
            .and_then(|n| n.attribute("fill"));
        assert_eq!(white, Some("#ffffff"), "a white background first");
    }

    #[test]
    fn the_window_cuts_the_messages_and_the_bars() {
        let rec = election();
        let w = Window {
            from_s: Some(0.9),
            to_s: Some(1.2),
        };
        let text = svg_of(&rec, w);
        let doc = roxmltree::Document::parse(&text).expect("well-formed XML");
        assert_eq!(ids(&doc, "msg"), [4, 5, 6, 7]);
        assert!(ids(&doc, "msg dropped").is_empty());
        // A short window counts in milliseconds.
        let texts = texts(&doc);
        assert!(texts.contains(&"100 ms"), "{texts:?}");
        // Node 2's bar: follower (from before the window), pre-candidate, candidate, leader.
        let roles: Vec<&str> = doc
            .descendants()
            .filter(|n| n.attribute("class") == Some("role"))
            .filter_map(|n| n.first_child().and_then(|t| t.text()))
            .filter(|t| t.starts_with("node 2"))
            .collect();
        assert_eq!(
            roles,
            [
                "node 2: follower in term 2",
                "node 2: pre-candidate in term 2",
                "node 2: candidate in term 3",
                "node 2: leader in term 3"
            ]
        );
    }

    #[test]
    fn labels_that_would_overlap_are_left_out_heartbeats_first() {
        // Two heartbeats and a vote request sent at the same moment along the same link.
        let mut r = Vec::new();
        sent(&mut r, 100, Some(100), msg(1, 1, 2, "MsgHeartbeat"));
        sent(&mut r, 100, Some(100), msg(2, 1, 2, "MsgRequestVote"));
        sent(&mut r, 100, Some(100), msg(3, 1, 2, "MsgHeartbeat"));
        let text = svg_of(&recording(r), Window::default());
        let doc = roxmltree::Document::parse(&text).expect("well-formed XML");
        assert_eq!(ids(&doc, "msg").len(), 3, "every arrow is drawn");
        let labels: Vec<&str> = doc
            .descendants()
            .filter(|n| n.attribute("class") == Some("label"))
            .filter_map(|n| n.text())
            .collect();
        assert_eq!(labels, ["RequestVote t3"]);
    }

    #[test]
    fn too_many_messages_leave_the_heartbeats_out_then_the_latest() {
        let mut r = Vec::new();
        for i in 0..1500 {
            sent(&mut r, i, Some(i + 1), msg(2 * i + 1, 1, 2, "MsgHeartbeat"));
            sent(&mut r, i, Some(i + 1), msg(2 * i + 2, 1, 3, "MsgAppend"));
        }
        let text = svg_of(&recording(r.clone()), Window::default());
        let doc = roxmltree::Document::parse(&text).expect("well-formed XML");
        let drawn = ids(&doc, "msg");
        assert_eq!(drawn.len(), 1500, "the appends, no heartbeat");
        assert!(drawn.iter().all(|id| id % 2 == 0));
        assert!(text.contains("3000 messages in the window: the 1500 heartbeats left out"));
        for i in 1500..2200 {
            sent(&mut r, i, Some(i + 1), msg(2 * i + 2, 1, 3, "MsgAppend"));
        }
        let mut out = Vec::new();
        let s = export(
            &recording(r),
            "r",
            Format::Svg,
            &Window::default(),
            &mut out,
        )
        .expect("export");
        assert_eq!(s.messages, MAX_MESSAGES);
        assert!(
            s.left_out
                .as_deref()
                .is_some_and(|w| w.contains("only the first 2000")),
            "{s:?}"
        );
        let text = String::from_utf8(out).expect("utf-8");
        let doc = roxmltree::Document::parse(&text).expect("well-formed XML");
        let height: f64 = doc
            .root_element()
            .attribute("height")
            .and_then(|h| h.parse().ok())
            .expect("height");
        assert!(height <= layout::MAX_HEIGHT + TOP + BOTTOM, "{height}");
    }

    #[test]
    fn escaping_leaves_nothing_raw() {
        assert_eq!(esc("a<b>&\"c'\u{1}"), "a&lt;b&gt;&amp;&quot;c&apos; ");
    }
}
