//! The cumulative distribution of every range's times without a leader, drawn in text as
//! in the paper's Figure 16: time since the kill across, the percent of trials that had a
//! new leader by then up, one letter per range. Pure: numbers in, lines out.

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

/// The plot: `HEIGHT` rows of `WIDTH` columns, an axis, and a legend. Column `c` stands for
/// times up to `(c + 1) / WIDTH` of the largest time (rounded up to a round number); in
/// each column a curve is at the share of its trials done by then, and a rise fills the
/// rows from where it was, so a steep rise shows as a vertical stroke. Where curves meet,
/// the later range's letter is drawn.
pub fn cdf(series: &[Series<'_>]) -> String {
    let largest = series
        .iter()
        .filter_map(|s| s.times_us.last().copied())
        .max()
        .unwrap_or(0);
    let x_max_ms = round_up_ms(largest);
    let x_max_us = x_max_ms * 1000;
    // Column-major: a curve is drawn a column at a time.
    let mut columns = vec![[' '; HEIGHT]; WIDTH];
    for (i, s) in series.iter().enumerate() {
        let mark = letter(i);
        let n = s.times_us.len();
        if n == 0 {
            continue;
        }
        // The curve's height before column 0: no trial is done at time 0.
        let mut below = 0usize;
        for (c, column) in columns.iter_mut().enumerate() {
            let until_us = x_max_us * (c as u64 + 1) / WIDTH as u64;
            let done = s.times_us.partition_point(|&t| t <= until_us);
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
        "trials with a new leader (%), by time since the leader was killed (ms)"
    );
    for r in 0..HEIGHT {
        let percent = (HEIGHT - r) * 100 / HEIGHT;
        let row: String = columns.iter().map(|column| column[r]).collect();
        let _ = writeln!(out, "{percent:>4} |{}", row.trim_end());
    }
    let _ = writeln!(out, "     +{}", "-".repeat(WIDTH));
    // Ticks at 0, 1/4, 1/2, 3/4 and the end of the axis.
    let mut axis = vec![' '; WIDTH + 8];
    for q in 0..=4u64 {
        let label = (x_max_ms * q / 4).to_string();
        let col = (WIDTH as u64 * q / 4) as usize;
        let start = (5 + col).saturating_sub(label.len() / 2);
        for (k, ch) in label.chars().enumerate() {
            if let Some(cell) = axis.get_mut(start + k) {
                *cell = ch;
            }
        }
    }
    let _ = writeln!(out, "{} ms", axis.iter().collect::<String>().trim_end());
    let legend: Vec<String> = series
        .iter()
        .enumerate()
        .map(|(i, s)| format!("{} {}", letter(i), s.label))
        .collect();
    let _ = writeln!(out, "      {}", legend.join("   "));
    out
}

/// The mark of the `i`th curve: a, b, c, ...
fn letter(i: usize) -> char {
    let i = u8::try_from(i % 26).unwrap_or(0);
    char::from(b'a' + i)
}

/// The end of the time axis: `us` in milliseconds, rounded up to 1, 2, 3, 4, 5, 6 or 8
/// times a power of ten (at least 1 ms), so that quarters of it are round enough.
fn round_up_ms(us: u64) -> u64 {
    let ms = us.div_ceil(1000).max(1);
    let mut step = 1;
    loop {
        for m in [1, 2, 3, 4, 5, 6, 8] {
            if m * step >= ms {
                return m * step;
            }
        }
        step *= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_axis_ends_at_a_round_number() {
        assert_eq!(round_up_ms(0), 1);
        assert_eq!(round_up_ms(35_000), 40);
        assert_eq!(round_up_ms(152_000), 200);
        assert_eq!(round_up_ms(537_000), 600);
        assert_eq!(round_up_ms(800_001), 1000);
    }

    #[test]
    fn two_ranges_drawn_as_steps_with_a_legend() {
        // a: all ten trials at 10-19 ms; b: five at 50 ms, five at 100 ms.
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
trials with a new leader (%), by time since the leader was killed (ms)
 100 |           aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab
  90 |          a                                                b
  80 |          a                                                b
  70 |         a                                                 b
  60 |        a                                                  b
  50 |        a                    bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb
  40 |       a                     b
  30 |       a                     b
  20 |      a                      b
  10 |     a                       b
     +------------------------------------------------------------
     0             25             50             75             100 ms
      a 10-20 ms   b 50-100 ms
";
        assert_eq!(plot, expected, "\n{plot}");
    }
}
