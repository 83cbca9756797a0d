//! numpy scalars as inert data: the authors' decoder files store `max` (and sometimes `min`) as a
//! `numpy.float64`, which pickles as
//!
//! ```text
//! GLOBAL numpy._core.multiarray scalar          (numpy 1.x: numpy.core.multiarray)
//!   GLOBAL numpy dtype  REDUCE ('f8', False, True)  BUILD (3, '<', None, None, None, -1, -1, 0)
//!   <8 raw bytes>       protocol 2: GLOBAL _codecs encode REDUCE ('<latin-1 str>', 'latin1')
//!                       protocol 3+: SHORT_BINBYTES
//! TUPLE2 REDUCE
//! ```
//!
//! and a 0-d `numpy.ndarray` as `_reconstruct(numpy.ndarray, (0,), b'b')` followed by BUILD
//! `(1, (), dtype, is_fortran, raw bytes)`.
//!
//! The interpreter never calls these functions: it recognises exactly these call shapes and
//! computes their *result* from the data (a dtype descriptor, a byte string, a number). Only
//! plain numeric dtypes are accepted (f8 f4 f2 i8 i4 i2 i1 u1 b1, byte order `<`, `>`, `|` or
//! `=`, the latter read as little-endian); structured, object and other dtypes, arrays with
//! elements, `_codecs.encode` with any encoding but latin-1, and every other numpy name are
//! errors. A scalar becomes [`Node::Float`], [`Node::Int`] or [`Node::Bool`], so the rest of the
//! converter sees the same value as for a Python float / int / bool.

use super::{Id, Node};

/// A numpy or `_codecs` global used in a way the interpreter does not read
/// ([`super::PickleError::Unsupported`] adds the byte position). `found` fields describe the
/// pickled value that was there instead (`a tuple`, `bytes`, ...).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NumpyError {
    #[error("{module}.{name} called without an argument tuple")]
    NoArguments { module: String, name: String },
    #[error("_codecs.encode is only read as encode(str, 'latin1')")]
    EncodeArguments,
    #[error(
        "_codecs.encode with encoding {0:?}: only 'latin1' (how pickle protocol 2 stores bytes) \
         is read"
    )]
    Encoding(String),
    /// A character above U+00FF in a string `_codecs.encode` should turn into latin-1 bytes.
    #[error(
        "_codecs.encode(.., 'latin1') of a string with U+{0:04X}, which latin-1 cannot encode"
    )]
    NotLatin1(u32),
    #[error(
        "numpy.dtype({code:?}) is not supported: only the scalar dtypes {} are read",
        CODES.join(" ")
    )]
    Dtype { code: String },
    /// A dtype code outside [`CODES`] reaching the scalar decoder (unreachable: `numpy.dtype`
    /// refuses those first).
    #[error("numpy dtype {code} is not supported")]
    ScalarDtype { code: String },
    #[error("numpy.dtype is only read as dtype(str, bool, bool)")]
    DtypeArguments,
    #[error("numpy scalar of dtype {code} with {found} instead of its raw bytes")]
    ScalarData { code: String, found: &'static str },
    #[error("{module}.scalar is only read as scalar(numpy.dtype, bytes)")]
    ScalarArguments { module: String },
    #[error("{module}._reconstruct is only read as _reconstruct(numpy.ndarray, shape, typecode)")]
    ReconstructArguments { module: String },
    #[error(
        "calling {module}.{name} is not supported (only numpy scalars and 0-d arrays are read)"
    )]
    Call { module: String, name: String },
    #[error("NEWOBJ of {module}.{name} (only numpy scalars are read)")]
    NewObject { module: String, name: String },
    #[error("BUILD of a numpy value with {found} instead of a state tuple")]
    BuildState { found: &'static str },
    #[error(
        "numpy dtype {code} with a state of {items} items; expected (version, byteorder, \
         subarray, names, fields, elsize, alignment, flags)"
    )]
    DtypeState { code: String, items: usize },
    #[error(
        "numpy dtype {code} with sub-array or named fields (a structured dtype) is not supported"
    )]
    Structured { code: String },
    #[error("numpy dtype {code} with byte order {order:?}; expected '<', '>', '|' or '='")]
    ByteOrder { code: String, order: String },
    #[error("numpy dtype {code} with {found} as its byte order; expected '<', '>', '|' or '='")]
    ByteOrderType { code: String, found: &'static str },
    #[error(
        "numpy array ({module}._reconstruct) with a state that is not (version, shape, dtype, \
         is_fortran, data) for a supported dtype"
    )]
    ArrayState { module: String },
    /// An array with elements (`dims`: its shape, `?` for a non-int dimension).
    #[error(
        "numpy array of shape ({}) is not supported: only 0-d arrays (scalars) are read; store \
         tensors as torch tensors",
        dims.join(", ")
    )]
    ArrayShape { dims: Vec<String> },
    #[error("0-d numpy array of dtype {code} with {found} instead of its raw bytes")]
    ArrayData { code: String, found: &'static str },
    /// An array (arrays allowed) whose raw bytes do not match its shape and dtype.
    #[error(
        "numpy array of dtype {code} with {len} bytes of data instead of {want} for its shape"
    )]
    ArraySize { code: String, len: usize, want: u64 },
    /// An array (arrays allowed) stored in Fortran order.
    #[error("numpy array in Fortran order is not supported (store it in C order)")]
    Fortran,
    #[error("BUILD on a value that is not a numpy dtype or array")]
    BuildTarget,
    #[error("numpy scalar of dtype {code} with {len} bytes of data instead of {size}")]
    ScalarSize {
        code: String,
        len: usize,
        size: usize,
    },
}

/// The numpy / codecs globals the allow-list admits (only interpreted as described above).
pub(super) fn is_allowed(module: &str, name: &str) -> bool {
    matches!(
        (module, name),
        ("numpy", "dtype" | "ndarray")
            | (
                "numpy.core.multiarray" | "numpy._core.multiarray",
                "scalar" | "_reconstruct"
            )
            | ("_codecs", "encode")
    )
}

/// Whether REDUCE / NEWOBJ of a global from `module` must go through [`reduce`].
pub(super) fn handles(module: &str) -> bool {
    module == "numpy" || module.starts_with("numpy.") || module == "_codecs"
}

/// Whether a node is a numpy placeholder that a BUILD completes ([`build`]).
pub(super) fn is_buildable(node: &Node) -> bool {
    matches!(node, Node::NpDtype { .. } | Node::NpArray { .. })
}

/// Scalar dtype codes as numpy pickles them (`dtype.str` without the byte order).
const CODES: [&str; 9] = ["f8", "f4", "f2", "i8", "i4", "i2", "i1", "u1", "b1"];

/// The default byte order of a dtype before its BUILD (numpy's native, read as little).
const NATIVE: char = '=';

fn code_size(code: &str) -> usize {
    // Every code in CODES ends in its size in bytes.
    code[1..].parse().unwrap_or(0)
}

/// The result of REDUCE `module.name(*args)` for an allowed numpy / codecs global.
pub(super) fn reduce(
    nodes: &[Node],
    module: &str,
    name: &str,
    args: Id,
) -> Result<Node, NumpyError> {
    let Node::Tuple(items) = &nodes[args] else {
        return Err(NumpyError::NoArguments {
            module: module.to_string(),
            name: name.to_string(),
        });
    };
    let arg = |i: usize| &nodes[items[i]];
    match (module, name) {
        ("_codecs", "encode") => {
            let (Some(Node::Str(text)), Some(Node::Str(encoding)), 2) = (
                items.first().map(|&i| &nodes[i]),
                items.get(1).map(|&i| &nodes[i]),
                items.len(),
            ) else {
                return Err(NumpyError::EncodeArguments);
            };
            if !(encoding.eq_ignore_ascii_case("latin1")
                || encoding.eq_ignore_ascii_case("latin-1"))
            {
                return Err(NumpyError::Encoding(encoding.clone()));
            }
            let mut bytes = Vec::with_capacity(text.len());
            for c in text.chars() {
                match u8::try_from(u32::from(c)) {
                    Ok(b) => bytes.push(b),
                    Err(_) => return Err(NumpyError::NotLatin1(u32::from(c))),
                }
            }
            Ok(Node::Bytes(bytes))
        }
        ("numpy", "dtype") => {
            let flags_ok = items[1.min(items.len())..]
                .iter()
                .all(|&i| matches!(nodes[i], Node::Bool(_) | Node::Int(0 | 1)));
            match items.first().and_then(|&i| text(&nodes[i])) {
                Some(code) if items.len() <= 3 && flags_ok => {
                    if CODES.contains(&code) {
                        Ok(Node::NpDtype {
                            code: code.to_string(),
                            order: NATIVE,
                        })
                    } else {
                        Err(NumpyError::Dtype {
                            code: code.to_string(),
                        })
                    }
                }
                _ => Err(NumpyError::DtypeArguments),
            }
        }
        (_, "scalar") => match (items.len(), items.first().map(|&i| &nodes[i])) {
            (2, Some(Node::NpDtype { code, order })) => match arg(1) {
                Node::Bytes(b) => scalar(code, *order, b),
                other => Err(NumpyError::ScalarData {
                    code: code.clone(),
                    found: describe(other),
                }),
            },
            _ => Err(NumpyError::ScalarArguments {
                module: module.to_string(),
            }),
        },
        (_, "_reconstruct") => match items.first().map(|&i| &nodes[i]) {
            Some(Node::Global { module: m, name: n })
                if items.len() == 3 && m == "numpy" && n == "ndarray" =>
            {
                Ok(Node::NpArray {
                    module: module.to_string(),
                })
            }
            _ => Err(NumpyError::ReconstructArguments {
                module: module.to_string(),
            }),
        },
        _ => Err(NumpyError::Call {
            module: module.to_string(),
            name: name.to_string(),
        }),
    }
}

/// A string argument: a `str`, or a Python 2 `str` read as ASCII bytes.
fn text(node: &Node) -> Option<&str> {
    match node {
        Node::Str(s) => Some(s),
        Node::Bytes(b) => std::str::from_utf8(b).ok().filter(|s| s.is_ascii()),
        _ => None,
    }
}

/// The node a BUILD with `state` turns the numpy placeholder `target` into; with `arrays`, an
/// array with elements becomes [`Node::NpData`] instead of an error.
pub(super) fn build(
    nodes: &[Node],
    target: Id,
    state: Id,
    arrays: bool,
) -> Result<Node, NumpyError> {
    let Node::Tuple(items) = &nodes[state] else {
        return Err(NumpyError::BuildState {
            found: describe(&nodes[state]),
        });
    };
    let items: Vec<&Node> = items.iter().map(|&i| &nodes[i]).collect();
    match &nodes[target] {
        // (version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata])
        Node::NpDtype { code, .. } => {
            if !(8..=9).contains(&items.len()) || !matches!(items[0], Node::Int(_)) {
                return Err(NumpyError::DtypeState {
                    code: code.clone(),
                    items: items.len(),
                });
            }
            if !items[2..5].iter().all(|n| matches!(n, Node::None)) {
                return Err(NumpyError::Structured { code: code.clone() });
            }
            let order = match (items[1], text(items[1])) {
                (_, Some(s)) if matches!(s, "<" | ">" | "|" | "=") => {
                    s.chars().next().unwrap_or(NATIVE)
                }
                (_, Some(s)) => {
                    return Err(NumpyError::ByteOrder {
                        code: code.clone(),
                        order: s.to_string(),
                    })
                }
                (other, None) => {
                    return Err(NumpyError::ByteOrderType {
                        code: code.clone(),
                        found: describe(other),
                    })
                }
            };
            Ok(Node::NpDtype {
                code: code.clone(),
                order,
            })
        }
        // (version, shape, dtype, is_fortran, raw data)
        Node::NpArray { module } => {
            let [_, Node::Tuple(shape), Node::NpDtype { code, order }, _, data] = items.as_slice()
            else {
                return Err(NumpyError::ArrayState {
                    module: module.clone(),
                });
            };
            if !shape.is_empty() {
                if arrays {
                    return array(code, *order, shape, items[3], data, nodes);
                }
                let dims: Vec<String> = shape
                    .iter()
                    .map(|&i| match &nodes[i] {
                        Node::Int(d) => d.to_string(),
                        _ => "?".into(),
                    })
                    .collect();
                return Err(NumpyError::ArrayShape { dims });
            }
            match data {
                Node::Bytes(b) => scalar(code, *order, b),
                other => Err(NumpyError::ArrayData {
                    code: code.clone(),
                    found: describe(other),
                }),
            }
        }
        _ => Err(NumpyError::BuildTarget),
    }
}

/// An array with elements (`shape`: the ids of its dimensions) of dtype
/// `code` from its raw bytes, checked against its shape and turned little-endian.
fn array(
    code: &str,
    order: char,
    shape: &[Id],
    fortran: &Node,
    data: &Node,
    nodes: &[Node],
) -> Result<Node, NumpyError> {
    if !matches!(fortran, Node::Bool(false) | Node::Int(0)) {
        return Err(NumpyError::Fortran);
    }
    let Node::Bytes(raw) = data else {
        return Err(NumpyError::ArrayData {
            code: code.to_string(),
            found: describe(data),
        });
    };
    let size = code_size(code);
    let mut extents = Vec::with_capacity(shape.len());
    let mut want = size as u64;
    for &i in shape {
        match &nodes[i] {
            Node::Int(d) if *d >= 0 => {
                extents.push(*d as usize);
                want = want.saturating_mul(*d as u64);
            }
            _ => want = u64::MAX,
        }
    }
    if want != raw.len() as u64 {
        return Err(NumpyError::ArraySize {
            code: code.to_string(),
            len: raw.len(),
            want,
        });
    }
    let mut data = raw.clone();
    if order == '>' && size > 1 {
        data.chunks_exact_mut(size).for_each(|c| c.reverse());
    }
    Ok(Node::NpData {
        code: code.to_string(),
        shape: extents,
        data,
    })
}

/// A scalar of dtype `code` (one of [`CODES`]) from exactly its raw bytes.
fn scalar(code: &str, order: char, raw: &[u8]) -> Result<Node, NumpyError> {
    let size = code_size(code);
    if raw.len() != size {
        return Err(NumpyError::ScalarSize {
            code: code.to_string(),
            len: raw.len(),
            size,
        });
    }
    let mut le = [0u8; 8];
    le[..size].copy_from_slice(raw);
    if order == '>' {
        le[..size].reverse();
    }
    let u = u64::from_le_bytes(le);
    // Sign-extends the low `size` bytes.
    let signed = |bits: u32| ((u << (64 - bits)) as i64) >> (64 - bits);
    Ok(match code {
        "f8" => Node::Float(f64::from_bits(u)),
        "f4" => Node::Float(f32::from_bits(u as u32) as f64),
        "f2" => Node::Float(half::f16::from_bits(u as u16).to_f64()),
        "i8" | "i4" | "i2" | "i1" => Node::Int(signed(8 * size as u32)),
        "u1" => Node::Int(u as i64),
        "b1" => Node::Bool(u != 0),
        _ => {
            return Err(NumpyError::ScalarDtype {
                code: code.to_string(),
            })
        }
    })
}

fn describe(node: &Node) -> &'static str {
    match node {
        Node::None => "None",
        Node::Bool(_) => "a bool",
        Node::Int(_) => "an int",
        Node::Float(_) => "a float",
        Node::Str(_) => "a str",
        Node::Bytes(_) => "bytes",
        Node::Tuple(_) => "a tuple",
        Node::List(_) | Node::Set(_) => "a list",
        Node::Dict(_) => "a dict",
        Node::Global { .. } => "a global",
        Node::Reduce { .. } | Node::Object { .. } => "an object",
        Node::PersistentId(_) => "a persistent id",
        Node::NpDtype { .. } => "a numpy dtype",
        Node::NpArray { .. } | Node::NpData { .. } => "a numpy array",
    }
}

#[cfg(test)]
mod tests {
    use super::super::{is_allowed_global, parse, PickleError, Value};

    #[test]
    fn allow_list_is_exact() {
        for (m, n) in [
            ("numpy", "dtype"),
            ("numpy", "ndarray"),
            ("numpy._core.multiarray", "scalar"),
            ("numpy.core.multiarray", "_reconstruct"),
            ("_codecs", "encode"),
        ] {
            assert!(is_allowed_global(m, n), "{m}.{n}");
        }
        for (m, n) in [
            ("numpy", "load"),
            ("numpy", "frombuffer"),
            ("numpy.testing._private.utils", "runstring"),
            ("numpy._core.multiarray", "frombuffer"),
            ("numpy.core.numeric", "_frombuffer"),
            ("numpy.lib.npyio", "load"),
            ("_codecs", "decode"),
            ("codecs", "encode"),
        ] {
            assert!(!is_allowed_global(m, n), "{m}.{n}");
        }
    }

    /// `pickle.dumps(x, protocol=2)` bytes of a numpy scalar, with the dtype code, byte order and
    /// latin-1 string of raw bytes substituted.
    fn p2_scalar(module: &str, code: &str, order: &str, latin1: &str, encoding: &str) -> Vec<u8> {
        let mut p = b"\x80\x02c".to_vec();
        p.extend_from_slice(module.as_bytes());
        p.extend_from_slice(b"\nscalar\ncnumpy\ndtype\n");
        let s = |p: &mut Vec<u8>, s: &str| {
            p.push(b'X');
            p.extend_from_slice(&(s.len() as u32).to_le_bytes());
            p.extend_from_slice(s.as_bytes());
        };
        s(&mut p, code);
        p.extend_from_slice(b"\x89\x88\x87R(K\x03");
        s(&mut p, order);
        p.extend_from_slice(b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tbc_codecs\nencode\n");
        s(&mut p, latin1);
        s(&mut p, encoding);
        p.extend_from_slice(b"\x86R\x86R.");
        p
    }

    fn latin1(bytes: &[u8]) -> String {
        bytes.iter().map(|&b| b as char).collect()
    }

    #[test]
    fn protocol2_scalars_of_every_dtype() {
        let m = "numpy._core.multiarray";
        let cases: Vec<(&str, &str, Vec<u8>, Value)> = vec![
            ("f8", "<", 2.5f64.to_le_bytes().to_vec(), Value::Float(2.5)),
            ("f8", ">", 2.5f64.to_be_bytes().to_vec(), Value::Float(2.5)),
            (
                "f8",
                "=",
                (-0.1f64).to_le_bytes().to_vec(),
                Value::Float(-0.1),
            ),
            (
                "f4",
                "<",
                (-1.25f32).to_le_bytes().to_vec(),
                Value::Float(-1.25),
            ),
            ("f4", ">", 3.5f32.to_be_bytes().to_vec(), Value::Float(3.5)),
            ("f2", "<", vec![0x00, 0x3e], Value::Float(1.5)),
            ("i8", "<", (-5i64).to_le_bytes().to_vec(), Value::Int(-5)),
            ("i4", ">", (-7i32).to_be_bytes().to_vec(), Value::Int(-7)),
            (
                "i2",
                "<",
                (-300i16).to_le_bytes().to_vec(),
                Value::Int(-300),
            ),
            ("i1", "|", vec![0xff], Value::Int(-1)),
            ("u1", "|", vec![0xff], Value::Int(255)),
            ("b1", "|", vec![1], Value::Bool(true)),
        ];
        for (code, order, raw, want) in cases {
            let p = p2_scalar(m, code, order, &latin1(&raw), "latin1");
            assert_eq!(parse(&p), Ok(want), "{code} {order}");
        }
        // numpy 1.x module name, 'latin-1' spelling.
        let p = p2_scalar(
            "numpy.core.multiarray",
            "f8",
            "<",
            &latin1(&4.0f64.to_le_bytes()),
            "latin-1",
        );
        assert_eq!(parse(&p), Ok(Value::Float(4.0)));
    }

    fn unsupported(p: &[u8]) -> String {
        match parse(p) {
            Err(e @ PickleError::Unsupported { .. }) => e.to_string(),
            other => panic!("expected an unsupported-content error, got {other:?}"),
        }
    }

    #[test]
    fn other_dtypes_encodings_and_sizes_are_errors() {
        let m = "numpy._core.multiarray";
        let raw = latin1(&2.5f64.to_le_bytes());
        let e = unsupported(&p2_scalar(m, "u8", "<", &raw, "latin1"));
        assert!(
            e.contains("numpy.dtype(\"u8\")") && e.contains("f8 f4"),
            "{e}"
        );
        let e = unsupported(&p2_scalar(m, "O8", "|", &raw, "latin1"));
        assert!(e.contains("O8"), "{e}");
        let e = unsupported(&p2_scalar(m, "f8", "<", &raw, "utf-8"));
        assert!(e.contains("utf-8"), "{e}");
        let e = unsupported(&p2_scalar(m, "f8", "<", "\u{100}xxxxxxx", "latin1"));
        assert!(e.contains("U+0100"), "{e}");
        let e = unsupported(&p2_scalar(m, "f8", "<", "abc", "latin1"));
        assert!(e.contains("3 bytes") && e.contains("instead of 8"), "{e}");
        let e = unsupported(&p2_scalar(m, "f8", "?", &raw, "latin1"));
        assert!(e.contains("byte order"), "{e}");
        // Not on the allow-list at all.
        let e = parse(&p2_scalar("numpy.testing", "f8", "<", &raw, "latin1")).unwrap_err();
        assert!(matches!(e, PickleError::ForbiddenGlobal { .. }), "{e}");
        // A structured dtype state (names given).
        let mut p = p2_scalar(m, "f8", "<", &raw, "latin1");
        let at = p.windows(3).position(|w| w == b"NNN").unwrap();
        p[at + 1] = b')';
        let e = unsupported(&p);
        assert!(e.contains("structured"), "{e}");
    }

    #[test]
    fn zero_d_arrays_but_not_larger_ones() {
        // pickle.dumps(numpy.array(2.5), protocol=2)
        let mut p = b"\x80\x02cnumpy._core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85\
                      c_codecs\nencode\nX\x01\x00\x00\x00bX\x06\x00\x00\x00latin1\x86R\x87R\
                      (K\x01)cnumpy\ndtype\nX\x02\x00\x00\x00f8\x89\x88\x87R\
                      (K\x03X\x01\x00\x00\x00<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\
                      \x89c_codecs\nencode\nX\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00\x04@\
                      X\x06\x00\x00\x00latin1\x86Rtb."
            .to_vec();
        assert_eq!(parse(&p), Ok(Value::Float(2.5)));
        // Shape (1,) instead of ().
        let at = p.windows(3).position(|w| w == b"K\x01)").unwrap();
        p.splice(at + 2..at + 3, *b"K\x01\x85");
        let e = unsupported(&p);
        assert!(e.contains("shape (1)") && e.contains("0-d"), "{e}");
        // Calling numpy.ndarray itself, or a dtype, is refused.
        let e = unsupported(b"\x80\x02cnumpy\nndarray\n)R.");
        assert!(e.contains("numpy.ndarray"), "{e}");
        let e = unsupported(b"\x80\x02cnumpy\ndtype\n)\x81.");
        assert!(e.contains("numpy.dtype"), "{e}");
    }
}
