//! The ID sets of a training run: the training images minus a held-out validation split (the
//! last `--val-per-class` images of each class, in listing order), that split (also written to
//! OUT/val/<class>/ for `hood calibrate --id`), and the test images. From an image folder per
//! class (data.rs) or CIFAR-10's python batches (cifar.rs), for `--id-train` and `--id-test`
//! alike.

use crate::atomic;
use crate::cifar;
use crate::data;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// The images as uint8 N×S×S×3 tensors with their labels.
pub struct IdSets {
    pub classes: Vec<String>,
    pub x_train: Tensor,
    pub y_train: Vec<i64>,
    pub x_val: Tensor,
    pub y_val: Vec<i64>,
    pub x_test: Tensor,
    pub y_test: Vec<i64>,
}

/// Where the sets come from and how to cut them.
pub struct Source<'a> {
    pub id_train: &'a Path,
    pub id_test: &'a Path,
    pub out: &'a Path,
    pub val_per_class: usize,
    pub limit_id: Option<usize>,
    pub size: u32,
    pub threads: usize,
}

/// `n` of `0..len` drawn without replacement by the global generator, sorted (a fixed subset).
pub fn random_subset(len: usize, n: usize) -> Vec<usize> {
    let perm = Tensor::randperm(len as i64, (Kind::Int64, Device::Cpu));
    let mut idx: Vec<usize> = Vec::<i64>::try_from(perm.narrow(0, 0, n.min(len) as i64))
        .unwrap_or_default()
        .into_iter()
        .map(|i| i as usize)
        .collect();
    idx.sort();
    idx
}

/// Indices (train, val) of a listing with `labels`: the last `per_class` of each class are
/// held out; both in listing order (train_heat.py's `split_val_labels`).
fn split_val(labels: &[i64], per_class: usize) -> (Vec<usize>, Vec<usize>) {
    let classes = labels.iter().copied().max().map_or(0, |m| m as usize + 1);
    let mut val = Vec::new();
    for c in 0..classes {
        let idx: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == c as i64).collect();
        val.extend_from_slice(&idx[idx.len().saturating_sub(per_class)..]);
    }
    val.sort();
    let train = (0..labels.len())
        .filter(|i| val.binary_search(i).is_err())
        .collect();
    (train, val)
}

pub fn load(s: &Source) -> Result<IdSets> {
    let sets = if cifar::is_cifar_batches(s.id_train) {
        from_batches(s)?
    } else {
        from_folders(s)?
    };
    if sets.y_train.is_empty() {
        bail!(
            "{}: no ID training images left after holding out {} per class",
            s.id_train.display(),
            s.val_per_class
        );
    }
    if sets.y_test.is_empty() {
        bail!("{}: no test images", s.id_test.display());
    }
    Ok(sets)
}

/// The test images: CIFAR-10's `test_batch` when `id_test` holds the batches, else an image
/// folder per class of `classes`.
fn test_set(s: &Source, classes: &[String]) -> Result<(Tensor, Vec<i64>)> {
    if cifar::is_cifar_batches(s.id_test) {
        let b = cifar::read(s.id_test, false)?;
        if b.classes != classes {
            bail!(
                "{}: classes {:?}, but the training set has {classes:?}",
                s.id_test.display(),
                b.classes
            );
        }
        let all: Vec<usize> = (0..b.labels.len()).collect();
        return Ok((gather(&b.pixels, &all, s.size)?, b.labels));
    }
    let test = data::labelled_images(s.id_test, classes)?;
    let paths: Vec<PathBuf> = test.iter().flatten().cloned().collect();
    let y = test
        .iter()
        .enumerate()
        .flat_map(|(c, f)| vec![c as i64; f.len()])
        .collect();
    Ok((data::load_u8(&paths, s.size, s.threads)?, y))
}

fn from_folders(s: &Source) -> Result<IdSets> {
    let classes = data::class_names(s.id_train)?;
    let by_class = data::labelled_images(s.id_train, &classes)?;
    let (mut tr_paths, mut tr_y, mut val) = (Vec::new(), Vec::new(), Vec::new());
    for (c, files) in by_class.iter().enumerate() {
        let cut = files.len().saturating_sub(s.val_per_class);
        for p in &files[..cut] {
            tr_paths.push(p.clone());
            tr_y.push(c as i64);
        }
        val.extend(files[cut..].iter().map(|p| (p.clone(), c)));
    }
    if let Some(n) = s.limit_id {
        let keep = random_subset(tr_paths.len(), n);
        tr_paths = keep.iter().map(|&i| tr_paths[i].clone()).collect();
        tr_y = keep.iter().map(|&i| tr_y[i]).collect();
    }
    let (x_test, y_test) = test_set(s, &classes)?;
    let val_paths: Vec<PathBuf> = val.iter().map(|(p, _)| p.clone()).collect();
    copy_val(s.out, s.id_train, &classes, &val)?;
    Ok(IdSets {
        x_train: data::load_u8(&tr_paths, s.size, s.threads)?,
        y_train: tr_y,
        x_val: data::load_u8(&val_paths, s.size, s.threads)?,
        y_val: val.iter().map(|&(_, c)| c as i64).collect(),
        x_test,
        y_test,
        classes,
    })
}

fn from_batches(s: &Source) -> Result<IdSets> {
    if s.size != cifar::SIDE {
        bail!(
            "{}: CIFAR-10's images are {side}×{side}, but this run's input size is {}",
            s.id_train.display(),
            s.size,
            side = cifar::SIDE
        );
    }
    let b = cifar::read(s.id_train, true)?;
    let (mut train, val) = split_val(&b.labels, s.val_per_class);
    if let Some(n) = s.limit_id {
        train = random_subset(train.len(), n)
            .into_iter()
            .map(|i| train[i])
            .collect();
    }
    let (x_test, y_test) = test_set(s, &b.classes)?;
    let y_val: Vec<i64> = val.iter().map(|&i| b.labels[i]).collect();
    write_val(s.out, &b.classes, &b.pixels, &val, &y_val)?;
    Ok(IdSets {
        x_train: gather(&b.pixels, &train, s.size)?,
        y_train: train.iter().map(|&i| b.labels[i]).collect(),
        x_val: gather(&b.pixels, &val, s.size)?,
        y_val,
        x_test,
        y_test,
        classes: b.classes,
    })
}

/// Images `idx` of HWC uint8 `pixels` (size×size×3 each) as an N×size×size×3 tensor.
fn gather(pixels: &[u8], idx: &[usize], size: u32) -> Result<Tensor> {
    let per = (size * size * 3) as usize;
    let mut out = Vec::with_capacity(idx.len() * per);
    for &i in idx {
        let img = pixels
            .get(i * per..(i + 1) * per)
            .context("image index past the decoded batches")?;
        out.extend_from_slice(img);
    }
    let s = size as i64;
    Ok(Tensor::from_slice(&out).view([idx.len() as i64, s, s, 3]))
}

/// A fresh OUT/val/ folder.
fn fresh_val_dir(out: &Path) -> Result<PathBuf> {
    let dir = out.join("val");
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .with_context(|| format!("{}: cannot remove", dir.display()))?;
    }
    Ok(dir)
}

/// The held-out CIFAR images as OUT/val/<class>/NNNNN.png (lossless), numbered within each
/// class in listing order (train_heat.py's `write_pngs`).
fn write_val(out: &Path, classes: &[String], pixels: &[u8], val: &[usize], y: &[i64]) -> Result<()> {
    let dir = fresh_val_dir(out)?;
    let per = (cifar::SIDE * cifar::SIDE * 3) as usize;
    let mut count = vec![0usize; classes.len()];
    for (&i, &c) in val.iter().zip(y) {
        let c = c as usize;
        let class_dir = dir.join(&classes[c]);
        std::fs::create_dir_all(&class_dir)
            .with_context(|| format!("{}: cannot create", class_dir.display()))?;
        let img = image::RgbImage::from_raw(
            cifar::SIDE,
            cifar::SIDE,
            pixels[i * per..(i + 1) * per].to_vec(),
        )
        .context("a CIFAR image of the wrong size")?;
        let path = class_dir.join(format!("{:05}.png", count[c]));
        count[c] += 1;
        atomic::write_with(&path, |tmp| {
            img.save_with_format(tmp, image::ImageFormat::Png)
                .with_context(|| format!("{}: cannot write", tmp.display()))
        })?;
    }
    Ok(())
}

/// Copies the held-out files into OUT/val/<class>/ (for `hood calibrate --id OUT/val`).
fn copy_val(out: &Path, root: &Path, classes: &[String], val: &[(PathBuf, usize)]) -> Result<()> {
    let dir = fresh_val_dir(out)?;
    for (p, c) in val {
        let class_root = root.join(&classes[*c]);
        let rel = p.strip_prefix(&class_root).unwrap_or(p.as_path());
        let rel = if rel.is_absolute() {
            Path::new(rel.file_name().unwrap_or_default())
        } else {
            rel
        };
        let dst = dir.join(&classes[*c]).join(rel);
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("{}: cannot create", parent.display()))?;
        }
        std::fs::copy(p, &dst)
            .with_context(|| format!("{}: cannot copy to {}", p.display(), dst.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::split_val;

    #[test]
    fn the_last_images_of_each_class_are_held_out() {
        let y = [0, 1, 0, 1, 1, 0, 2];
        let (train, val) = split_val(&y, 1);
        assert_eq!(val, vec![4, 5, 6]);
        assert_eq!(train, vec![0, 1, 2, 3]);
        let (train, val) = split_val(&y, 0);
        assert!(val.is_empty() && train.len() == y.len());
    }
}
