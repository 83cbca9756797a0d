//! Helpers shared by the convert integration tests: rebuild stored zips entry by entry.

#![allow(dead_code)]

use hood_convert::zip::ZipArchive;

/// A stored zip with CRC 0 (so the reader skips the CRC check and the corrupted bytes reach
/// the pickle and tensor layers).
pub fn zip_without_crc(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let (mut out, mut central) = (Vec::new(), Vec::new());
    for (name, data) in entries {
        let off = out.len() as u32;
        let fixed = |sig: u32| {
            let mut h = sig.to_le_bytes().to_vec();
            h.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            h.extend_from_slice(&(data.len() as u32).to_le_bytes());
            h.extend_from_slice(&(data.len() as u32).to_le_bytes());
            h.extend_from_slice(&(name.len() as u16).to_le_bytes());
            h
        };
        out.extend(fixed(0x0403_4b50));
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
        let mut c = fixed(0x0201_4b50);
        c.insert(4, 0);
        c.insert(4, 20); // version made by
        central.extend(c);
        central.extend_from_slice(&[0; 12]);
        central.extend_from_slice(&off.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let cd = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out
}

pub fn entries_of(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let z = ZipArchive::parse(bytes).unwrap();
    z.entries()
        .iter()
        .filter(|e| e.method == 0)
        .map(|e| (e.name.clone(), z.read(e).unwrap().to_vec()))
        .collect()
}
