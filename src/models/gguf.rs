//! GGUF headers: a downloaded `.gguf` file is checked before it is served (magic, version,
//! counts, every metadata value and tensor description readable, tensor data inside the
//! file), and what the owner wants to see is kept: architecture, name, parameter count and
//! quantization. Sizes read from the file are bounded, so a corrupt one is refused with a
//! reason instead of making Island allocate what it claims.

use std::io::{self, BufReader, Read, Seek};
use std::path::Path;

use serde::{Deserialize, Serialize};

const MAGIC: &[u8; 4] = b"GGUF";
/// More tensors or metadata entries than any real model has.
const MAX_COUNT: u64 = 1 << 20;
/// The longest string accepted (a chat template or a merged vocabulary entry fits).
const MAX_STRING: u64 = 64 << 20;
/// Tensor ranks GGUF uses.
const MAX_DIMS: u32 = 8;

/// What a GGUF file says about its model.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GgufInfo {
    /// Format version (2 or 3).
    pub version: u32,
    /// `general.architecture`, e.g. `llama`.
    pub architecture: Option<String>,
    /// `general.name`.
    pub name: Option<String>,
    /// Parameters, summed over the tensors.
    pub parameters: u64,
    /// From `general.file_type`, e.g. `Q4_K_M`.
    pub quantization: Option<String>,
    /// Tensors in the file.
    pub tensors: u64,
}

/// Reads and checks the header of the GGUF file at `path`.
///
/// # Errors
/// Why it is not a usable GGUF file (the part that is wrong), or the read error.
pub fn inspect(path: &Path) -> Result<GgufInfo, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let size = file.metadata().map_err(|e| e.to_string())?.len();
    let mut r = BufReader::with_capacity(1 << 16, file);
    let info = read_header(&mut r, size).map_err(|e| format!("{} is not a valid GGUF file: {e}", path.display()))?;
    Ok(info)
}

/// Reads and checks a GGUF header held in memory (the fuzz target's entry).
///
/// # Errors
/// Why it is not a usable GGUF header.
pub fn inspect_bytes(bytes: &[u8]) -> Result<GgufInfo, String> {
    read_header(&mut io::Cursor::new(bytes), bytes.len() as u64).map_err(|e| e.to_string())
}

fn bad(why: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.into())
}

fn read_header<R: Read + Seek>(r: &mut R, size: u64) -> io::Result<GgufInfo> {
    let mut magic = [0u8; 4];
    r.read_exact(&mut magic).map_err(|_| bad("shorter than its magic number"))?;
    if &magic != MAGIC {
        return Err(bad("the magic number is not GGUF"));
    }
    let version = u32_le(r)?;
    if !(2..=3).contains(&version) {
        return Err(bad(format!("version {version} (Island reads versions 2 and 3)")));
    }
    let tensors = counted(r, "tensor count")?;
    let entries = counted(r, "metadata count")?;
    let mut info = GgufInfo { version, tensors, ..GgufInfo::default() };
    let mut alignment = 32u64;
    for _ in 0..entries {
        let key = string(r)?;
        let kind = u32_le(r)?;
        match (key.as_str(), kind) {
            ("general.architecture", 8) => info.architecture = Some(string(r)?),
            ("general.name", 8) => info.name = Some(string(r)?),
            ("general.file_type", 4) => info.quantization = Some(file_type(u32_le(r)?)),
            ("general.alignment", 4) => alignment = u64::from(u32_le(r)?).max(1),
            _ => skip_value(r, kind, &key)?,
        }
    }
    let mut data_end = 0u64;
    for _ in 0..tensors {
        let name = string(r)?;
        let dims = u32_le(r)?;
        if dims > MAX_DIMS {
            return Err(bad(format!("tensor {name} has {dims} dimensions")));
        }
        let mut elements = 1u64;
        for _ in 0..dims {
            elements = elements.checked_mul(u64_le(r)?).ok_or_else(|| bad(format!("tensor {name} is too large")))?;
        }
        let kind = u32_le(r)?;
        let offset = u64_le(r)?;
        info.parameters = info.parameters.saturating_add(elements);
        // A type Island does not know the size of is checked by its start only.
        let bytes = tensor_bytes(kind, elements).unwrap_or(0);
        data_end = data_end.max(offset.saturating_add(bytes));
    }
    let header_end = r.stream_position()?;
    let data_start = header_end.div_ceil(alignment) * alignment;
    if data_start.saturating_add(data_end) > size {
        return Err(bad(format!("its tensors lie past its end ({size} bytes): truncated")));
    }
    Ok(info)
}

fn u32_le<R: Read>(r: &mut R) -> io::Result<u32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b).map_err(|_| bad("it ends inside its header"))?;
    Ok(u32::from_le_bytes(b))
}

fn u64_le<R: Read>(r: &mut R) -> io::Result<u64> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b).map_err(|_| bad("it ends inside its header"))?;
    Ok(u64::from_le_bytes(b))
}

fn counted<R: Read>(r: &mut R, what: &str) -> io::Result<u64> {
    let n = u64_le(r)?;
    if n > MAX_COUNT {
        return Err(bad(format!("its {what} is {n}")));
    }
    Ok(n)
}

fn string<R: Read>(r: &mut R) -> io::Result<String> {
    let len = u64_le(r)?;
    if len > MAX_STRING {
        return Err(bad(format!("a string of {len} bytes")));
    }
    let mut bytes = vec![0u8; len as usize];
    r.read_exact(&mut bytes).map_err(|_| bad("it ends inside a string"))?;
    String::from_utf8(bytes).map_err(|_| bad("a string is not UTF-8"))
}

/// Bytes of one value of a fixed-size metadata type.
fn fixed_size(kind: u32) -> Option<u64> {
    match kind {
        0 | 1 | 7 => Some(1),
        2 | 3 => Some(2),
        4..=6 => Some(4),
        10..=12 => Some(8),
        _ => None,
    }
}

fn skip<R: Read>(r: &mut R, bytes: u64) -> io::Result<()> {
    let copied = io::copy(&mut r.take(bytes), &mut io::sink())?;
    if copied == bytes { Ok(()) } else { Err(bad("it ends inside its metadata")) }
}

/// Reads past one metadata value of type `kind`, checking it as it goes.
fn skip_value<R: Read>(r: &mut R, kind: u32, key: &str) -> io::Result<()> {
    if let Some(n) = fixed_size(kind) {
        return skip(r, n);
    }
    match kind {
        8 => string(r).map(drop),
        9 => {
            let inner = u32_le(r)?;
            let count = u64_le(r)?;
            if let Some(n) = fixed_size(inner) {
                let bytes = count.checked_mul(n).filter(|b| *b <= MAX_STRING * 16);
                return skip(r, bytes.ok_or_else(|| bad(format!("metadata {key} is an array of {count}")))?);
            }
            if inner == 9 || count > MAX_COUNT * 4 {
                return Err(bad(format!("metadata {key} is an array of {count} of type {inner}")));
            }
            (0..count).try_for_each(|_| skip_value(r, inner, key))
        }
        other => Err(bad(format!("metadata {key} has an unknown type {other}"))),
    }
}

/// The bytes of `elements` values of ggml type `kind`: (values per block, bytes per block).
fn tensor_bytes(kind: u32, elements: u64) -> Option<u64> {
    let (per_block, block_bytes) = match kind {
        0 | 26 => (1, 4),
        1 | 25 | 30 => (1, 2),
        24 => (1, 1),
        27 | 28 => (1, 8),
        2 => (32, 18),
        3 => (32, 20),
        6 => (32, 22),
        7 => (32, 24),
        8 => (32, 34),
        9 => (32, 36),
        10 => (256, 84),
        11 => (256, 110),
        12 => (256, 144),
        13 => (256, 176),
        14 => (256, 210),
        15 => (256, 292),
        _ => return None,
    };
    Some(elements.div_ceil(per_block).saturating_mul(block_bytes))
}

/// llama.cpp's `general.file_type` names.
fn file_type(t: u32) -> String {
    let name = match t {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        32 => "BF16",
        other => return format!("type {other}"),
    };
    name.to_string()
}

/// A small GGUF file (version 3) for tests: the given metadata strings and file type, two
/// tensors of `dims`, and tensor data of the right size.
#[cfg(any(test, feature = "test-support"))]
pub fn sample(architecture: &str, name: &str, file_type: u32, dims: &[(u64, u64)]) -> Vec<u8> {
    let mut out = Vec::new();
    let s = |out: &mut Vec<u8>, v: &str| {
        out.extend((v.len() as u64).to_le_bytes());
        out.extend(v.as_bytes());
    };
    out.extend(MAGIC);
    out.extend(3u32.to_le_bytes());
    out.extend((dims.len() as u64).to_le_bytes());
    out.extend(4u64.to_le_bytes());
    for (key, value) in [("general.architecture", architecture), ("general.name", name)] {
        s(&mut out, key);
        out.extend(8u32.to_le_bytes());
        s(&mut out, value);
    }
    s(&mut out, "general.file_type");
    out.extend(4u32.to_le_bytes());
    out.extend(file_type.to_le_bytes());
    s(&mut out, "tokenizer.ggml.tokens");
    out.extend(9u32.to_le_bytes());
    out.extend(8u32.to_le_bytes());
    out.extend(2u64.to_le_bytes());
    s(&mut out, "<s>");
    s(&mut out, "</s>");
    let mut offset = 0u64;
    for (i, (a, b)) in dims.iter().enumerate() {
        s(&mut out, &format!("blk.{i}.weight"));
        out.extend(2u32.to_le_bytes());
        out.extend(a.to_le_bytes());
        out.extend(b.to_le_bytes());
        out.extend(0u32.to_le_bytes());
        out.extend(offset.to_le_bytes());
        offset += a * b * 4;
    }
    out.resize(out.len().div_ceil(32) * 32 + offset as usize, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(bytes: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.gguf");
        std::fs::write(&path, bytes).unwrap();
        (dir, path)
    }

    #[test]
    fn a_valid_file_gives_its_metadata_and_parameter_count() {
        let (_d, path) = write(&sample("llama", "Tiny Test", 15, &[(64, 32), (32, 16)]));
        let info = inspect(&path).unwrap();
        assert_eq!(info.architecture.as_deref(), Some("llama"));
        assert_eq!(info.name.as_deref(), Some("Tiny Test"));
        assert_eq!(info.quantization.as_deref(), Some("Q4_K_M"));
        assert_eq!((info.parameters, info.tensors, info.version), (64 * 32 + 32 * 16, 2, 3));
    }

    #[test]
    fn corrupt_files_are_refused_saying_why() {
        let good = sample("llama", "x", 15, &[(64, 32)]);
        let mut wrong_magic = good.clone();
        wrong_magic[0] = b'X';
        let mut huge_count = good.clone();
        huge_count[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        let cases: [(&[u8], &str); 5] = [
            (b"GG", "shorter than its magic"),
            (&wrong_magic, "magic number is not GGUF"),
            (&huge_count, "tensor count"),
            (&good[..good.len() / 2], "truncated"),
            (&good[..60], "ends inside"),
        ];
        for (bytes, why) in cases {
            let (_d, path) = write(bytes);
            let e = inspect(&path).unwrap_err();
            assert!(e.contains("is not a valid GGUF file") && e.contains(why), "{why}: {e}");
        }
    }
}
