//! Where the diagram puts things: a column per node, and time going down. Time is linear
//! (`px_per_us`), except where message events (sends, receipts) come closer than [`ROW`] px
//! at that scale: there each event gets a row of its own, and what follows moves down by
//! as much (quiet stretches keep the linear scale; a burst, such as an election's messages
//! a fraction of a millisecond apart, gets room). Knots (an event's time, its y) hold the
//! mapping, linear between two of them. The whole is scaled down to fit [`MAX_HEIGHT`].

use std::collections::HashMap;

use super::super::{Message, Selection};

/// Most pixels of time (the plot's height).
pub const MAX_HEIGHT: f64 = 20_000.0;
/// Fewest pixels of time.
pub const MIN_HEIGHT: f64 = 400.0;
/// Pixels of time per message at the linear scale (bursts get rows on top of it).
pub const PX_PER_MESSAGE: f64 = ROW;
/// Fewest pixels per second at the linear scale.
pub const MIN_PX_PER_S: f64 = 200.0;
/// The least room between two message events (before scaling down to [`MAX_HEIGHT`]).
pub const ROW: f64 = 10.0;
/// A column's width.
pub const COL_W: f64 = 240.0;
/// The time axis's room on the left.
pub const LEFT: f64 = 90.0;
/// The title's, legend's and column headers' room.
pub const TOP: f64 = 120.0;
/// Room below the plot.
pub const BOTTOM: f64 = 30.0;
/// How far past the window's end a receipt still stretches the diagram.
const TAIL_US: u64 = 1_000_000;

/// See the module doc.
pub struct Layout {
    /// The window's start.
    pub start_us: u64,
    /// The last time drawn (the window's end, or a later receipt).
    pub bottom_us: u64,
    /// Pixels per µs where time is linear.
    pub px_per_us: f64,
    /// The least room between two message events (less than [`ROW`] when scaled down).
    pub row: f64,
    /// (time, y below [`TOP`]) of each message event, both ascending.
    knots: Vec<(u64, f64)>,
    cols: HashMap<u64, f64>,
    /// The picture's size.
    pub width: f64,
    /// Its height.
    pub height: f64,
}

impl Layout {
    /// The layout of `msgs` (the messages drawn) over `sel`'s window.
    pub fn new(sel: &Selection<'_>, msgs: &[Message<'_>]) -> Self {
        let last_recv = msgs.iter().filter_map(|m| m.recv_us).max().unwrap_or(0);
        let bottom_us = sel.end_us.max(last_recv.min(sel.end_us + TAIL_US));
        let start_us = sel.start_us;
        let span_us = bottom_us.saturating_sub(start_us).max(1);
        let linear = (msgs.len() as f64 * PX_PER_MESSAGE)
            .max(span_us as f64 / 1e6 * MIN_PX_PER_S)
            .clamp(MIN_HEIGHT, MAX_HEIGHT);
        let mut px_per_us = linear / span_us as f64;
        let mut times: Vec<u64> = msgs
            .iter()
            .flat_map(|m| [Some(m.t_us), m.recv_us])
            .flatten()
            .map(|t| t.clamp(start_us, bottom_us))
            .collect();
        times.sort_unstable();
        times.dedup();
        let mut knots = Vec::with_capacity(times.len());
        let mut prev: Option<(u64, f64)> = None;
        for t in times {
            let y = match prev {
                None => (t - start_us) as f64 * px_per_us,
                Some((t0, y0)) => y0 + ((t - t0) as f64 * px_per_us).max(ROW),
            };
            knots.push((t, y));
            prev = Some((t, y));
        }
        let cols = sel
            .nodes
            .iter()
            .enumerate()
            .map(|(i, id)| (*id, LEFT + COL_W * (i as f64 + 0.5)))
            .collect();
        let mut layout = Self {
            start_us,
            bottom_us,
            px_per_us,
            row: ROW,
            knots,
            cols,
            width: (LEFT + COL_W * sel.nodes.len() as f64 + 40.0).max(900.0),
            height: 0.0,
        };
        let mut plot = layout.offset(bottom_us);
        if plot > MAX_HEIGHT {
            let k = MAX_HEIGHT / plot;
            px_per_us *= k;
            layout.px_per_us = px_per_us;
            layout.row = ROW * k;
            for knot in &mut layout.knots {
                knot.1 *= k;
            }
            plot = MAX_HEIGHT;
        }
        layout.height = TOP + plot.max(MIN_HEIGHT) + BOTTOM;
        layout
    }

    /// Pixels below [`TOP`] of time `t_us`.
    fn offset(&self, t_us: u64) -> f64 {
        let t = t_us.clamp(self.start_us, self.bottom_us);
        let i = self.knots.partition_point(|(k, _)| *k <= t);
        if i == 0 {
            return (t - self.start_us) as f64 * self.px_per_us;
        }
        let (t0, y0) = self.knots[i - 1];
        match self.knots.get(i) {
            Some(&(t1, y1)) => y0 + (y1 - y0) * (t - t0) as f64 / (t1 - t0) as f64,
            None => y0 + (t - t0) as f64 * self.px_per_us,
        }
    }

    /// The y of time `t_us` (clamped to the window and its tail).
    pub fn y(&self, t_us: u64) -> f64 {
        TOP + self.offset(t_us)
    }

    /// The x of node `node`'s column.
    pub fn x(&self, node: u64) -> Option<f64> {
        self.cols.get(&node).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::testing::*;
    use super::super::super::{Selection, Window};
    use super::*;

    #[test]
    fn time_is_linear_where_it_is_quiet_and_a_burst_gets_a_row_per_event() {
        let rec = election();
        let sel = Selection::new(&rec, "r", &Window::default()).expect("sel");
        let msgs = sel.messages();
        let l = Layout::new(&sel, &msgs);
        // The election's eight events within 9 ms: each at least a row below the last, and
        // what follows moved down by as much: the quiet time after keeps the linear scale.
        let ys: Vec<f64> = (1001..=1009)
            .map(|ms| l.y(1_000_000_000 + ms * 1000))
            .collect();
        assert!(ys.windows(2).all(|w| w[1] > w[0]), "{ys:?}");
        assert!(ys[8] - ys[0] >= 7.0 * ROW, "{ys:?}");
        let quiet = l.y(1_000_000_000 + 1_400_000) - l.y(1_000_000_000 + 1_100_000);
        assert!((quiet - 300_000.0 * l.px_per_us).abs() < 1e-6, "{quiet}");
        // Before any message: the linear scale.
        let early = l.y(1_000_000_000 + 50_000) - TOP;
        assert!((early - 50_000.0 * l.px_per_us).abs() < 1e-6);
        // Monotonic everywhere, and the end is the bottom.
        let mut last = 0.0;
        for ms in (0..=3000).step_by(7) {
            let y = l.y(1_000_000_000 + ms * 1000);
            assert!(y >= last, "at {ms} ms");
            last = y;
        }
        assert!(l.height <= TOP + MAX_HEIGHT + BOTTOM);
    }
}
