//! Statistics over repetitions: mean, sample standard deviation, a 95%
//! confidence interval of the mean (Student's t; a seeded percentile
//! bootstrap for percentile metrics, whose spread over runs is not
//! normal), and two-sample tests for comparisons (Welch's t-test,
//! Mann–Whitney U with the normal approximation and tie correction).
//!
//! Pure functions on slices of f64; every random choice (the bootstrap's)
//! comes from a fixed seed, so a report repeats exactly. Must not: read
//! files or know metric names.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

/// How a confidence interval was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CiMethod {
    /// mean ± t(0.975, n-1) · sd/√n.
    T,
    /// The 2.5th and 97.5th percentiles of the means of resamples.
    Bootstrap,
}

impl CiMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            CiMethod::T => "t",
            CiMethod::Bootstrap => "bootstrap",
        }
    }
}

/// Resamples the bootstrap draws.
pub const BOOTSTRAP_RESAMPLES: usize = 2000;
const BOOTSTRAP_SEED: u64 = 0x5eed_b007;

/// Mean, spread and 95% CI of one group of values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Describe {
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation (n-1); `None` below 2 values.
    pub sd: Option<f64>,
    /// 95% confidence interval of the mean; `None` below 2 values.
    pub ci95: Option<(f64, f64)>,
    pub method: CiMethod,
}

pub fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.iter().sum::<f64>() / v.len() as f64
}

/// Sample variance (denominator n-1); `None` below 2 values.
pub fn variance(v: &[f64]) -> Option<f64> {
    if v.len() < 2 {
        return None;
    }
    let m = mean(v);
    Some(v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64)
}

pub fn sd(v: &[f64]) -> Option<f64> {
    variance(v).map(f64::sqrt)
}

/// The two-sided 95% quantile of Student's t with `df` degrees of freedom.
pub fn t_975(df: f64) -> f64 {
    match StudentsT::new(0.0, 1.0, df) {
        Ok(t) => t.inverse_cdf(0.975),
        Err(_) => f64::NAN,
    }
}

/// mean ± t·sd/√n.
pub fn t_interval(v: &[f64]) -> Option<(f64, f64)> {
    let s = sd(v)?;
    let m = mean(v);
    let half = t_975((v.len() - 1) as f64) * s / (v.len() as f64).sqrt();
    Some((m - half, m + half))
}

/// A percentile bootstrap interval of the mean (seeded, so it repeats).
pub fn bootstrap_interval(v: &[f64]) -> Option<(f64, f64)> {
    if v.len() < 2 {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(BOOTSTRAP_SEED);
    let mut means: Vec<f64> = (0..BOOTSTRAP_RESAMPLES)
        .map(|_| {
            let s: f64 = (0..v.len()).map(|_| v[rng.random_range(0..v.len())]).sum();
            s / v.len() as f64
        })
        .collect();
    means.sort_by(f64::total_cmp);
    Some((
        quantile_sorted(&means, 0.025),
        quantile_sorted(&means, 0.975),
    ))
}

/// Linear interpolation between order statistics (R's type 7).
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let h = (sorted.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    let hi = h.ceil() as usize;
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// Describe a group; `method` picks the interval.
pub fn describe(v: &[f64], method: CiMethod) -> Describe {
    Describe {
        n: v.len(),
        mean: mean(v),
        sd: sd(v),
        ci95: match method {
            CiMethod::T => t_interval(v),
            CiMethod::Bootstrap => bootstrap_interval(v),
        },
        method,
    }
}

/// Welch's two-sided t-test: the p-value that the means are equal.
/// `None` when either side has fewer than 2 values; 1 when both are
/// constant and equal, 0 when both are constant and differ.
pub fn welch_p(a: &[f64], b: &[f64]) -> Option<f64> {
    let (va, vb) = (variance(a)?, variance(b)?);
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let diff = mean(a) - mean(b);
    let se2 = va / na + vb / nb;
    if se2 == 0.0 {
        return Some(if diff == 0.0 { 1.0 } else { 0.0 });
    }
    let t = diff / se2.sqrt();
    let df = se2.powi(2) / ((va / na).powi(2) / (na - 1.0) + (vb / nb).powi(2) / (nb - 1.0));
    let dist = StudentsT::new(0.0, 1.0, df).ok()?;
    Some((2.0 * (1.0 - dist.cdf(t.abs()))).clamp(0.0, 1.0))
}

/// Mann–Whitney U, two-sided, normal approximation with tie correction
/// and continuity correction (R's `wilcox.test(exact = FALSE)`).
/// `None` when a side is empty; 1 when every value is tied.
pub fn mann_whitney_p(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let mut all: Vec<(f64, bool)> = a
        .iter()
        .map(|&x| (x, true))
        .chain(b.iter().map(|&x| (x, false)))
        .collect();
    all.sort_by(|x, y| x.0.total_cmp(&y.0));
    let n = all.len();
    let mut rank_sum_a = 0.0;
    let mut tie_term = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        let t = (j - i + 1) as f64;
        tie_term += t.powi(3) - t;
        rank_sum_a += all[i..=j].iter().filter(|x| x.1).count() as f64 * rank;
        i = j + 1;
    }
    let u = rank_sum_a - na * (na + 1.0) / 2.0;
    let mu = na * nb / 2.0;
    let nn = na + nb;
    let sigma2 = na * nb / 12.0 * ((nn + 1.0) - tie_term / (nn * (nn - 1.0)));
    if sigma2 <= 0.0 {
        return Some(1.0);
    }
    let z = (u - mu).abs() - 0.5;
    let z = z.max(0.0) / sigma2.sqrt();
    let normal = Normal::new(0.0, 1.0).ok()?;
    Some((2.0 * (1.0 - normal.cdf(z))).clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn mean_sd_and_t_interval_match_known_values() {
        // x = (2, 4, 4, 4, 5, 5, 7, 9): mean 5, sd sqrt(32/7) = 2.138090;
        // qt(0.975, 7) = 2.364624, so the half width is
        // 2.364624 * 2.138090 / sqrt(8) = 1.787488.
        let x = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        assert_eq!(mean(&x), 5.0);
        assert!(close(sd(&x).unwrap(), 2.138090, 1e-6));
        let (lo, hi) = t_interval(&x).unwrap();
        assert!(close(lo, 3.212512, 1e-5), "{lo}");
        assert!(close(hi, 6.787488, 1e-5), "{hi}");
        assert!(close(t_975(7.0), 2.364624, 1e-5));
        // qt(0.975, 1) = 12.7062, qt(0.975, 4) = 2.776445, qt(0.975, 30) = 2.042272
        assert!(close(t_975(1.0), 12.706205, 1e-5));
        assert!(close(t_975(4.0), 2.776445, 1e-5));
        assert!(close(t_975(30.0), 2.042272, 1e-5));
        assert_eq!(t_interval(&[1.0]), None);
        assert_eq!(sd(&[3.0]), None);
    }

    #[test]
    fn welch_matches_r() {
        // R: t.test(c(1,2,3,4,5), c(2,4,6,8,10)): t = -1.8974,
        // df = 5.8824, p-value = 0.1075
        let p = welch_p(&[1.0, 2.0, 3.0, 4.0, 5.0], &[2.0, 4.0, 6.0, 8.0, 10.0]).unwrap();
        assert!(close(p, 0.1075, 5e-4), "{p}");
        // By hand: means 19.84 and 23.34, variances 0.978 and 0.473,
        // t = -6.50 on 7.14 degrees of freedom: p about 3e-4.
        let p = welch_p(
            &[19.1, 20.3, 18.7, 21.2, 19.9],
            &[23.4, 22.8, 24.1, 23.9, 22.5],
        )
        .unwrap();
        assert!(p < 0.001 && p > 0.0001, "{p}");
        assert_eq!(welch_p(&[1.0, 1.0], &[1.0, 1.0]), Some(1.0));
        assert_eq!(welch_p(&[1.0, 1.0], &[2.0, 2.0]), Some(0.0));
        assert_eq!(welch_p(&[1.0], &[2.0, 3.0]), None);
    }

    #[test]
    fn mann_whitney_matches_r() {
        // R: wilcox.test(c(1,2,3,4,5), c(6,7,8,9,10), exact = FALSE):
        // W = 0, p-value = 0.01219
        let p = mann_whitney_p(&[1.0, 2.0, 3.0, 4.0, 5.0], &[6.0, 7.0, 8.0, 9.0, 10.0]).unwrap();
        assert!(close(p, 0.01219, 1e-4), "{p}");
        // With ties, by hand: ranks 1, 3, 3, 5.5 for the first sample, so
        // U = 2.5; mu = 8, sigma^2 = 16/12 * (9 - 30/56) = 11.2857,
        // z = (5.5 - 0.5) / 3.3594 = 1.4884, p = 2 * (1 - Phi(z)) = 0.1366.
        let p = mann_whitney_p(&[1.0, 2.0, 2.0, 3.0], &[2.0, 3.0, 4.0, 5.0]).unwrap();
        assert!(close(p, 0.1366, 1e-3), "{p}");
        assert_eq!(mann_whitney_p(&[1.0, 1.0], &[1.0, 1.0]), Some(1.0));
        assert_eq!(mann_whitney_p(&[], &[1.0]), None);
    }

    #[test]
    fn the_bootstrap_interval_repeats_and_holds_the_mean() {
        let x = [10.0, 12.0, 11.0, 30.0, 9.0];
        let a = bootstrap_interval(&x).unwrap();
        assert_eq!(a, bootstrap_interval(&x).unwrap(), "seeded: repeats");
        let m = mean(&x);
        assert!(a.0 <= m && m <= a.1, "{a:?} around {m}");
        assert!(a.0 >= 9.0 && a.1 <= 30.0, "within the data's range: {a:?}");
        assert_eq!(bootstrap_interval(&[1.0, 1.0, 1.0]), Some((1.0, 1.0)));
        assert_eq!(quantile_sorted(&[1.0, 2.0, 3.0, 4.0], 0.5), 2.5);
    }
}
