//! Damaged files: every one is rejected with a clear error, none panics. Patches that keep a
//! correct CRC (`doc::fix_crc`) make sure the structural checks, not the checksum, catch them.

mod format_doc;

use format_doc as doc;
use hood_runtime::format::encode;
use hood_runtime::testing::tiny_model;
use hood_runtime::{HoodError, Model};
use std::sync::OnceLock;

/// The crate writer's file for `tiny_model(11)`, and the doc parser's view of it.
fn file() -> &'static (Vec<u8>, doc::Parsed) {
    static F: OnceLock<(Vec<u8>, doc::Parsed)> = OnceLock::new();
    F.get_or_init(|| {
        let (meta, graph, tensors) = tiny_model(11);
        let f = encode(&meta, &graph, &tensors).unwrap();
        let p = doc::parse(&f).unwrap();
        (f, p)
    })
}

fn bytes() -> Vec<u8> {
    file().0.clone()
}

fn load(b: Vec<u8>) -> Result<Model, HoodError> {
    Model::from_bytes(b, "bad.hood")
}

#[track_caller]
fn rejects(b: Vec<u8>, needle: &str) {
    match load(b) {
        Ok(_) => panic!("accepted a file that should fail with {needle:?}"),
        Err(e) => {
            let s = e.to_string();
            assert!(matches!(e, HoodError::Format { .. }), "{s}");
            assert!(s.contains(needle), "error {s:?} should contain {needle:?}");
            assert!(
                s.starts_with("bad.hood: "),
                "error {s:?} should name the file"
            );
        }
    }
}

/// Patches bytes at `at` and recomputes the CRC.
#[track_caller]
fn patched(at: usize, new: &[u8]) -> Vec<u8> {
    let mut f = bytes();
    f[at..at + new.len()].copy_from_slice(new);
    doc::fix_crc(&mut f);
    f
}

/// Absolute offset of field `field` of tensor-table entry `i` ("name_len", "dtype", "rank",
/// "dims", "offset", "nbytes"); the table's count is at `table_start`.
fn tensor_field(i: usize, field: &str) -> usize {
    let (f, p) = file();
    let (start, _) = p.section(doc::TENSOR_TABLE);
    let mut pos = start as usize + 4;
    for j in 0.. {
        let name_len = u16::from_le_bytes([f[pos], f[pos + 1]]) as usize;
        let rank = f[pos + 2 + name_len + 1] as usize;
        if j == i {
            let dtype = pos + 2 + name_len;
            return match field {
                "name_len" => pos,
                "name" => pos + 2,
                "dtype" => dtype,
                "rank" => dtype + 1,
                "dims" => dtype + 2,
                "offset" => dtype + 2 + 4 * rank,
                "nbytes" => dtype + 2 + 4 * rank + 8,
                _ => unreachable!(),
            };
        }
        pos += 2 + name_len + 2 + 4 * rank + 16;
    }
    unreachable!()
}

#[test]
fn empty_directory_missing() {
    rejects(Vec::new(), "empty");
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.hood");
    std::fs::write(&empty, b"").unwrap();
    let e = Model::open(&empty).unwrap_err().to_string();
    assert!(e.contains("empty") && e.contains("empty.hood"), "{e}");

    let e = Model::open(dir.path()).unwrap_err();
    assert!(matches!(e, HoodError::Io { .. }), "{e}");
    assert!(e.to_string().contains("directory"), "{e}");

    let missing = dir.path().join("nope.hood");
    match Model::open(&missing).unwrap_err() {
        HoodError::Io { path, source } => {
            assert_eq!(path, missing);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        e => panic!("{e}"),
    }
}

#[test]
fn wrong_magic_and_version() {
    rejects(b"hello, world\n".to_vec(), "not a .hood file");
    rejects(
        b"\x89PNG\r\n\x1a\n-------------------------------------------------------------".to_vec(),
        "not a .hood file",
    );
    let mut f = bytes();
    f[1] = b'h';
    rejects(f, "not a .hood file");
    rejects(
        patched(8, &2u16.to_le_bytes()),
        "unsupported format version 2.0",
    );
    rejects(
        patched(8, &0u16.to_le_bytes()),
        "unsupported format version 0.0",
    );
    let mut f = bytes();
    f[8] = 2; // without fixing the CRC: the version is still reported, not the checksum
    let e = load(f).unwrap_err().to_string();
    assert!(e.contains("supports version 1.x"), "{e}");
}

#[test]
fn header_fields() {
    rejects(patched(12, &65u32.to_le_bytes()), "header size");
    rejects(patched(28, &1u32.to_le_bytes()), "flags");
    rejects(patched(32, &128u64.to_le_bytes()), "section table offset");
    rejects(patched(50, &[1]), "reserved header bytes");
    rejects(patched(24, &0u32.to_le_bytes()), "missing section META");
    rejects(patched(24, &1000u32.to_le_bytes()), "exceeds the limit");
    // A fifth entry overlaps META, which now lies inside the table.
    rejects(patched(24, &5u32.to_le_bytes()), "outside");
}

#[test]
fn truncation_at_every_length() {
    let f = bytes();
    for len in 0..f.len() {
        let e = load(f[..len].to_vec())
            .expect_err("truncated file accepted")
            .to_string();
        let want = if len == 0 { "empty" } else { "truncated" };
        assert!(e.contains(want), "length {len}: {e}");
    }
    // And through the file system at every section boundary.
    let dir = tempfile::tempdir().unwrap();
    let p = &file().1;
    let mut cuts = vec![1, 8, 63, 64, 65, 64 + 32 * 4, f.len() - 4, f.len() - 1];
    for &(_, off, len) in &p.sections {
        cuts.extend([off as usize, (off + len) as usize, off as usize + 1]);
    }
    for cut in cuts {
        let path = dir.path().join(format!("cut{cut}.hood"));
        std::fs::write(&path, &f[..cut]).unwrap();
        let e = Model::open(&path).unwrap_err().to_string();
        assert!(
            e.contains("truncated") && e.contains(&format!("cut{cut}.hood")),
            "{cut}: {e}"
        );
    }
}

#[test]
fn trailing_bytes() {
    let mut f = bytes();
    f.push(0);
    rejects(f, "trailing bytes");
    let mut f = bytes();
    f.extend_from_slice(&[0xAB; 100]);
    rejects(f, "trailing bytes");
    // Zero padding before the trailer, declared in the file size and checksummed, is allowed…
    let grow = |fill: u8| {
        let mut f = bytes();
        let n = f.len() - 4;
        f.truncate(n);
        f.extend_from_slice(&[fill; 12]);
        f.extend_from_slice(&[0; 4]);
        let size = f.len() as u64;
        f[16..24].copy_from_slice(&size.to_le_bytes());
        doc::fix_crc(&mut f);
        f
    };
    load(grow(0)).unwrap();
    // … non-zero bytes there are not.
    rejects(grow(0xAB), "padding");
}

#[test]
fn every_byte_flipped_is_rejected() {
    let f = bytes();
    for i in 0..f.len() {
        let mut g = f.clone();
        g[i] ^= 0xFF;
        let e = match load(g) {
            Ok(_) => panic!("flipping byte {i} went unnoticed"),
            Err(e) => e.to_string(),
        };
        let want = match i {
            0..=7 => "not a .hood file",
            8..=9 => "unsupported format version",
            // The file-size field no longer matches the real size.
            16..=23 if e.contains("trailing bytes") => "trailing bytes",
            16..=23 => "truncated",
            _ if i >= 64 => "checksum",
            _ => "",
        };
        assert!(e.contains(want), "byte {i}: {e}");
    }
}

#[test]
fn every_byte_changed_with_a_valid_checksum_never_panics() {
    // Structural checks alone: some of these files are valid (a changed weight), most are not;
    // none may panic. Tensor bytes are skipped after the first few (they only change values).
    let f = bytes();
    let (data_off, _) = file().1.section(doc::TENSOR_DATA);
    let mut rejected = 0;
    for i in (0..f.len() - 4).filter(|&i| i < data_off as usize + 256) {
        for x in [0xFF, 0x01, 0x80, 0x20] {
            let mut g = f.clone();
            g[i] ^= x;
            doc::fix_crc(&mut g);
            rejected += load(g).is_err() as usize;
        }
    }
    assert!(rejected > 0);
}

#[test]
fn absurd_tensor_table_values_with_a_correct_checksum() {
    let (table, _) = file().1.section(doc::TENSOR_TABLE);
    rejects(
        patched(table as usize, &u32::MAX.to_le_bytes()),
        "tensor count 4294967295 is impossible",
    );
    rejects(
        patched(table as usize, &100_000u32.to_le_bytes()),
        "is impossible",
    );
    rejects(
        patched(tensor_field(0, "name_len"), &0u16.to_le_bytes()),
        "name length 0",
    );
    rejects(
        patched(tensor_field(0, "name_len"), &257u16.to_le_bytes()),
        "name length 257",
    );
    rejects(
        patched(tensor_field(2, "name_len"), &u16::MAX.to_le_bytes()),
        "name length 65535",
    );
    rejects(patched(tensor_field(0, "name"), &[0xFF]), "not UTF-8");
    rejects(
        patched(tensor_field(0, "dtype"), &[0]),
        "unknown dtype code 0",
    );
    rejects(
        patched(tensor_field(1, "dtype"), &[255]),
        "unknown dtype code 255",
    );
    rejects(patched(tensor_field(0, "rank"), &[200]), "rank 200");
    rejects(
        patched(tensor_field(0, "dims"), &0u32.to_le_bytes()),
        "zero dimension",
    );
    rejects(patched(tensor_field(0, "dims"), &[0xFF; 16]), "overflows");
    rejects(
        patched(tensor_field(0, "dims"), &u32::MAX.to_le_bytes()),
        "does not match",
    );
    rejects(
        patched(tensor_field(0, "nbytes"), &u64::MAX.to_le_bytes()),
        "does not match",
    );
    rejects(
        patched(tensor_field(3, "offset"), &(u64::MAX - 63).to_le_bytes()),
        "outside TENSOR_DATA",
    );
    rejects(
        patched(tensor_field(3, "offset"), &(1u64 << 40).to_le_bytes()),
        "outside TENSOR_DATA",
    );
    rejects(
        patched(tensor_field(3, "offset"), &8u64.to_le_bytes()),
        "multiple of 64",
    );
    // Tensor 1 (4 f16 values) moved onto tensor 0.
    rejects(
        patched(tensor_field(1, "offset"), &0u64.to_le_bytes()),
        "overlaps",
    );
    // A graph weight renamed in the table (same length): the graph now misses it.
    let (f, _) = file();
    let at = tensor_field(3, "name");
    assert_eq!(&f[at..at + 9], b"head.bias");
    rejects(
        patched(at + 8, b"z"),
        "'head.bias' is not in the tensor table",
    );
    // A golden tensor renamed.
    let idx = 8; // first tensor after the eight weights: golden.input
    let at = tensor_field(idx, "name");
    assert_eq!(&f[at..at + 12], b"golden.input");
    rejects(
        patched(at, b"G"),
        "golden input tensor 'golden.input' is not in the tensor table",
    );
}

#[test]
fn absurd_section_table_values_with_a_correct_checksum() {
    let e = |i: usize| 64 + 32 * i;
    rejects(patched(e(0), &7u32.to_le_bytes()), "unknown section kind");
    rejects(patched(e(1), &1u32.to_le_bytes()), "duplicate section kind");
    rejects(patched(e(0) + 4, &1u32.to_le_bytes()), "reserved fields");
    rejects(patched(e(2) + 24, &1u64.to_le_bytes()), "reserved fields");
    rejects(patched(e(1) + 8, &u64::MAX.to_le_bytes()), "outside");
    rejects(patched(e(1) + 16, &u64::MAX.to_le_bytes()), "outside");
    rejects(patched(e(3) + 16, &(1u64 << 33).to_le_bytes()), "outside");
    rejects(patched(e(0) + 16, &1u64.to_le_bytes()), "padding");
}

#[test]
fn json_sections() {
    let (f, p) = file();
    let (meta, _) = p.section(doc::META);
    let (graph, glen) = p.section(doc::GRAPH);
    rejects(patched(meta as usize, b"["), "META section");
    rejects(patched(meta as usize + 1, &[0xFF]), "not UTF-8");
    rejects(patched(graph as usize, b"x"), "GRAPH section");
    // The heat_score node's id, same width: 10 → 99.
    let g = &f[graph as usize..(graph + glen) as usize];
    let needle = b"\"op\":10";
    let at = g
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("heat_score node");
    rejects(patched(graph as usize + at + 5, b"99"), "unknown op id 99");
}
