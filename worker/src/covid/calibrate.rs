//! Temperature scaling of the covid classifier: one scalar T divides the logit margin
//! (z₁ − z₀) before the softmax, fitted on the validation set by minimising its negative
//! log-likelihood. T > 1 softens an overconfident model, T < 1 sharpens a timid one; the
//! predicted class never changes, so accuracy and the confusion matrix stay as they are,
//! while the probabilities the world map, `forecast.json` and `predict` show become
//! calibrated. The expected calibration error (ECE) before and after says how much.

use serde::Serialize;

/// Bins of the expected calibration error: the usual 10 equal-width confidence bins.
pub const ECE_BINS: usize = 10;

/// Search range of log T: T from e⁻⁵ ≈ 0.007 to e⁵ ≈ 148, far wider than any fit seen.
const LOG_T_RANGE: (f64, f64) = (-5.0, 5.0);

/// Golden-section steps: each shrinks the interval by 0.618, so 80 reach ~1e-16 of 10.
const STEPS: usize = 80;

/// The fitted temperature and what it changed on the validation set.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Calibration {
    /// The temperature T (1 = unchanged).
    pub temperature: f64,
    /// Validation NLL (mean, nats) at T = 1.
    pub nll_before: f64,
    /// Validation NLL at the fitted T.
    pub nll_after: f64,
    /// Validation ECE at T = 1.
    pub ece_before: f64,
    /// Validation ECE at the fitted T.
    pub ece_after: f64,
}

/// P(increase) of a logit margin m = z₁ − z₀ at temperature `t`: softmax(z / t)₁.
pub fn probability(margin: f64, t: f64) -> f64 {
    1.0 / (1.0 + (-margin / t).exp())
}

/// Mean negative log-likelihood of labels `y` under margins `m` at temperature `t`,
/// computed stably as softplus(∓m / t).
pub fn nll(m: &[f32], y: &[u8], t: f64) -> f64 {
    let softplus = |x: f64| x.max(0.0) + (-x.abs()).exp().ln_1p();
    let sum: f64 = m
        .iter()
        .zip(y)
        .map(|(&m, &y)| {
            let s = f64::from(m) / t;
            if y == 1 { softplus(-s) } else { softplus(s) }
        })
        .sum();
    sum / m.len().max(1) as f64
}

/// Expected calibration error: over [`ECE_BINS`] bins of confidence (the probability of
/// the predicted class), the gap |accuracy − mean confidence| weighted by the bin's share.
pub fn ece(m: &[f32], y: &[u8], t: f64) -> f64 {
    let mut bins = [(0usize, 0.0f64, 0.0f64); ECE_BINS];
    for (&m, &y) in m.iter().zip(y) {
        let p = probability(f64::from(m), t);
        let predicted = u8::from(p > 0.5);
        let conf = p.max(1.0 - p);
        // Confidence is in [0.5, 1]; bins cover [0, 1] as usual, so the lower five stay empty.
        let b = ((conf * ECE_BINS as f64) as usize).min(ECE_BINS - 1);
        bins[b].0 += 1;
        bins[b].1 += conf;
        bins[b].2 += f64::from(u8::from(predicted == y));
    }
    let n = m.len().max(1) as f64;
    bins.iter()
        .filter(|b| b.0 > 0)
        // (k / n) · |right / k − conf / k| = |right − conf| / n
        .map(|&(_, conf, right)| (right - conf).abs() / n)
        .sum()
}

/// Fits T on validation margins `m` and labels `y` (golden-section search on log T; the
/// NLL is convex in 1/T, so unimodal in log T). `None` without validation rows.
pub fn fit(m: &[f32], y: &[u8]) -> Option<Calibration> {
    if m.is_empty() {
        return None;
    }
    let f = |log_t: f64| nll(m, y, log_t.exp());
    let g = (5f64.sqrt() - 1.0) / 2.0;
    let (mut a, mut b) = LOG_T_RANGE;
    let (mut c, mut d) = (b - g * (b - a), a + g * (b - a));
    let (mut fc, mut fd) = (f(c), f(d));
    for _ in 0..STEPS {
        if fc < fd {
            (b, d, fd) = (d, c, fc);
            c = b - g * (b - a);
            fc = f(c);
        } else {
            (a, c, fc) = (c, d, fd);
            d = a + g * (b - a);
            fd = f(d);
        }
    }
    let mut t = ((a + b) / 2.0).exp();
    // A fit no better than T = 1 (all margins zero, say) keeps the model as trained.
    if nll(m, y, t) >= nll(m, y, 1.0) {
        t = 1.0;
    }
    Some(Calibration {
        temperature: t,
        nll_before: nll(m, y, 1.0),
        nll_after: nll(m, y, t),
        ece_before: ece(m, y, 1.0),
        ece_after: ece(m, y, t),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Margins of an overconfident model: right 70 % of the time with |m| = 6 (p ≈ 0.998).
    fn overconfident() -> (Vec<f32>, Vec<u8>) {
        let (mut m, mut y) = (Vec::new(), Vec::new());
        for i in 0..1000 {
            let sign = if i % 2 == 0 { 1.0 } else { -1.0 };
            let label = u8::from(sign > 0.0);
            m.push(6.0 * sign);
            y.push(if i % 10 < 7 { label } else { 1 - label });
        }
        (m, y)
    }

    #[test]
    fn the_fit_softens_an_overconfident_model_to_its_accuracy() {
        let (m, y) = overconfident();
        let c = fit(&m, &y).unwrap();
        // The NLL-optimal probability of a 70 %-right model is 0.7: 6 / T = ln(0.7 / 0.3).
        let expected = 6.0 / (0.7f64 / 0.3).ln();
        assert!((c.temperature - expected).abs() < 1e-6, "{c:?}");
        assert!(
            c.nll_after < c.nll_before && c.ece_after < c.ece_before,
            "{c:?}"
        );
        assert!(c.ece_after < 1e-6, "calibrated exactly: {c:?}");
        assert!((c.ece_before - (0.998 - 0.7)).abs() < 1e-2, "{c:?}");
    }

    #[test]
    fn accuracy_never_changes_and_nothing_to_fit_keeps_one() {
        let (m, y) = overconfident();
        let t = fit(&m, &y).unwrap().temperature;
        for &x in &m {
            assert_eq!(
                probability(f64::from(x), 1.0) > 0.5,
                probability(f64::from(x), t) > 0.5
            );
        }
        assert_eq!(fit(&[0.0; 4], &[0, 1, 0, 1]).unwrap().temperature, 1.0);
        assert!(fit(&[], &[]).is_none());
    }
}
