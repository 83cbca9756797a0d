//! Per-frame verdicts → alert state, with hysteresis: the alert is **raised** when at least `k`
//! of the last `n` frames are out of distribution and **cleared** after `m` consecutive
//! in-distribution frames. Defaults ([`Debounce::default`]): k = 3, n = 5, m = 5 — a single
//! noisy frame never alerts, a real OOD scene alerts within 3–5 frames (0.1–0.2 s at 30 fps),
//! and the alert does not flicker while the scene is borderline.

use std::collections::VecDeque;

/// Debouncing parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Debounce {
    /// OOD frames in the window that raise the alert.
    pub k: usize,
    /// Window length (frames).
    pub n: usize,
    /// Consecutive in-distribution frames that clear it.
    pub m: usize,
}

impl Default for Debounce {
    fn default() -> Self {
        Debounce { k: 3, n: 5, m: 5 }
    }
}

/// Debouncing parameters that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DebounceError {
    #[error("need 1 <= k <= n for 'alert when k of the last n frames are OOD' (k = {k}, n = {n})")]
    Window { k: usize, n: usize },
    #[error("clear-after (m) must be at least 1")]
    ClearAfter,
}

impl Debounce {
    pub fn validate(&self) -> Result<(), DebounceError> {
        if self.n == 0 || self.k == 0 || self.k > self.n {
            return Err(DebounceError::Window {
                k: self.k,
                n: self.n,
            });
        }
        if self.m == 0 {
            return Err(DebounceError::ClearAfter);
        }
        Ok(())
    }
}

/// A change of alert state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Raised,
    Cleared,
}

impl Transition {
    pub fn name(self) -> &'static str {
        match self {
            Transition::Raised => "raised",
            Transition::Cleared => "cleared",
        }
    }
}

/// The alert state machine.
#[derive(Debug, Clone)]
pub struct Debouncer {
    cfg: Debounce,
    window: VecDeque<bool>,
    id_run: usize,
    alerting: bool,
}

impl Debouncer {
    pub fn new(cfg: Debounce) -> Debouncer {
        Debouncer {
            cfg,
            window: VecDeque::with_capacity(cfg.n),
            id_run: 0,
            alerting: false,
        }
    }

    pub fn alerting(&self) -> bool {
        self.alerting
    }

    /// Feeds one frame's verdict; returns the transition it causes, if any.
    pub fn update(&mut self, ood: bool) -> Option<Transition> {
        if self.window.len() == self.cfg.n {
            self.window.pop_front();
        }
        self.window.push_back(ood);
        self.id_run = if ood { 0 } else { self.id_run + 1 };
        if !self.alerting && self.window.iter().filter(|&&o| o).count() >= self.cfg.k {
            self.alerting = true;
            return Some(Transition::Raised);
        }
        if self.alerting && self.id_run >= self.cfg.m {
            self.alerting = false;
            self.window.clear();
            return Some(Transition::Cleared);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(cfg: Debounce, seq: &str) -> String {
        let mut d = Debouncer::new(cfg);
        seq.chars()
            .map(|c| match d.update(c == 'x') {
                Some(Transition::Raised) => 'R',
                Some(Transition::Cleared) => 'C',
                None if d.alerting() => '^',
                None => '.',
            })
            .collect()
    }

    #[test]
    fn k_of_n_raises_and_m_consecutive_clear() {
        let cfg = Debounce { k: 3, n: 5, m: 3 };
        // Isolated OOD frames never alert; 3 of 5 do.
        assert_eq!(run(cfg, "x.x..x..x."), "..........");
        assert_eq!(run(cfg, "x.x.x"), "....R");
        // Alert holds through single ID frames, clears after 3 in a row.
        assert_eq!(run(cfg, "xxx.x..x...x"), "..R^^^^^^^C.");
    }

    #[test]
    fn after_clearing_the_window_starts_afresh() {
        let cfg = Debounce { k: 2, n: 3, m: 1 };
        assert_eq!(run(cfg, "xx.x.xx"), ".RC..R^");
    }

    #[test]
    fn validate_rejects_nonsense() {
        assert!(Debounce { k: 0, n: 5, m: 1 }.validate().is_err());
        assert!(Debounce { k: 6, n: 5, m: 1 }.validate().is_err());
        assert!(Debounce { k: 1, n: 1, m: 0 }.validate().is_err());
        assert!(Debounce::default().validate().is_ok());
    }
}
