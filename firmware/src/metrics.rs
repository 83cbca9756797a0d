//! `/metrics`: the board in the Prometheus text exposition format (version 0.0.4). Every series
//! carries a `camera` label; names follow Prometheus conventions (`_total` counters, base unit
//! seconds).

use crate::board::{Histogram, Snapshot, LATENCY_BUCKETS};
use std::fmt::Write as _;
use std::time::Instant;

/// A label value with `\`, `"` and newlines escaped.
fn esc(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for ch in v.chars() {
        match ch {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// A float as Prometheus writes it (`+Inf`, `NaN`).
fn num(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

struct Out(String);

impl Out {
    fn head(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }
    fn sample(&mut self, name: &str, labels: &str, v: f64) {
        let _ = writeln!(self.0, "{name}{{{labels}}} {}", num(v));
    }
    fn histogram(&mut self, name: &str, camera: &str, h: &Histogram) {
        let mut acc = 0u64;
        for (b, n) in LATENCY_BUCKETS.iter().zip(h.buckets) {
            acc += n;
            self.sample(
                &format!("{name}_bucket"),
                &format!("camera=\"{camera}\",le=\"{}\"", num(*b)),
                acc as f64,
            );
        }
        self.sample(
            &format!("{name}_bucket"),
            &format!("camera=\"{camera}\",le=\"+Inf\""),
            h.count as f64,
        );
        self.sample(
            &format!("{name}_sum"),
            &format!("camera=\"{camera}\""),
            h.sum,
        );
        self.sample(
            &format!("{name}_count"),
            &format!("camera=\"{camera}\""),
            h.count as f64,
        );
    }
}

/// The exposition text of a snapshot.
pub fn render(s: &Snapshot) -> String {
    let mut o = Out(String::new());
    o.head(
        "hood_info",
        "gauge",
        "hood-watch's version, model and backend (value 1).",
    );
    o.sample(
        "hood_info",
        &format!(
            "version=\"{}\",model=\"{}\",backend=\"{}\"",
            esc(s.version),
            esc(&s.model),
            esc(&s.backend)
        ),
        1.0,
    );
    o.head(
        "hood_uptime_seconds",
        "gauge",
        "Seconds since hood-watch started watching.",
    );
    let _ = writeln!(
        o.0,
        "hood_uptime_seconds {}",
        num(Instant::now().duration_since(s.started).as_secs_f64())
    );
    let cams: Vec<String> = s.cameras.iter().map(|c| esc(&c.name)).collect();
    type Counter = fn(&crate::board::Counters) -> u64;
    let counters: [(&str, &str, Counter); 10] = [
        ("hood_frames_total", "Frames scored.", |k| k.frames),
        (
            "hood_ood_frames_total",
            "Frames scored above the threshold (before debouncing).",
            |k| k.ood_frames,
        ),
        ("hood_alerts_total", "Alerts raised.", |k| k.alerts_raised),
        (
            "hood_dropped_frames_total",
            "Frames captured but not scored (undecodable or a detector failure).",
            |k| k.dropped,
        ),
        (
            "hood_undecodable_frames_total",
            "Frames that could not be decoded (part of hood_dropped_frames_total).",
            |k| k.undecodable,
        ),
        (
            "hood_source_skipped_frames_total",
            "Frames a live source replaced by a newer one because scoring was slower than capture.",
            |k| k.source_dropped,
        ),
        (
            "hood_source_errors_total",
            "Source errors (each followed by a retry with backoff).",
            |k| k.source_errors,
        ),
        (
            "hood_source_stalls_total",
            "Times the source watchdog found the source not answering within --source-timeout.",
            |k| k.source_stalls,
        ),
        (
            "hood_detector_errors_total",
            "Detector errors (the detector is recreated; the CPU backend is the fallback).",
            |k| k.detector_errors,
        ),
        ("hood_overlays_total", "Heatmap overlays written.", |k| {
            k.overlays
        }),
    ];
    for (name, help, get) in counters {
        o.head(name, "counter", help);
        for (c, n) in s.cameras.iter().zip(&cams) {
            o.sample(name, &format!("camera=\"{n}\""), get(&c.counters) as f64);
        }
    }
    o.head(
        "hood_alert_active",
        "gauge",
        "1 while the camera's alert is raised, else 0.",
    );
    for (c, n) in s.cameras.iter().zip(&cams) {
        o.sample(
            "hood_alert_active",
            &format!("camera=\"{n}\""),
            f64::from(u8::from(c.alerting)),
        );
    }
    o.head(
        "hood_score",
        "gauge",
        "OOD score of the camera's last scored frame.",
    );
    for (c, n) in s.cameras.iter().zip(&cams) {
        if let Some(l) = &c.last {
            o.sample("hood_score", &format!("camera=\"{n}\""), f64::from(l.score));
        }
    }
    o.head(
        "hood_threshold",
        "gauge",
        "Score threshold above which a frame counts as out of distribution.",
    );
    for (c, n) in s.cameras.iter().zip(&cams) {
        o.sample(
            "hood_threshold",
            &format!("camera=\"{n}\""),
            f64::from(c.threshold),
        );
    }
    o.head(
        "hood_last_frame_age_seconds",
        "gauge",
        "Seconds since the camera's last scored frame.",
    );
    let now = Instant::now();
    for (c, n) in s.cameras.iter().zip(&cams) {
        if let Some(l) = &c.last {
            o.sample(
                "hood_last_frame_age_seconds",
                &format!("camera=\"{n}\""),
                now.duration_since(l.at).as_secs_f64(),
            );
        }
    }
    o.head(
        "hood_capture_to_decision_seconds",
        "histogram",
        "From the frame reaching hood-watch to its OOD decision.",
    );
    for (c, n) in s.cameras.iter().zip(&cams) {
        o.histogram("hood_capture_to_decision_seconds", n, &c.decision_latency);
    }
    o.head(
        "hood_inference_seconds",
        "histogram",
        "Detector time per frame (classifier, decoder, score).",
    );
    for (c, n) in s.cameras.iter().zip(&cams) {
        o.histogram("hood_inference_seconds", n, &c.inference_latency);
    }
    o.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::Board;

    #[test]
    fn label_values_are_escaped() {
        let b = Board::new("a \"b\"\\c\nd", "cpu", &[("cam \"0\"", "x", 0.25)]);
        let t = render(&b.snapshot());
        assert!(t.contains(r#"model="a \"b\"\\c\nd""#), "{t}");
        assert!(
            t.contains(r#"hood_frames_total{camera="cam \"0\""} 0"#),
            "{t}"
        );
        assert!(t.contains(
            r#"hood_capture_to_decision_seconds_bucket{camera="cam \"0\"",le="+Inf"} 0"#
        ));
        assert!(t.contains("hood_threshold{camera=\"cam \\\"0\\\"\"} 0.25"));
        // Every line is a comment or `name{labels} value` / `name value`.
        for l in t.lines() {
            assert!(l.starts_with("# ") || l.rsplit_once(' ').is_some(), "{l}");
        }
    }
}
