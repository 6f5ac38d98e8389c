//! Time series maths on plain numbers: fixed-width time bins that grow on
//! demand, and the reduce step that merges bins so a series has at most a
//! few hundred points (as Gumby's reduce step did before plotting).
//!
//! No I/O. Bin `k` covers `[k * width, (k + 1) * width)` seconds.

/// A sum per time bin, for counters turned into increments.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bins {
    start: i64,
    values: Vec<f64>,
}

impl Bins {
    /// Adds `v` to bin `k`.
    pub fn add(&mut self, k: i64, v: f64) {
        if self.values.is_empty() {
            self.start = k;
        } else if k < self.start {
            let grow = (self.start - k) as usize;
            self.values.splice(0..0, std::iter::repeat_n(0.0, grow));
            self.start = k;
        }
        let i = (k - self.start) as usize;
        if i >= self.values.len() {
            self.values.resize(i + 1, 0.0);
        }
        self.values[i] += v;
    }

    /// The value of bin `k` (0 outside the filled range).
    pub fn get(&self, k: i64) -> f64 {
        if k < self.start {
            return 0.0;
        }
        self.values
            .get((k - self.start) as usize)
            .copied()
            .unwrap_or(0.0)
    }

    /// The first and last bin holding anything, if any.
    pub fn range(&self) -> Option<(i64, i64)> {
        if self.values.is_empty() {
            None
        } else {
            Some((self.start, self.start + self.values.len() as i64 - 1))
        }
    }

    /// Adds another set of bins into this one (its range too, even where
    /// it holds only zeros).
    pub fn merge(&mut self, other: &Bins) {
        if let Some((a, b)) = other.range() {
            self.add(a, 0.0);
            self.add(b, 0.0);
            for (i, &v) in other.values.iter().enumerate() {
                if v != 0.0 {
                    self.add(a + i as i64, v);
                }
            }
        }
    }

    /// The sum over all bins.
    pub fn total(&self) -> f64 {
        self.values.iter().sum()
    }
}

/// Minimum, maximum, sum and count per bin: a gauge seen across instances.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GaugeBins {
    start: i64,
    cells: Vec<Gauge>,
}

/// One bin of [`GaugeBins`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gauge {
    pub min: f64,
    pub max: f64,
    pub sum: f64,
    pub count: u64,
}

impl Default for Gauge {
    fn default() -> Self {
        Gauge {
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            sum: 0.0,
            count: 0,
        }
    }
}

impl Gauge {
    fn merge(&mut self, o: &Gauge) {
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        self.sum += o.sum;
        self.count += o.count;
    }
}

impl GaugeBins {
    /// Records one observation `v` in bin `k`.
    pub fn observe(&mut self, k: i64, v: f64) {
        let one = Gauge {
            min: v,
            max: v,
            sum: v,
            count: 1,
        };
        self.cell(k).merge(&one);
    }

    fn cell(&mut self, k: i64) -> &mut Gauge {
        if self.cells.is_empty() {
            self.start = k;
        } else if k < self.start {
            let grow = (self.start - k) as usize;
            self.cells
                .splice(0..0, std::iter::repeat_n(Gauge::default(), grow));
            self.start = k;
        }
        let i = (k - self.start) as usize;
        if i >= self.cells.len() {
            self.cells.resize(i + 1, Gauge::default());
        }
        &mut self.cells[i]
    }

    pub fn range(&self) -> Option<(i64, i64)> {
        if self.cells.is_empty() {
            None
        } else {
            Some((self.start, self.start + self.cells.len() as i64 - 1))
        }
    }

    pub fn get(&self, k: i64) -> Gauge {
        if k < self.start {
            return Gauge::default();
        }
        self.cells
            .get((k - self.start) as usize)
            .copied()
            .unwrap_or_default()
    }

    pub fn merge(&mut self, other: &GaugeBins) {
        if let Some((a, b)) = other.range() {
            for k in a..=b {
                let g = other.get(k);
                if g.count > 0 {
                    self.cell(k).merge(&g);
                }
            }
        }
    }
}

/// How bins of width `width` are merged into at most `max_points` points
/// covering `[first, last]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Grid {
    /// The first base bin.
    pub first: i64,
    /// How many base bins.
    pub bins: usize,
    /// Base bins per point.
    pub factor: usize,
    /// Width of a base bin, seconds.
    pub width: f64,
}

impl Grid {
    /// A grid over base bins `first..=last`.
    pub fn new(first: i64, last: i64, width: f64, max_points: usize) -> Grid {
        let bins = (last - first + 1).max(1) as usize;
        let factor = bins.div_ceil(max_points.max(1));
        Grid {
            first,
            bins,
            factor,
            width,
        }
    }

    /// Number of points.
    pub fn points(&self) -> usize {
        self.bins.div_ceil(self.factor)
    }

    /// Width of one point, seconds.
    pub fn step(&self) -> f64 {
        self.width * self.factor as f64
    }

    /// The centre time of point `i`.
    pub fn time(&self, i: usize) -> f64 {
        let first_bin = self.first + (i * self.factor) as i64;
        let n = self.factor.min(self.bins - i * self.factor);
        (first_bin as f64 + n as f64 / 2.0) * self.width
    }

    /// Centre times of every point.
    pub fn times(&self) -> Vec<f64> {
        (0..self.points()).map(|i| self.time(i)).collect()
    }

    /// The base bins of point `i`.
    pub fn span(&self, i: usize) -> std::ops::Range<i64> {
        let a = self.first + (i * self.factor) as i64;
        let n = self.factor.min(self.bins - i * self.factor) as i64;
        a..a + n
    }

    /// The point holding time `t`, clamped into the grid.
    pub fn point_of(&self, t: f64) -> usize {
        let k = bin_of(t, self.width);
        let off = (k - self.first).clamp(0, self.bins as i64 - 1) as usize;
        off / self.factor
    }

    /// Per-second rates: each point's sum divided by the time it covers.
    pub fn rates(&self, bins: &Bins) -> Vec<f64> {
        (0..self.points())
            .map(|i| {
                let span = self.span(i);
                let secs = (span.end - span.start) as f64 * self.width;
                span.map(|k| bins.get(k)).sum::<f64>() / secs
            })
            .collect()
    }

    /// Per-point min, mean and max of a gauge; `None` where nothing was seen.
    pub fn gauge(&self, bins: &GaugeBins) -> Vec<Option<(f64, f64, f64)>> {
        (0..self.points())
            .map(|i| {
                let mut g = Gauge::default();
                for k in self.span(i) {
                    g.merge(&bins.get(k));
                }
                (g.count > 0).then(|| (g.min, g.sum / g.count as f64, g.max))
            })
            .collect()
    }
}

/// The base bin an increment observed at time `t` belongs to: the bin that
/// ends at or after `t`, so a sample at `t = 3.0` (covering the second
/// before it) lands in `[2, 3)`.
pub fn bin_of(t: f64, width: f64) -> i64 {
    ((t / width).ceil() as i64) - 1
}

/// Rounds to 4 significant decimals for JSON output, keeping integers exact.
pub fn tidy(v: f64) -> f64 {
    if v.fract() == 0.0 || !v.is_finite() {
        return v;
    }
    (v * 1e4).round() / 1e4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_grow_both_ways() {
        let mut b = Bins::default();
        b.add(5, 1.0);
        b.add(2, 2.0);
        b.add(7, 3.0);
        b.add(5, 1.0);
        assert_eq!(b.range(), Some((2, 7)));
        assert_eq!(
            (b.get(2), b.get(5), b.get(7), b.get(100), b.get(-3)),
            (2.0, 2.0, 3.0, 0.0, 0.0)
        );
        assert_eq!(b.total(), 7.0);
    }

    #[test]
    fn merge_adds_and_keeps_ranges() {
        let mut a = Bins::default();
        a.add(0, 1.0);
        let mut b = Bins::default();
        b.add(-2, 0.0);
        b.add(3, 4.0);
        a.merge(&b);
        assert_eq!(a.range(), Some((-2, 3)));
        assert_eq!(a.total(), 5.0);
    }

    #[test]
    fn grid_reduces_to_at_most_max_points_and_keeps_totals() {
        let mut b = Bins::default();
        for k in -10..1000 {
            b.add(k, 2.0);
        }
        let g = Grid::new(-10, 999, 1.0, 300);
        assert!(g.points() <= 300, "{}", g.points());
        assert_eq!(g.factor, 4);
        // Every second carried 2 messages: the rate is 2/s everywhere,
        // including the short last point.
        assert!(g.rates(&b).iter().all(|&r| (r - 2.0).abs() < 1e-9));
        let covered: i64 = (0..g.points())
            .map(|i| g.span(i).end - g.span(i).start)
            .sum();
        assert_eq!(covered, 1010);
        assert_eq!(g.time(0), -8.0);
        assert_eq!(g.point_of(-100.0), 0);
        assert_eq!(g.point_of(1e9), g.points() - 1);
    }

    #[test]
    fn bin_of_assigns_a_sample_to_the_second_before_it() {
        assert_eq!(bin_of(3.0, 1.0), 2);
        assert_eq!(bin_of(3.2, 1.0), 3);
        assert_eq!(bin_of(-0.5, 1.0), -1);
        assert_eq!(bin_of(0.0, 1.0), -1);
    }

    #[test]
    fn gauges_track_min_mean_max() {
        let mut g = GaugeBins::default();
        g.observe(0, 1.0);
        g.observe(0, 3.0);
        g.observe(1, 10.0);
        let grid = Grid::new(0, 2, 1.0, 10);
        assert_eq!(
            grid.gauge(&g),
            vec![Some((1.0, 2.0, 3.0)), Some((10.0, 10.0, 10.0)), None]
        );
        let coarse = Grid::new(0, 2, 1.0, 1);
        assert_eq!(coarse.gauge(&g), vec![Some((1.0, 14.0 / 3.0, 10.0))]);
    }
}
