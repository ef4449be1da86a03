//! The cumulative distribution of every range's times without a leader, drawn in text as
//! in the paper's Figure 16: time since the kill across, the percent of trials that had a
//! new leader by then up, one letter per range. Pure: numbers in, lines out.
//!
//! The time axis is logarithmic, from a round number below the fastest trial to one above
//! the slowest: the default ranges' times span 10 ms to several hundred, and on a linear
//! axis 12-24 ms would be one column at the left edge.

use std::fmt::Write as _;

/// Columns of the plotting area.
pub const WIDTH: usize = 60;
/// Rows of the plotting area (10%, 20%, ..., 100% with 10).
pub const HEIGHT: usize = 10;

/// One curve: its label (the range) and its times in microseconds, sorted.
pub struct Series<'a> {
    /// What the legend calls it, e.g. `12-24 ms`.
    pub label: String,
    /// Sorted times, in microseconds.
    pub times_us: &'a [u64],
}

/// The time axis: `lo` to `hi` microseconds, logarithmic, over [`WIDTH`] columns.
struct Axis {
    lo: f64,
    hi: f64,
}

impl Axis {
    /// Round numbers (1, 2 or 5 times a power of ten) around every time.
    fn around(series: &[Series<'_>]) -> Self {
        let times = || series.iter().flat_map(|s| s.times_us.iter().copied());
        let fastest = times().min().unwrap_or(1).max(1);
        let slowest = times().max().unwrap_or(1).max(1);
        let lo = round_numbers()
            .take_while(|&v| v <= fastest)
            .last()
            .unwrap_or(1);
        let hi = round_numbers()
            .find(|&v| v >= slowest && v > lo)
            .unwrap_or(lo * 10);
        Self {
            lo: lo as f64,
            hi: hi as f64,
        }
    }

    /// The time at the right edge of column `c`, in microseconds.
    fn edge(&self, c: usize) -> f64 {
        self.lo * (self.hi / self.lo).powf((c + 1) as f64 / WIDTH as f64)
    }

    /// Where time `us` falls, in columns from the left edge (0 to `WIDTH`).
    fn position(&self, us: f64) -> usize {
        let at = WIDTH as f64 * (us / self.lo).ln() / (self.hi / self.lo).ln();
        at.round().clamp(0.0, WIDTH as f64) as usize
    }
}

/// 1, 2, 5, 10, 20, 50, ... (microseconds).
fn round_numbers() -> impl Iterator<Item = u64> {
    (0..19u32).flat_map(|k| [1, 2, 5].map(|m| m * 10u64.pow(k)))
}

/// The plot: `HEIGHT` rows of `WIDTH` columns, an axis, and a legend. In each column a
/// curve is at the share of its trials done by the column's right edge; a rise fills the
/// rows from where it was, so a steep rise shows as a vertical stroke, and a curve stops
/// where it reaches 100%. Where curves meet, the later range's letter is drawn.
pub fn cdf(series: &[Series<'_>]) -> String {
    let axis = Axis::around(series);
    // Column-major: a curve is drawn a column at a time.
    let mut columns = vec![[' '; HEIGHT]; WIDTH];
    for (i, s) in series.iter().enumerate() {
        let mark = letter(i);
        let n = s.times_us.len();
        // The curve's height before column 0: no trial is done that soon.
        let mut below = 0usize;
        for (c, column) in columns.iter_mut().enumerate() {
            if n == 0 || below == HEIGHT {
                break;
            }
            let edge = axis.edge(c);
            let done = s.times_us.partition_point(|&t| t as f64 <= edge);
            // Rows (from the bottom, 1-based) reached: ceil(done / n * HEIGHT).
            let rows = (done * HEIGHT).div_ceil(n);
            // A rise fills the rows from where the curve was; a flat stretch is one mark.
            let from = if rows > below { below + 1 } else { rows };
            for row in from.max(1)..=rows {
                column[HEIGHT - row] = mark;
            }
            below = rows;
        }
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "trials with a new leader (%), by time since the leader was killed (ms, log scale)"
    );
    for r in 0..HEIGHT {
        let percent = (HEIGHT - r) * 100 / HEIGHT;
        let row: String = columns.iter().map(|column| column[r]).collect();
        let _ = writeln!(out, "{percent:>4} |{}", row.trim_end());
    }
    let _ = writeln!(out, "     +{}", "-".repeat(WIDTH));
    let _ = writeln!(out, "{} ms", axis_labels(&axis).trim_end());
    let legend: Vec<String> = series
        .iter()
        .enumerate()
        .map(|(i, s)| format!("{} {}", letter(i), s.label))
        .collect();
    let _ = writeln!(out, "      {}", legend.join("   "));
    out
}

/// The round numbers of the axis, in milliseconds, each centred under its place (the `+`
/// is the axis's start), skipping any that would touch the one before.
fn axis_labels(axis: &Axis) -> String {
    let mut line = vec![' '; WIDTH + 12];
    let mut free_from = 0;
    let values = round_numbers().filter(|&v| v as f64 >= axis.lo && v as f64 <= axis.hi);
    for v in values {
        let label = ms_label(v);
        let centre = 5 + axis.position(v as f64);
        let start = centre.saturating_sub((label.len() - 1) / 2);
        if start < free_from || start + label.len() > line.len() {
            continue;
        }
        for (k, ch) in label.chars().enumerate() {
            line[start + k] = ch;
        }
        free_from = start + label.len() + 1;
    }
    line.iter().collect()
}

/// Microseconds as milliseconds, without trailing zeros: 500 -> 0.5, 20000 -> 20.
fn ms_label(us: u64) -> String {
    if us.is_multiple_of(1000) {
        (us / 1000).to_string()
    } else {
        let text = format!("{:.3}", us as f64 / 1000.0);
        text.trim_end_matches('0').to_string()
    }
}

/// The mark of the `i`th curve: a, b, c, ...
fn letter(i: usize) -> char {
    let i = u8::try_from(i % 26).unwrap_or(0);
    char::from(b'a' + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn axis_of(times_us: &[u64]) -> Axis {
        Axis::around(&[Series {
            label: String::new(),
            times_us,
        }])
    }

    #[test]
    fn the_axis_runs_between_round_numbers_around_every_time() {
        let a = axis_of(&[10_600, 63_200]);
        assert_eq!((a.lo, a.hi), (10_000.0, 100_000.0));
        let a = axis_of(&[99_300, 666_100]);
        assert_eq!((a.lo, a.hi), (50_000.0, 1_000_000.0));
        // One time on a round number still gets an axis with some length.
        let a = axis_of(&[20_000]);
        assert_eq!((a.lo, a.hi), (20_000.0, 50_000.0));
        assert_eq!(ms_label(500), "0.5");
        assert_eq!(ms_label(20_000), "20");
    }

    #[test]
    fn two_ranges_drawn_as_steps_with_a_legend() {
        // a: ten trials at 10-19 ms; b: five at 50 ms, five at 100 ms.
        let a: Vec<u64> = (10..20).map(|ms| ms * 1000).collect();
        let b: Vec<u64> = [50, 50, 50, 50, 50, 100, 100, 100, 100, 100]
            .iter()
            .map(|ms| ms * 1000)
            .collect();
        let plot = cdf(&[
            Series {
                label: "10-20 ms".into(),
                times_us: &a,
            },
            Series {
                label: "50-100 ms".into(),
                times_us: &b,
            },
        ]);
        let expected = "\
trials with a new leader (%), by time since the leader was killed (ms, log scale)
 100 |                a                                          b
  90 |               a                                           b
  80 |             aa                                            b
  70 |            a                                              b
  60 |          aa                                               b
  50 |        aa                               bbbbbbbbbbbbbbbbbb
  40 |      aa                                 b
  30 |    aa                                   b
  20 |  aa                                     b
  10 |aa                                       b
     +------------------------------------------------------------
     10                20                      50               100 ms
      a 10-20 ms   b 50-100 ms
";
        assert_eq!(plot, expected, "\n{plot}");
    }
}
