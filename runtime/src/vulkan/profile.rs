//! Per-dispatch GPU time from timestamp queries (`hood bench --profile`).
//!
//! A profiled run records the same command buffer as a normal run (input copy, every step,
//! output copies; no copies with zero copy on unified memory) with a timestamp query written at the bottom of the pipe before the first
//! command and after each of them, into a timestamp query pool that the command buffer
//! resets first. One profiled command buffer is recorded per batch size and replayed.
//! The time of a dispatch is the difference of the timestamps around it, so it includes the
//! barrier vulkano inserts before it (waiting for the previous dispatch to drain).

use super::executor::{Stamps, VulkanExecutor};
use super::{submit_and_wait, vk_err};
use crate::backend::{StepProfile, StepTime};
use crate::error::Result;
use std::sync::Arc;
use vulkano::query::{QueryPool, QueryPoolCreateInfo, QueryResultFlags, QueryType};

impl VulkanExecutor {
    /// Whether the queue can write timestamps; `Err` says why not (for a clear skip message).
    pub fn timestamp_support(&self) -> std::result::Result<(), String> {
        let pd = self.ctx.device.physical_device();
        let family = self.ctx.queue.queue_family_index() as usize;
        let bits = pd
            .queue_family_properties()
            .get(family)
            .and_then(|q| q.timestamp_valid_bits);
        match bits {
            Some(_) => Ok(()),
            None => Err(format!(
                "the compute queue of {} has no timestamp support (timestampValidBits = 0)",
                self.ctx.description
            )),
        }
    }

    /// A timestamp query pool of `queries` queries.
    fn timestamp_pool(&self, queries: u32) -> Result<Arc<QueryPool>> {
        QueryPool::new(
            self.ctx.device.clone(),
            QueryPoolCreateInfo {
                query_count: queries,
                ..QueryPoolCreateInfo::query_type(QueryType::Timestamp)
            },
        )
        .map_err(|e| vk_err(format!("timestamp query pool: {e}")))
    }

    /// Milliseconds per timestamp tick of the device.
    fn tick_ms(&self) -> f64 {
        self.ctx
            .device
            .physical_device()
            .properties()
            .timestamp_period as f64
            * 1e-6
    }

    /// Runs `runs` batches of `n ≤ max_batch` images with timestamp queries around every
    /// recorded command and returns the mean GPU time of each (clock `gpu`; the input and
    /// output copies are steps of kind `copy`).
    pub fn profile(&mut self, input: &[f32], n: usize, runs: usize) -> Result<StepProfile> {
        self.timestamp_support().map_err(vk_err)?;
        if n == 0 || n > self.max_batch || input.len() != n * self.input_numel {
            return Err(vk_err(format!(
                "profile: batch of {n} (max {}) with {} input values",
                self.max_batch,
                input.len()
            )));
        }
        let queries = self.steps.len() as u32 + 3;
        let pool = self.timestamp_pool(queries)?;
        let (cb, dispatch_count) = self.record_with(n, Some((&pool, Stamps::Every)))?;
        self.write_input(input)?;
        let tick_ms = self.tick_ms();
        let mut sums = vec![0f64; queries as usize - 1];
        let runs = runs.max(1);
        let mut stamps = vec![0u64; queries as usize];
        let t0 = std::time::Instant::now();
        for _ in 0..runs {
            submit_and_wait(&self.ctx, cb.clone())?;
            pool.get_results(0..queries, &mut stamps, QueryResultFlags::WAIT)
                .map_err(|e| vk_err(format!("reading timestamps: {e}")))?;
            for (s, w) in sums.iter_mut().zip(stamps.windows(2)) {
                *s += w[1].wrapping_sub(w[0]) as f64 * tick_ms;
            }
        }
        let wall_ms = t0.elapsed().as_secs_f64() * 1e3 / runs as f64;
        let mut steps = Vec::with_capacity(sums.len());
        for (i, s) in sums.iter().enumerate() {
            // With zero copy (unified memory) these two intervals contain no command.
            let io = if self.zero_copy {
                " (none: mapped)"
            } else {
                ""
            };
            let (label, kind) = if i == 0 {
                (format!("input copy{io}"), "copy".to_string())
            } else if i == sums.len() - 1 {
                (format!("output copies{io}"), "copy".to_string())
            } else {
                let l = self.labels[i - 1].clone();
                let k = l.split(' ').next().unwrap_or("?").to_string();
                (l, k)
            };
            steps.push(StepTime {
                label,
                kind,
                ms: s / runs as f64,
            });
        }
        Ok(StepProfile {
            batch: n,
            runs,
            clock: "gpu",
            steps,
            wall_ms,
            dispatches: Some(dispatch_count),
            device: self.ctx.description.clone(),
        })
    }

    /// GPU time of one call of `n` images (split into chunks of at most `max_batch` as
    /// [`Executor::run`](crate::backend::Executor::run) does), mean of `runs` calls: each chunk
    /// runs a command buffer like the normal one with a timestamp before its first command and
    /// after its last, recorded per chunk size and kept with the others.
    pub fn call_device_ms(&mut self, input: &[f32], n: usize, runs: usize) -> Result<f64> {
        self.timestamp_support().map_err(vk_err)?;
        if n == 0 || input.len() != n * self.input_numel {
            return Err(vk_err(format!(
                "device time: batch of {n} with {} input values",
                input.len()
            )));
        }
        let tick_ms = self.tick_ms();
        let per = self.input_numel;
        let runs = runs.max(1);
        let mut total_ms = 0.0;
        let mut start = 0;
        while start < n {
            let m = (n - start).min(self.max_batch);
            let (pool, cb) = self.timed_command(m)?;
            self.write_input(&input[start * per..(start + m) * per])?;
            let mut stamps = [0u64; 2];
            for _ in 0..runs {
                submit_and_wait(&self.ctx, cb.clone())?;
                pool.get_results(0..2, &mut stamps, QueryResultFlags::WAIT)
                    .map_err(|e| vk_err(format!("reading timestamps: {e}")))?;
                total_ms += stamps[1].wrapping_sub(stamps[0]) as f64 * tick_ms;
            }
            start += m;
        }
        Ok(total_ms / runs as f64)
    }

    /// The command buffer of a batch of `n` with start and end timestamps, and its query pool
    /// (recorded on first use per batch size).
    fn timed_command(
        &mut self,
        n: usize,
    ) -> Result<(
        Arc<QueryPool>,
        Arc<vulkano::command_buffer::PrimaryAutoCommandBuffer>,
    )> {
        if let Some(t) = self.timed.get(&n) {
            return Ok(t.clone());
        }
        let pool = self.timestamp_pool(2)?;
        let (cb, _) = self.record_with(n, Some((&pool, Stamps::Ends)))?;
        self.timed.insert(n, (pool.clone(), cb.clone()));
        Ok((pool, cb))
    }
}
