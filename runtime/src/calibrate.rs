//! Calibration and evaluation helpers shared by `hood calibrate` and `hood eval`: listing the
//! images of a folder, turning ID scores into a [`Threshold`], and writing it into a model.

use crate::error::{HoodError, Result};
use crate::format::write_model;
use crate::meta::Threshold;
use crate::metrics;
use crate::model::Model;
use std::path::{Path, PathBuf};

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
    while let Some(d) = stack.pop() {
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

/// The threshold that keeps a fraction `tpr` ∈ (0, 1) of the ID `scores` (see
/// [`metrics::tpr_threshold`]), recorded as `method: "tpr"` with the image count and `data`.
pub fn tpr_threshold(scores: &[f32], tpr: f64, data: impl Into<String>) -> Result<Threshold> {
    if !(tpr > 0.0 && tpr < 1.0) {
        return Err(HoodError::input(
            "--tpr",
            format!("{tpr} is outside (0, 1)"),
        ));
    }
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
}
