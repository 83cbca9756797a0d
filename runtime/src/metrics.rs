//! OOD evaluation metrics, in the convention of the HEAT paper (docs/HEAT.md, "Metrics"):
//! the **ID images are the positive class**, and a HEAT score is *higher for more OOD* images, so
//! "predicted positive (ID) at threshold `t`" means `score ≤ t`, and `score > t` ⇒ OOD, the rule
//! [`crate::meta::Threshold`] uses.
//!
//! With `id` the scores of the in-distribution images and `ood` those of one OOD set:
//! * [`auroc`] — area under the ROC curve = P(s_ood > s_id) + ½ P(s_ood = s_id) over all
//!   (ID, OOD) pairs (the Mann–Whitney U statistic; ties count one half). It is the same number
//!   whichever class is called positive; sklearn: `roc_auc_score(is_ood, score)`.
//! * [`aupr_in`] — average precision with ID positive, ranked by `−score`;
//!   sklearn: `average_precision_score(is_id, -score)`.
//! * [`aupr_out`] — average precision with OOD positive, ranked by `score`;
//!   sklearn: `average_precision_score(is_ood, score)`.
//!   Average precision is sklearn's: AP = Σₙ (Rₙ − Rₙ₋₁)·Pₙ over the distinct decision values in
//!   descending order (tied values form one step), R₀ = 0 — no interpolation.
//! * [`tpr_threshold`] — the smallest ID score `t` with `#{id ≤ t} / n_id ≥ tpr`.
//! * [`fpr_at_tpr`] (FPR95 at `tpr = 0.95`) — `#{ood ≤ t} / n_ood` with `t = tpr_threshold(id,
//!   tpr)`: the fraction of OOD images accepted as ID when the threshold keeps at least `tpr` of the
//!   ID images. Equals sklearn's `roc_curve(is_id, -score)` FPR at the first point whose TPR
//!   ≥ `tpr`.
//!
//! All arithmetic is f64; scores must be finite and both sets non-empty.

use crate::error::{HoodError, Result};

/// The four numbers the paper reports for one (ID, OOD) pair; fractions in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct OodMetrics {
    pub auroc: f64,
    pub aupr_in: f64,
    pub aupr_out: f64,
    /// FPR at [`FPR_TPR`] TPR (ID positive).
    pub fpr95: f64,
}

/// The TPR of the paper's "FPR at 95 % TPR".
pub const FPR_TPR: f64 = 0.95;

fn check(what: &str, s: &[f32]) -> Result<()> {
    if s.is_empty() {
        return Err(HoodError::input(what, "no scores"));
    }
    if let Some(v) = s.iter().find(|v| !v.is_finite()) {
        return Err(HoodError::input(what, format!("score {v} is not finite")));
    }
    Ok(())
}

fn check_pair(id: &[f32], ood: &[f32]) -> Result<()> {
    check("ID scores", id)?;
    check("OOD scores", ood)
}

/// All four metrics of one (ID, OOD) pair.
pub fn evaluate(id: &[f32], ood: &[f32]) -> Result<OodMetrics> {
    Ok(OodMetrics {
        auroc: auroc(id, ood)?,
        aupr_in: aupr_in(id, ood)?,
        aupr_out: aupr_out(id, ood)?,
        fpr95: fpr_at_tpr(id, ood, FPR_TPR)?,
    })
}

/// Mean of each metric over several OOD sets (the paper's "average" row).
pub fn average(all: &[OodMetrics]) -> Option<OodMetrics> {
    if all.is_empty() {
        return None;
    }
    let n = all.len() as f64;
    let mean = |f: fn(&OodMetrics) -> f64| all.iter().map(f).sum::<f64>() / n;
    Some(OodMetrics {
        auroc: mean(|m| m.auroc),
        aupr_in: mean(|m| m.aupr_in),
        aupr_out: mean(|m| m.aupr_out),
        fpr95: mean(|m| m.fpr95),
    })
}

/// AUROC = (U_ood) / (n_id · n_ood), U from mid-ranks (ties get the average rank).
pub fn auroc(id: &[f32], ood: &[f32]) -> Result<f64> {
    check_pair(id, ood)?;
    let mut all: Vec<(f32, bool)> = id.iter().map(|&s| (s, false)).collect();
    all.extend(ood.iter().map(|&s| (s, true)));
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut rank_sum_ood = 0f64;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j < all.len() && all[j].0 == all[i].0 {
            j += 1;
        }
        // Ranks i+1 ..= j share their mean.
        let mid = (i + 1 + j) as f64 / 2.0;
        rank_sum_ood += mid * all[i..j].iter().filter(|p| p.1).count() as f64;
        i = j;
    }
    let (n_id, n_ood) = (id.len() as f64, ood.len() as f64);
    Ok((rank_sum_ood - n_ood * (n_ood + 1.0) / 2.0) / (n_id * n_ood))
}

/// sklearn's average precision of `pos` against `neg`, where a larger `value` ranks first.
fn average_precision(pos: &[f64], neg: &[f64]) -> f64 {
    let mut all: Vec<(f64, bool)> = pos.iter().map(|&v| (v, true)).collect();
    all.extend(neg.iter().map(|&v| (v, false)));
    all.sort_by(|a, b| b.0.total_cmp(&a.0));
    let p = pos.len() as f64;
    let (mut tp, mut fp, mut prev_recall, mut ap) = (0f64, 0f64, 0f64, 0f64);
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j < all.len() && all[j].0 == all[i].0 {
            if all[j].1 {
                tp += 1.0;
            } else {
                fp += 1.0;
            }
            j += 1;
        }
        let recall = tp / p;
        ap += (recall - prev_recall) * tp / (tp + fp);
        prev_recall = recall;
        i = j;
    }
    ap
}

/// Average precision with ID positive, ranked by `−score` (low score = confidently ID).
pub fn aupr_in(id: &[f32], ood: &[f32]) -> Result<f64> {
    check_pair(id, ood)?;
    let neg = |s: &[f32]| s.iter().map(|&v| -(v as f64)).collect::<Vec<_>>();
    Ok(average_precision(&neg(id), &neg(ood)))
}

/// Average precision with OOD positive, ranked by `score`.
pub fn aupr_out(id: &[f32], ood: &[f32]) -> Result<f64> {
    check_pair(id, ood)?;
    let f = |s: &[f32]| s.iter().map(|&v| v as f64).collect::<Vec<_>>();
    Ok(average_precision(&f(ood), &f(id)))
}

/// The smallest ID score `t` such that `#{id ≤ t} / n_id ≥ tpr`; `tpr` must be in (0, 1].
/// Used as a calibrated threshold (`score > t` ⇒ OOD) it flags at most `1 − tpr` of these images.
pub fn tpr_threshold(id: &[f32], tpr: f64) -> Result<f32> {
    check("ID scores", id)?;
    if !(tpr > 0.0 && tpr <= 1.0) {
        return Err(HoodError::input("tpr", format!("{tpr} is outside (0, 1]")));
    }
    let mut s = id.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len() as f64;
    // The same comparison as sklearn's `tps / tps[-1] >= tpr`: the first k with k/n ≥ tpr.
    let k = (1..=s.len())
        .find(|&k| k as f64 / n >= tpr)
        .unwrap_or(s.len());
    Ok(s[k - 1])
}

/// FPR (fraction of OOD scores ≤ the [`tpr_threshold`]) at ID true-positive rate `tpr`.
pub fn fpr_at_tpr(id: &[f32], ood: &[f32], tpr: f64) -> Result<f64> {
    check_pair(id, ood)?;
    let t = tpr_threshold(id, tpr)?;
    Ok(ood.iter().filter(|&&v| v <= t).count() as f64 / ood.len() as f64)
}

/// The ROC curve with ID positive, as `(fpr, tpr)` points from (0, 0) to (1, 1): one point per
/// distinct score `t` in ascending order, `tpr = #{id ≤ t}/n_id`, `fpr = #{ood ≤ t}/n_ood`.
/// The area under it is [`auroc`].
pub fn roc_curve(id: &[f32], ood: &[f32]) -> Result<Vec<(f64, f64)>> {
    check_pair(id, ood)?;
    let mut all: Vec<(f32, bool)> = id.iter().map(|&s| (s, true)).collect();
    all.extend(ood.iter().map(|&s| (s, false)));
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (n_id, n_ood) = (id.len() as f64, ood.len() as f64);
    let (mut tp, mut fp) = (0f64, 0f64);
    let mut pts = vec![(0.0, 0.0)];
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j < all.len() && all[j].0 == all[i].0 {
            if all[j].1 {
                tp += 1.0;
            } else {
                fp += 1.0;
            }
            j += 1;
        }
        pts.push((fp / n_ood, tp / n_id));
        i = j;
    }
    Ok(pts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_and_inverted_separation() {
        let (id, ood) = ([0.1, 0.2, 0.3], [0.5, 0.6]);
        let m = evaluate(&id, &ood).unwrap();
        assert_eq!(
            (m.auroc, m.aupr_in, m.aupr_out, m.fpr95),
            (1.0, 1.0, 1.0, 0.0)
        );
        let m = evaluate(&ood, &id).unwrap();
        assert_eq!(m.auroc, 0.0);
        assert_eq!(m.fpr95, 1.0);
    }

    #[test]
    fn hand_computed_with_ties() {
        // id = [1, 2, 3], ood = [2, 4]. Pairs (ood > id): 4 beats all 3; 2 beats 1, ties 2.
        // AUROC = (3 + 1 + 0.5) / 6 = 0.75.
        let (id, ood) = ([1.0, 2.0, 3.0], [2.0, 4.0]);
        assert_eq!(auroc(&id, &ood).unwrap(), 0.75);
        // AUPR-Out, OOD positive by score descending: 4 (tp1 fp0) → R=.5 P=1; 3 (tp1 fp1);
        // 2 tied (tp2 fp2) → R=1 P=.5; 1. AP = .5·1 + .5·.5 = 0.75.
        assert_eq!(aupr_out(&id, &ood).unwrap(), 0.75);
        // AUPR-In, ID positive by −score: 1 (tp1) R=1/3 P=1; 2 tied (tp2 fp1) R=2/3 P=2/3;
        // 3 (tp3 fp1) R=1 P=3/4; 4. AP = 1/3 + 1/3·2/3 + 1/3·3/4 = 0.7685185…
        let want = 1.0 / 3.0 + 2.0 / 9.0 + 0.25;
        assert!((aupr_in(&id, &ood).unwrap() - want).abs() < 1e-12);
        // TPR 0.95 of 3 ID scores needs all 3: t = 3; OOD ≤ 3: just 2 → FPR 0.5.
        assert_eq!(tpr_threshold(&id, 0.95).unwrap(), 3.0);
        assert_eq!(fpr_at_tpr(&id, &ood, 0.95).unwrap(), 0.5);
        // TPR 0.5: k = 2 (2/3 ≥ .5) → t = 2 → OOD ≤ 2: one of two.
        assert_eq!(tpr_threshold(&id, 0.5).unwrap(), 2.0);
        assert_eq!(fpr_at_tpr(&id, &ood, 0.5).unwrap(), 0.5);
    }

    #[test]
    fn tpr_threshold_is_exact_on_round_fractions() {
        // 20 scores 1..=20: 0.95 · 20 = 19 → the 19th smallest.
        let id: Vec<f32> = (1..=20).map(|v| v as f32).collect();
        assert_eq!(tpr_threshold(&id, 0.95).unwrap(), 19.0);
        assert_eq!(tpr_threshold(&id, 1.0).unwrap(), 20.0);
        assert_eq!(tpr_threshold(&id, 0.01).unwrap(), 1.0);
        assert!(tpr_threshold(&id, 0.0).is_err());
        assert!(tpr_threshold(&id, 1.5).is_err());
    }

    #[test]
    fn roc_curve_area_is_auroc() {
        let (id, ood) = ([1.0, 2.0, 3.0, 2.0], [2.0, 4.0, 0.5]);
        let pts = roc_curve(&id, &ood).unwrap();
        assert_eq!(pts.first(), Some(&(0.0, 0.0)));
        assert_eq!(pts.last(), Some(&(1.0, 1.0)));
        // Trapezoids under tpr(fpr) give P(id < ood) + ½P(tie) with ID positive = AUROC.
        let area: f64 = pts
            .windows(2)
            .map(|w| (w[1].0 - w[0].0) * (w[1].1 + w[0].1) / 2.0)
            .sum();
        assert!((area - auroc(&id, &ood).unwrap()).abs() < 1e-12);
    }

    #[test]
    fn empty_or_non_finite_scores_are_errors() {
        assert!(auroc(&[], &[1.0]).is_err());
        assert!(aupr_out(&[1.0], &[]).is_err());
        assert!(evaluate(&[f32::NAN], &[1.0]).is_err());
        assert!(average(&[]).is_none());
    }
}
