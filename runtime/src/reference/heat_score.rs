//! Reference HEAT score: heatmap `max_c |h|` and score `mean_{H,W}` of it.

/// `h` is `[n, c, hh, ww]`. Returns `(scores [n], heatmaps [n, hh, ww])`.
pub fn heat_score(h: &[f32], n: usize, c: usize, hh: usize, ww: usize) -> (Vec<f32>, Vec<f32>) {
    let hw = hh * ww;
    let mut heat = vec![0f32; n * hw];
    let mut scores = vec![0f32; n];
    for b in 0..n {
        let mut sum = 0f64;
        for p in 0..hw {
            let mut m = 0f32;
            for ch in 0..c {
                m = m.max(h[(b * c + ch) * hw + p].abs());
            }
            heat[b * hw + p] = m;
            sum += m as f64;
        }
        scores[b] = (sum / hw as f64) as f32;
    }
    (scores, heat)
}
