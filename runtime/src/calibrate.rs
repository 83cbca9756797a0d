//! Calibration and evaluation helpers shared by `hood calibrate`, `hood eval` and
//! `convert --calibrate`: listing the images of a folder, scoring them, turning ID scores into a
//! [`Threshold`], and writing it into a model.

use crate::detector::{Backend, Detector};
use crate::error::{HoodError, Result};
use crate::format::write_model;
use crate::meta::Threshold;
use crate::metrics;
use crate::model::Model;
use std::path::{Path, PathBuf};

/// Images per batch when scoring a folder, unless told otherwise (`hood calibrate --batch`).
pub const DEFAULT_BATCH: usize = 64;

/// TPR kept below the threshold, unless told otherwise (`--tpr`).
pub const DEFAULT_TPR: f64 = 0.95;

/// File extensions (lower case) treated as images when listing a folder.
pub const IMAGE_EXTENSIONS: &[&str] = &[
    "png", "jpg", "jpeg", "bmp", "gif", "tif", "tiff", "webp", "ppm", "pgm", "pbm", "pnm", "tga",
    "qoi",
];

/// Every file under `dir` (recursively) whose extension is in [`IMAGE_EXTENSIONS`], sorted by
/// path. Hidden entries (names starting with `.`) are skipped. An error when `dir` is not a
/// readable folder.
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>> {
    let md = std::fs::metadata(dir).map_err(|e| HoodError::io(dir, e))?;
    if !md.is_dir() {
        return Err(HoodError::io(
            dir,
            std::io::Error::other("is not a folder of images"),
        ));
    }
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    // Folders already listed, by their canonical path: symbolic links are followed (a linked data
    // set folder works), and a link back to an ancestor is listed once, not forever.
    let mut seen = std::collections::HashSet::new();
    while let Some(d) = stack.pop() {
        let canonical = std::fs::canonicalize(&d).map_err(|e| HoodError::io(&d, e))?;
        if !seen.insert(canonical) {
            continue;
        }
        for entry in std::fs::read_dir(&d).map_err(|e| HoodError::io(&d, e))? {
            let entry = entry.map_err(|e| HoodError::io(&d, e))?;
            let p = entry.path();
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            // Follows symlinks, so a linked data set folder works.
            let Ok(md) = std::fs::metadata(&p) else {
                continue;
            };
            if md.is_dir() {
                stack.push(p);
            } else if md.is_file() && is_image_name(&p) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

fn is_image_name(p: &Path) -> bool {
    p.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.as_str()))
}

/// At most `limit` of `items`, evenly spaced (item `⌊i·n/limit⌋` for i = 0..limit), so a sorted,
/// class-by-class listing keeps every class.
pub fn evenly_spaced<T: Clone>(items: &[T], limit: usize) -> Vec<T> {
    let n = items.len();
    if limit >= n {
        return items.to_vec();
    }
    (0..limit).map(|i| items[i * n / limit].clone()).collect()
}

/// One scored image.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub path: PathBuf,
    pub class: usize,
    pub score: f32,
}

/// The scores of a list of images, plus how many of them could not be decoded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScoredSet {
    pub images: Vec<Scored>,
    pub undecodable: usize,
}

impl ScoredSet {
    pub fn scores(&self) -> Vec<f32> {
        self.images.iter().map(|s| s.score).collect()
    }
}

/// Scores `files` with `det`, `batch` images at a time, preprocessed for the model like every
/// other `hood` command ([`crate::preprocess::prepare_file`]). A file that cannot be read or decoded is
/// handed to `on_undecodable` with its error (which names it): `Ok(())` skips it (counted in
/// [`ScoredSet::undecodable`]), an error stops the scoring with that error. `progress(done)` is
/// called after each batch with the number of files handled so far.
pub fn score_files(
    det: &mut Detector,
    files: &[PathBuf],
    batch: usize,
    on_undecodable: &mut dyn FnMut(&Path, HoodError) -> Result<()>,
    progress: &mut dyn FnMut(usize),
) -> Result<ScoredSet> {
    let batch = batch.max(1);
    let mut out = ScoredSet {
        images: Vec::with_capacity(files.len()),
        undecodable: 0,
    };
    let spec = det.meta().input.clone();
    // Batch n+1 is decoded and preprocessed on another thread while batch n runs.
    crate::stream::prepared_batches(files, &spec, batch, |b| {
        for (p, e) in b.failed {
            on_undecodable(p, e)?;
            out.undecodable += 1;
        }
        if !b.files.is_empty() {
            let dets = det.detect_flat(&b.tensor, b.files.len())?;
            for (p, d) in b.files.into_iter().zip(dets) {
                out.images.push(Scored {
                    path: p.clone(),
                    class: d.class,
                    score: d.score,
                });
            }
        }
        progress(b.done);
        Ok(())
    })?;
    Ok(out)
}

/// The calibration data description stored when none is given: `ID folder DIR`.
pub fn folder_description(dir: &Path) -> String {
    format!("ID folder {}", dir.display())
}

/// What `convert --calibrate DIR` does: scores every image of `dir` with `model` on the fast CPU
/// backend ([`Backend::Cpu`]) with `threads` threads (`None`: see
/// [`crate::threads::default_threads`]), in batches of [`DEFAULT_BATCH`], and returns the
/// [`tpr_threshold`] (with [`folder_description`]) and the scores. Strict: a missing folder, a
/// folder without images or any file that cannot be decoded is an error naming it. On the same
/// folder and model it gives the threshold of `hood calibrate --backend cpu`.
pub fn calibrate_folder_cpu(
    model: &Model,
    dir: &Path,
    tpr: f64,
    threads: Option<usize>,
) -> Result<(Threshold, ScoredSet)> {
    check_tpr(tpr)?;
    let files = list_images(dir)?;
    if files.is_empty() {
        return Err(HoodError::input(
            dir.display().to_string(),
            "no images found (searched recursively)",
        ));
    }
    let mut det = Detector::with_threads(model, Backend::Cpu, threads)?;
    let set = score_files(
        &mut det,
        &files,
        DEFAULT_BATCH,
        &mut |_, e| Err(e),
        &mut |_| {},
    )?;
    let t = tpr_threshold(&set.scores(), tpr, folder_description(dir))?;
    Ok((t, set))
}

fn check_tpr(tpr: f64) -> Result<()> {
    if !(tpr > 0.0 && tpr < 1.0) {
        return Err(HoodError::input(
            "--tpr",
            format!("{tpr} is outside (0, 1)"),
        ));
    }
    Ok(())
}

/// The threshold that keeps a fraction `tpr` ∈ (0, 1) of the ID `scores` (see
/// [`metrics::tpr_threshold`]), recorded as `method: "tpr"` with the image count and `data`.
pub fn tpr_threshold(scores: &[f32], tpr: f64, data: impl Into<String>) -> Result<Threshold> {
    check_tpr(tpr)?;
    if scores.is_empty() {
        return Err(HoodError::input("calibration", "no ID images were scored"));
    }
    Ok(Threshold {
        value: metrics::tpr_threshold(scores, tpr)?,
        method: "tpr".into(),
        tpr: Some(tpr as f32),
        images: Some(scores.len() as u64),
        data: Some(data.into()),
    })
}

/// Writes `model` with `threshold` in its metadata to `out` (atomically: temp file + rename, so
/// `out` may be the model's own path; an open memory map of it stays valid).
pub fn write_with_threshold(model: &Model, threshold: Threshold, out: &Path) -> Result<()> {
    let mut meta = model.meta.clone();
    meta.threshold = Some(threshold);
    write_model(out, &meta, &model.graph, &model.host_tensors())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::tiny_model;

    #[test]
    fn lists_images_recursively_sorted_skipping_others() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("b/c")).unwrap();
        for f in ["b/c/z.PNG", "a.jpg", "b/x.png", "notes.txt", ".hidden.png"] {
            std::fs::write(d.path().join(f), b"x").unwrap();
        }
        let got: Vec<String> = list_images(d.path())
            .unwrap()
            .iter()
            .map(|p| p.strip_prefix(d.path()).unwrap().display().to_string())
            .collect();
        assert_eq!(got, ["a.jpg", "b/c/z.PNG", "b/x.png"]);
        assert!(list_images(&d.path().join("missing")).is_err());
        assert!(list_images(&d.path().join("a.jpg")).is_err());
    }

    #[test]
    fn evenly_spaced_keeps_spread() {
        let v: Vec<u32> = (0..10).collect();
        assert_eq!(evenly_spaced(&v, 3), [0, 3, 6]);
        assert_eq!(evenly_spaced(&v, 20), v);
    }

    #[test]
    fn threshold_is_written_and_reloads() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("m.hood");
        let (meta, graph, tensors) = tiny_model(3);
        write_model(&p, &meta, &graph, &tensors).unwrap();
        let model = Model::open(&p).unwrap();
        let scores: Vec<f32> = (1..=20).map(|v| v as f32 / 20.0).collect();
        let t = tpr_threshold(&scores, 0.9, "test").unwrap();
        assert_eq!(t.value, 0.9);
        write_with_threshold(&model, t.clone(), &p).unwrap();
        assert_eq!(Model::open(&p).unwrap().meta.threshold, Some(t));
        assert!(tpr_threshold(&scores, 1.0, "x").is_err());
        assert!(tpr_threshold(&[], 0.5, "x").is_err());
    }

    #[test]
    fn calibrate_folder_cpu_is_strict() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("m.hood");
        let (meta, graph, tensors) = tiny_model(3);
        write_model(&p, &meta, &graph, &tensors).unwrap();
        let model = Model::open(&p).unwrap();
        let imgs = d.path().join("id");
        std::fs::create_dir(&imgs).unwrap();
        // Missing folder, empty folder.
        let e = calibrate_folder_cpu(&model, &d.path().join("missing"), 0.95, None).unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
        let e = calibrate_folder_cpu(&model, &imgs, 0.95, None).unwrap_err();
        assert!(e.to_string().contains("no images"), "{e}");
        for i in 0..5u8 {
            let img = image::RgbImage::from_fn(8, 8, |x, y| {
                image::Rgb([i * 40, (x * 30) as u8, (y * 30) as u8])
            });
            img.save(imgs.join(format!("{i}.png"))).unwrap();
        }
        let (t, set) = calibrate_folder_cpu(&model, &imgs, 0.8, None).unwrap();
        assert_eq!(set.images.len(), 5);
        assert_eq!(set.undecodable, 0);
        assert_eq!(t.images, Some(5));
        assert_eq!(t.data.as_deref(), Some(folder_description(&imgs).as_str()));
        assert_eq!(t.value, metrics::tpr_threshold(&set.scores(), 0.8).unwrap());
        assert!(calibrate_folder_cpu(&model, &imgs, 1.5, None).is_err());
        // One undecodable file fails the whole calibration, naming it.
        std::fs::write(imgs.join("bad.png"), b"not a png").unwrap();
        let e = calibrate_folder_cpu(&model, &imgs, 0.8, None).unwrap_err();
        assert!(e.to_string().contains("bad.png"), "{e}");
    }
}
