//! The fuzz target bodies: one function per reader, fed arbitrary bytes. They must never panic,
//! hang or allocate without bound, whatever the bytes; a `Result::Err` is the expected answer to
//! garbage. Shared by the libFuzzer targets (`fuzz_targets/`, nightly, `cargo fuzz`) and by the
//! stable replay of the committed corpora (`tests/tests/fuzz_corpus.rs`), so every corpus file
//! and every regression input runs in plain `cargo test`.

use std::path::Path;

/// `.hood` reader: header, metadata, tensor table, CRC, graph validation and shape inference,
/// then every tensor widened.
pub fn hood_model(data: &[u8]) {
    if let Ok(m) = hood_runtime::Model::from_bytes(data.to_vec(), "fuzz.hood") {
        let _ = m.weights();
        let _ = m.parameter_count();
    }
}

/// The inert pickle interpreter on its own.
pub fn pickle(data: &[u8]) {
    let _ = hood_convert::pickle::parse(data);
}

/// The bounded zip reader: directory, then every entry read.
pub fn zip(data: &[u8]) {
    if let Ok(z) = hood_convert::zip::ZipArchive::parse(data) {
        for e in z.entries().to_vec() {
            let _ = z.read(&e);
        }
    }
}

/// Format detection + the torch zip / tch / safetensors readers + flattening to tensors.
pub fn checkpoint(data: &[u8]) {
    if let Ok(ck) = hood_convert::load_bytes(Path::new("fuzz.pt"), data) {
        for (_, t) in ck.flatten() {
            let _ = t.f32s();
        }
    }
}

/// The whole `convert` front end on one file: parts, architecture recognition, lowering.
pub fn convert_front(data: &[u8]) {
    let _ = hood_convert::pipeline::front_end(Path::new("fuzz.pt"), data);
}

/// A 32×32 CIFAR-style input, what the decoded frames are preprocessed to.
fn spec_32() -> hood_runtime::meta::InputSpec {
    hood_runtime::meta::InputSpec {
        height: 32,
        width: 32,
        channels: 3,
        mean: vec![0.5; 3],
        std: vec![0.5; 3],
    }
}

/// Frame decoding (JPEG through libjpeg-turbo, PNG, BMP) and preprocessing to a 32×32 input.
pub fn image(data: &[u8]) {
    if let Ok(img) = hood_runtime::decode::decode_image(data) {
        let _ = hood_runtime::preprocess::prepare(&img, &spec_32(), "fuzz");
    }
}

/// hood-watch's frame converters on camera buffers of any length: byte 0 picks the format
/// (MJPEG as V4L2 hands it over, packed YUYV 4:2:2, packed RGB from GStreamer), bytes 1–4 the
/// frame size the camera announced (two little-endian u16), the rest is the buffer. Decoded
/// frames are preprocessed to a 32×32 input, as the daemon does.
pub fn frame(data: &[u8]) {
    use hood_firmware::source::FrameData;
    if data.len() < 5 {
        return;
    }
    let width = u32::from(u16::from_le_bytes([data[1], data[2]]));
    let height = u32::from(u16::from_le_bytes([data[3], data[4]]));
    let buffer = &data[5..];
    let frame = match data[0] % 3 {
        0 => FrameData::Encoded(buffer.into()),
        1 => FrameData::Yuyv {
            width,
            height,
            data: buffer.to_vec(),
        },
        _ => FrameData::Rgb {
            width,
            height,
            data: buffer.to_vec(),
        },
    };
    if let Ok(img) = hood_firmware::source::decode(&frame) {
        let _ = hood_runtime::preprocess::prepare(&img, &spec_32(), "fuzz");
    }
}

/// hood-watch's TOML config and the validation of every option.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(o) = hood_firmware::config::Options::from_toml(text) {
        let _ = o.backend();
        let _ = o.threads();
        let _ = o.debounce();
        let _ = o.overlay_interval();
        let _ = o.health_interval();
    }
}

/// A fuzz target: its name (the corpus folder name) and its body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target by name (the corpus folder names), for the replay.
pub const TARGETS: [Target; 8] = [
    ("hood_model", hood_model),
    ("pickle", pickle),
    ("zip", zip),
    ("checkpoint", checkpoint),
    ("convert_front", convert_front),
    ("image", image),
    ("frame", frame),
    ("config", config),
];
