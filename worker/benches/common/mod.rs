//! Timing shared by the microbenchmarks.

use std::time::Instant;

/// Fastest and median of `reps` timings of each of `fs`, in microseconds, after two
/// warm-up calls; the functions take turns, so that a change of load on a shared machine
/// hits them all (and the fastest run is the one least disturbed by others).
pub fn best_us<const N: usize>(reps: usize, mut fs: [&mut dyn FnMut(); N]) -> [(f64, f64); N] {
    for f in fs.iter_mut() {
        f();
        f();
    }
    let mut t = [(); N].map(|_| Vec::with_capacity(reps));
    for _ in 0..reps {
        for (f, t) in fs.iter_mut().zip(t.iter_mut()) {
            let s = Instant::now();
            f();
            t.push(s.elapsed().as_secs_f64() * 1e6);
        }
    }
    t.map(|mut t| {
        t.sort_by(f64::total_cmp);
        (t[0], t[reps / 2])
    })
}
