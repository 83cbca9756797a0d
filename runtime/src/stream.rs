//! Double-buffered batches of image files: while the caller runs the detector on batch n, a second
//! thread decodes and preprocesses batch n+1 (issue #4's `infer_stream`). At most one prepared
//! batch waits in the hand-over channel, so memory stays at two batches whatever the file count.
//! `hood eval`, `hood calibrate` and `convert --calibrate` score folders through it
//! ([`crate::calibrate::score_files`]).

use crate::error::{HoodError, Result};
use crate::meta::InputSpec;
use crate::preprocess;
use std::path::PathBuf;
use std::sync::mpsc::sync_channel;

/// One batch of files, decoded and preprocessed.
pub struct PreparedBatch<'a> {
    /// Position of the batch (0, 1, …).
    pub index: usize,
    /// Files of this batch that decoded, in order; `tensor` holds their inputs back to back.
    pub files: Vec<&'a PathBuf>,
    pub tensor: Vec<f32>,
    /// Files of this batch that could not be decoded, with the reason.
    pub failed: Vec<(&'a PathBuf, HoodError)>,
    /// Number of files covered by this and all earlier batches (for progress).
    pub done: usize,
}

fn prepare<'a>(
    index: usize,
    chunk: &'a [PathBuf],
    done: usize,
    spec: &InputSpec,
) -> PreparedBatch<'a> {
    let mut b = PreparedBatch {
        index,
        files: Vec::with_capacity(chunk.len()),
        tensor: Vec::new(),
        failed: Vec::new(),
        done,
    };
    for p in chunk {
        match preprocess::prepare_file(p, spec) {
            Ok(prep) => {
                b.files.push(p);
                b.tensor.extend_from_slice(&prep.tensor);
            }
            Err(e) => b.failed.push((p, e)),
        }
    }
    b
}

/// Calls `consume` on every batch of `batch` files (the last may be shorter), in order, with the
/// next batch being prepared on another thread meanwhile. An error from `consume` stops the
/// stream (the preparing thread ends at its next hand-over) and is returned.
pub fn prepared_batches<'a>(
    files: &'a [PathBuf],
    spec: &InputSpec,
    batch: usize,
    mut consume: impl FnMut(PreparedBatch<'a>) -> Result<()>,
) -> Result<()> {
    let batch = batch.max(1);
    std::thread::scope(|s| {
        let (tx, rx) = sync_channel::<PreparedBatch<'a>>(1);
        let worker = s.spawn(move || {
            let mut done = 0;
            for (i, chunk) in files.chunks(batch).enumerate() {
                done += chunk.len();
                if tx.send(prepare(i, chunk, done, spec)).is_err() {
                    break; // the consumer stopped
                }
            }
        });
        let result = rx.into_iter().try_for_each(&mut consume);
        // On an error the receiver is gone by now (moved into the iterator above), so the worker
        // finishes its current batch and stops.
        if worker.join().is_err() {
            return Err(HoodError::graph("the image-preparing thread panicked"));
        }
        result
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::InputSpec;

    fn spec() -> InputSpec {
        InputSpec {
            channels: 3,
            height: 8,
            width: 8,
            mean: vec![0.5; 3],
            std: vec![0.5; 3],
        }
    }

    fn files(dir: &std::path::Path, n: usize, bad: &[usize]) -> Vec<PathBuf> {
        (0..n)
            .map(|i| {
                let p = dir.join(format!("{i:02}.png"));
                if bad.contains(&i) {
                    std::fs::write(&p, b"not an image").unwrap();
                } else {
                    let img = image::RgbImage::from_fn(8, 8, |x, y| {
                        image::Rgb([(i * 20) as u8, (x * 30) as u8, (y * 30) as u8])
                    });
                    img.save(&p).unwrap();
                }
                p
            })
            .collect()
    }

    #[test]
    fn batches_arrive_in_order_and_equal_sequential_preparation() {
        let dir = tempfile::tempdir().unwrap();
        let fs = files(dir.path(), 7, &[3]);
        let mut seen = Vec::new();
        prepared_batches(&fs, &spec(), 3, |b| {
            let seq = prepare(
                b.index,
                &fs[b.index * 3..(b.index * 3 + 3).min(7)],
                b.done,
                &spec(),
            );
            assert_eq!(b.tensor, seq.tensor);
            assert_eq!(b.files, seq.files);
            assert_eq!(b.failed.len(), seq.failed.len());
            seen.push((b.index, b.files.len(), b.failed.len(), b.done));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, vec![(0, 3, 0, 3), (1, 2, 1, 6), (2, 1, 0, 7)]);
    }

    #[test]
    fn an_error_from_the_consumer_stops_the_stream() {
        let dir = tempfile::tempdir().unwrap();
        let fs = files(dir.path(), 10, &[]);
        let mut calls = 0;
        let r = prepared_batches(&fs, &spec(), 2, |b| {
            calls += 1;
            if b.index == 1 {
                return Err(HoodError::graph("stop here"));
            }
            Ok(())
        });
        assert!(r.unwrap_err().to_string().contains("stop here"));
        assert_eq!(calls, 2);
    }
}
