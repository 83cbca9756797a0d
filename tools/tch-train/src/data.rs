//! Image folders → uint8 tensors, listed and preprocessed exactly as hood lists and prepares them
//! (`hood_runtime::calibrate::list_images`: recursive, sorted by path; `hood_runtime::preprocess`:
//! decoding like PIL, torchvision-style resize + centre crop), and the batch transforms of
//! train_heat.py (`to_input`, `augment`).

use anyhow::{bail, Context, Result};
use hood_runtime::calibrate::list_images;
use hood_runtime::meta::InputSpec;
use hood_runtime::preprocess::prepare_file;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// Normalisation of the CIFAR models: (x/255 − 0.5)/0.5 per channel.
pub const MEAN: [f32; 3] = [0.5; 3];
pub const STD: [f32; 3] = [0.5; 3];

/// hood's input description for a `size`×`size` RGB model with [`MEAN`] / [`STD`].
pub fn input_spec(size: u32) -> InputSpec {
    InputSpec {
        height: size,
        width: size,
        channels: 3,
        mean: MEAN.to_vec(),
        std: STD.to_vec(),
    }
}

/// Sorted names of the visible sub-folders of `dir`: the class names of an image-folder set.
pub fn class_names(dir: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("{}: cannot list", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("{}: cannot list", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        if std::fs::metadata(entry.path())
            .map(|m| m.is_dir())
            .unwrap_or(false)
        {
            out.push(name);
        }
    }
    out.sort();
    if out.is_empty() {
        bail!("{}: no class sub-folders", dir.display());
    }
    Ok(out)
}

/// The images of every class folder of `dir` with their class index in `classes`, class by
/// class, each class's files sorted (recursive). A sub-folder not named in `classes` is an error.
pub fn labelled_images(dir: &Path, classes: &[String]) -> Result<Vec<Vec<PathBuf>>> {
    for name in class_names(dir)? {
        if !classes.contains(&name) {
            bail!(
                "{}: folder '{name}' is not one of the classes {classes:?}",
                dir.display()
            );
        }
    }
    classes
        .iter()
        .map(|c| {
            let d = dir.join(c);
            if !d.is_dir() {
                return Ok(Vec::new());
            }
            list_images(&d).with_context(|| format!("{}: cannot list images", d.display()))
        })
        .collect()
}

/// Every image under `dir`, recursively, sorted (as `hood eval` lists a folder).
pub fn images_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let files =
        list_images(dir).with_context(|| format!("{}: cannot list images", dir.display()))?;
    if files.is_empty() {
        bail!("{}: no images", dir.display());
    }
    Ok(files)
}

/// Decodes and fits `paths` to `size`×`size` on `threads` threads: uint8 N×size×size×3.
pub fn load_u8(paths: &[PathBuf], size: u32, threads: usize) -> Result<Tensor> {
    let spec = input_spec(size);
    let per = (size * size * 3) as usize;
    let chunk = paths.len().div_ceil(threads.max(1)).max(1);
    let parts: Vec<Result<Vec<u8>>> = std::thread::scope(|s| {
        let handles: Vec<_> = paths
            .chunks(chunk)
            .map(|part| {
                let spec = &spec;
                s.spawn(move || -> Result<Vec<u8>> {
                    let mut buf = Vec::with_capacity(part.len() * per);
                    for p in part {
                        let prepared = prepare_file(p, spec)
                            .with_context(|| format!("{}: cannot load image", p.display()))?;
                        buf.extend_from_slice(prepared.view.as_raw());
                    }
                    Ok(buf)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("image loader thread panicked")))
            })
            .collect()
    });
    let mut all = Vec::with_capacity(paths.len() * per);
    for part in parts {
        all.extend(part?);
    }
    let s = size as i64;
    Ok(Tensor::from_slice(&all).view([paths.len() as i64, s, s, 3]))
}

/// uint8 N×H×W×3 → normalised float N×3×H×W on `device`, (x/255 − 0.5)/0.5 (train_heat.to_input).
pub fn to_input(u8: &Tensor, device: Device) -> Tensor {
    let x = u8
        .to_device(device)
        .permute([0, 3, 1, 2])
        .to_kind(Kind::Float);
    (x / 255.0 - MEAN[0] as f64) / STD[0] as f64
}

/// Random crop with zero padding 4 and horizontal flip, batched, on uint8 N×H×W×3
/// (train_heat.augment): offsets 0..=8 per image, flip with probability ½.
pub fn augment(u8: &Tensor) -> Tensor {
    let (n, h, w) = match u8.size().as_slice() {
        &[n, h, w, _] => (n, h, w),
        s => panic!("augment expects N×H×W×3, got {s:?}"),
    };
    let dev = u8.device();
    let pad = u8
        .permute([0, 3, 1, 2])
        .constant_pad_nd([4, 4, 4, 4])
        .permute([0, 2, 3, 1]);
    let oy = Tensor::randint(9, [n], (Kind::Int64, Device::Cpu)).to_device(dev);
    let ox = Tensor::randint(9, [n], (Kind::Int64, Device::Cpu)).to_device(dev);
    let rows = oy.unsqueeze(1) + Tensor::arange(h, (Kind::Int64, dev));
    let cols = ox.unsqueeze(1) + Tensor::arange(w, (Kind::Int64, dev));
    let flip = Tensor::rand([n], (Kind::Float, Device::Cpu))
        .to_device(dev)
        .lt(0.5);
    let cols = cols.flip([1]).where_self(&flip.unsqueeze(1), &cols);
    let idx = Tensor::arange(n, (Kind::Int64, dev));
    pad.index(&[
        Some(idx.view([n, 1, 1])),
        Some(rows.view([n, h, 1])),
        Some(cols.view([n, 1, w])),
    ])
}
