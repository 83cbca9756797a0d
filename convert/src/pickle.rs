//! An inert pickle interpreter for the opcode subset torch and libtorch write (protocols 2–4,
//! `docs/CHECKPOINTS.md` "Pickle subset").
//!
//! Nothing is ever executed: GLOBAL / STACK_GLOBAL produce [`Value::Global`] data after an
//! allow-list check (anything else, e.g. `os.system`, is [`PickleError::ForbiddenGlobal`]), REDUCE
//! produces [`Value::Reduce`] (except `collections.OrderedDict()`, which *is* an empty dict so that
//! SETITEMS can fill it), NEWOBJ + BUILD produce [`Value::Object`], BINPERSID produces
//! [`Value::PersistentId`]. Interpreting those (tensor rebuilds, storages) is the caller's job.
//! The one exception is numpy scalars (`numpy.float64` min/max in the authors' decoder files):
//! the [`numpy`] submodule recognises their exact call shapes (`numpy.dtype`,
//! `numpy[._]core.multiarray.scalar` / `_reconstruct`, `_codecs.encode` with latin-1) and turns
//! them into plain [`Value::Float`] / [`Value::Int`] / [`Value::Bool`], again without calling
//! anything.
//!
//! Values live in an arena while the machine runs, so the memo shares them exactly as Python does
//! (a dict fetched by BINGET and then filled is the same dict); the result is then materialised
//! into an owned tree, with a nesting limit (which also stops cyclic structures) and a total-size
//! budget proportional to the input (which stops "billion laughs" memo expansion). Every length is
//! checked against the remaining input; malformed input is an error, never a panic.

use std::collections::HashMap;

mod numpy;

pub use numpy::NumpyError;

/// A pickled value, inert.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Value>),
    /// A list (sets and frozensets are also returned as lists).
    List(Vec<Value>),
    /// Key/value pairs in insertion order (duplicates are kept; the consumer decides).
    Dict(Vec<(Value, Value)>),
    /// A reference to an allow-listed global (`module`, `name`).
    Global {
        module: String,
        name: String,
    },
    /// `func(*args)`, not called.
    Reduce {
        func: Box<Value>,
        args: Box<Value>,
    },
    /// `cls.__new__(cls, *args)` followed by an optional BUILD `state`, not called.
    Object {
        class: Box<Value>,
        args: Box<Value>,
        state: Option<Box<Value>>,
    },
    /// The argument of BINPERSID (for torch: `('storage', StorageClass, key, location, numel)`).
    PersistentId(Box<Value>),
    /// A numpy array with elements, read as data ([`parse_with_arrays`] only): its dtype code
    /// (`u1`, `i8`, `f4`, ...), shape, and elements in C order as little-endian bytes.
    Array {
        dtype: String,
        shape: Vec<usize>,
        data: Vec<u8>,
    },
}

impl Value {
    /// `Some((module, name))` for a global.
    pub fn as_global(&self) -> Option<(&str, &str)> {
        match self {
            Value::Global { module, name } => Some((module, name)),
            _ => None,
        }
    }
    /// A short description for error messages.
    pub fn kind(&self) -> String {
        match self {
            Value::None => "None".into(),
            Value::Bool(_) => "bool".into(),
            Value::Int(_) => "int".into(),
            Value::Float(_) => "float".into(),
            Value::Str(_) => "str".into(),
            Value::Bytes(_) => "bytes".into(),
            Value::Tuple(v) => format!("tuple of {}", v.len()),
            Value::List(v) => format!("list of {}", v.len()),
            Value::Dict(v) => format!("dict of {}", v.len()),
            Value::Global { module, name } => format!("global {module}.{name}"),
            Value::Reduce { func, .. } => format!("call of {}", func.kind()),
            Value::Object { class, .. } => format!("object of {}", class.kind()),
            Value::PersistentId(_) => "persistent id".into(),
            Value::Array { dtype, shape, .. } => format!("numpy {dtype} array of shape {shape:?}"),
        }
    }
}

/// Why a pickle was rejected. The caller adds the file and entry name.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PickleError {
    #[error("malformed pickle at byte {pos}: {msg}")]
    Malformed { pos: usize, msg: String },
    #[error(
        "refusing to load: the pickle references the global `{module}.{name}` (byte {pos}), which \
         is not on the allow-list (torch tensor/storage rebuild functions, collections.OrderedDict, \
         TorchScript __torch__ modules, numpy scalars); nothing was executed"
    )]
    ForbiddenGlobal {
        pos: usize,
        module: String,
        name: String,
    },
    /// An allow-listed global used in a way the interpreter does not read (e.g. a numpy array
    /// with elements, a structured numpy dtype).
    #[error("unsupported pickle content at byte {pos}: {content}; nothing was executed")]
    Unsupported { pos: usize, content: NumpyError },
}

/// Names torch pickles as `torch.<dtype>` (for `_rebuild_tensor_v3`); supported or not, they are
/// harmless, and accepting them lets the tensor reader report "unsupported dtype" precisely.
const TORCH_DTYPES: &[&str] = &[
    "float32",
    "float",
    "float16",
    "half",
    "bfloat16",
    "float64",
    "double",
    "int64",
    "long",
    "int32",
    "int",
    "int16",
    "short",
    "int8",
    "uint8",
    "bool",
    "uint16",
    "uint32",
    "uint64",
    "complex32",
    "complex64",
    "complex128",
    "cfloat",
    "cdouble",
    "chalf",
    "float8_e4m3fn",
    "float8_e5m2",
    "float8_e4m3fnuz",
    "float8_e5m2fnuz",
    "float8_e8m0fnu",
    "float4_e2m1fn_x2",
    "qint8",
    "quint8",
    "qint32",
    "quint4x2",
    "quint2x4",
];

/// The allow-list of globals a checkpoint may reference (CHECKPOINTS.md "Pickle subset").
pub fn is_allowed_global(module: &str, name: &str) -> bool {
    let identifier =
        |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    match module {
        "torch._utils" => matches!(
            name,
            "_rebuild_tensor_v2"
                | "_rebuild_tensor_v3"
                | "_rebuild_parameter"
                | "_rebuild_parameter_with_state"
        ),
        "collections" => name == "OrderedDict",
        "torch" => {
            (name.len() > 7 && name.ends_with("Storage") && identifier(name))
                || TORCH_DTYPES.contains(&name)
        }
        "torch.storage" => name == "UntypedStorage",
        m if numpy::handles(m) => numpy::is_allowed(m, name),
        m => {
            (m == "__torch__" || m.starts_with("__torch__."))
                && identifier(name)
                && m.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        }
    }
}

/// Parses one pickle (up to its STOP opcode) into an inert value tree. numpy arrays with
/// elements are refused (checkpoints store tensors as torch tensors).
pub fn parse(data: &[u8]) -> Result<Value, PickleError> {
    Machine::new(data, false).run()
}

/// [`parse`], but numpy arrays of the plain numeric dtypes become [`Value::Array`] (for data
/// sets pickled with numpy, such as CIFAR-10's python batches). Still nothing is executed.
pub fn parse_with_arrays(data: &[u8]) -> Result<Value, PickleError> {
    Machine::new(data, true).run()
}

type Id = usize;

/// Arena node: like [`Value`] but children are arena ids, so memo entries are shared.
enum Node {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Id>),
    List(Vec<Id>),
    Set(Vec<Id>),
    Dict(Vec<(Id, Id)>),
    Global {
        module: String,
        name: String,
    },
    Reduce {
        func: Id,
        args: Id,
    },
    Object {
        class: Id,
        args: Id,
        state: Option<Id>,
    },
    PersistentId(Id),
    /// `numpy.dtype(code, ..)` with the byte order of its BUILD (`=` until then); see [`numpy`].
    NpDtype {
        code: String,
        order: char,
    },
    /// `<module>._reconstruct(numpy.ndarray, ..)` awaiting the BUILD that makes it a scalar
    /// (or, with arrays allowed, an [`Node::NpData`]).
    NpArray {
        module: String,
    },
    /// A numpy array with elements: dtype code, shape, little-endian C-order bytes.
    NpData {
        code: String,
        shape: Vec<usize>,
        data: Vec<u8>,
    },
}

/// Maximum nesting depth of the materialised tree (state dicts nest < 10 deep).
const MAX_DEPTH: usize = 100;

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    /// Position of the opcode being executed (for messages).
    op_pos: usize,
    nodes: Vec<Node>,
    stack: Vec<Id>,
    /// Stack lengths at each MARK.
    marks: Vec<usize>,
    memo: HashMap<u32, Id>,
    /// numpy arrays with elements are read as data ([`parse_with_arrays`]).
    arrays: bool,
}

impl<'a> Machine<'a> {
    fn new(data: &'a [u8], arrays: bool) -> Self {
        Machine {
            arrays,
            data,
            pos: 0,
            op_pos: 0,
            nodes: Vec::new(),
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
        }
    }

    fn bad<T>(&self, msg: impl Into<String>) -> Result<T, PickleError> {
        Err(PickleError::Malformed {
            pos: self.op_pos,
            msg: msg.into(),
        })
    }
    fn unsupported(&self, content: NumpyError) -> PickleError {
        PickleError::Unsupported {
            pos: self.op_pos,
            content,
        }
    }
    /// The module and name if `id` is a global that [`numpy`] interprets.
    fn numpy_global(&self, id: Id) -> Option<(String, String)> {
        match &self.nodes[id] {
            Node::Global { module, name } if numpy::handles(module) => {
                Some((module.clone(), name.clone()))
            }
            _ => None,
        }
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], PickleError> {
        let left = (self.data.len() - self.pos) as u64;
        if n > left {
            return self.bad(format!(
                "needs {n} bytes but only {left} remain (truncated?)"
            ));
        }
        let s = &self.data[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, PickleError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, PickleError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, PickleError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, PickleError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn line(&mut self) -> Result<String, PickleError> {
        let rest = &self.data[self.pos..];
        let Some(n) = rest.iter().position(|&b| b == b'\n') else {
            return self.bad("GLOBAL name without a terminating newline");
        };
        let s = std::str::from_utf8(&rest[..n])
            .or_else(|_| self.bad("GLOBAL name is not UTF-8"))?
            .to_string();
        self.pos += n + 1;
        Ok(s)
    }
    fn utf8(&mut self, n: u64) -> Result<Node, PickleError> {
        let b = self.take(n)?;
        match std::str::from_utf8(b) {
            Ok(s) => Ok(Node::Str(s.to_string())),
            Err(_) => self.bad("string is not valid UTF-8"),
        }
    }
    fn bytes(&mut self, n: u64) -> Result<Node, PickleError> {
        Ok(Node::Bytes(self.take(n)?.to_vec()))
    }
    /// Little-endian two's-complement integer of `n` bytes (LONG1 / LONG4).
    fn long(&mut self, n: u64) -> Result<Node, PickleError> {
        if n > 8 {
            return self.bad(format!("{n}-byte integer does not fit in 64 bits"));
        }
        let b = self.take(n)?;
        let mut a = if b.last().is_some_and(|&x| x & 0x80 != 0) {
            [0xffu8; 8]
        } else {
            [0u8; 8]
        };
        a[..b.len()].copy_from_slice(b);
        Ok(Node::Int(i64::from_le_bytes(a)))
    }

    fn push(&mut self, node: Node) {
        self.nodes.push(node);
        self.stack.push(self.nodes.len() - 1);
    }
    fn floor(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }
    fn pop(&mut self) -> Result<Id, PickleError> {
        if self.stack.len() <= self.floor() {
            return self.bad("stack underflow");
        }
        Ok(self.stack.pop().unwrap_or_default())
    }
    fn top(&self) -> Result<Id, PickleError> {
        if self.stack.len() <= self.floor() {
            return self.bad("stack underflow");
        }
        Ok(self.stack[self.stack.len() - 1])
    }
    fn pop_mark(&mut self) -> Result<Vec<Id>, PickleError> {
        let Some(m) = self.marks.pop() else {
            return self.bad("no MARK on the stack");
        };
        Ok(self.stack.split_off(m))
    }
    fn global(&mut self, module: String, name: String) -> Result<(), PickleError> {
        if !is_allowed_global(&module, &name) {
            return Err(PickleError::ForbiddenGlobal {
                pos: self.op_pos,
                module,
                name,
            });
        }
        self.push(Node::Global { module, name });
        Ok(())
    }
    fn memo_put(&mut self, key: u32) -> Result<(), PickleError> {
        let top = self.top()?;
        self.memo.insert(key, top);
        Ok(())
    }
    fn memo_get(&mut self, key: u32) -> Result<(), PickleError> {
        match self.memo.get(&key) {
            Some(&id) => {
                self.stack.push(id);
                Ok(())
            }
            None => self.bad(format!("memo key {key} was never stored")),
        }
    }
    fn str_of(&self, id: Id) -> Result<String, PickleError> {
        match &self.nodes[id] {
            Node::Str(s) => Ok(s.clone()),
            _ => self.bad("STACK_GLOBAL needs two strings"),
        }
    }
    fn set_items(&mut self, target: Id, items: Vec<Id>) -> Result<(), PickleError> {
        if items.len() % 2 == 1 {
            return self.bad("SETITEMS with an odd number of items");
        }
        let pairs = items.chunks_exact(2).map(|p| (p[0], p[1]));
        match &mut self.nodes[target] {
            Node::Dict(d) => {
                d.extend(pairs);
                Ok(())
            }
            _ => self.bad("SETITEM(S) on something that is not a dict"),
        }
    }
    fn append_items(&mut self, target: Id, items: Vec<Id>, set: bool) -> Result<(), PickleError> {
        match (&mut self.nodes[target], set) {
            (Node::List(l), false) | (Node::Set(l), true) => {
                l.extend(items);
                Ok(())
            }
            _ => self.bad(if set {
                "ADDITEMS on something that is not a set"
            } else {
                "APPEND(S) on something that is not a list"
            }),
        }
    }

    fn run(mut self) -> Result<Value, PickleError> {
        loop {
            self.op_pos = self.pos;
            if self.pos >= self.data.len() {
                return self.bad("input ends without a STOP opcode (truncated?)");
            }
            let op = self.u8()?;
            match op {
                0x80 => {
                    // PROTO
                    let p = self.u8()?;
                    if p > 5 {
                        return self.bad(format!("unsupported pickle protocol {p}"));
                    }
                }
                0x95 => {
                    // FRAME: just a length hint; it must fit.
                    let n = self.u64()?;
                    if n > (self.data.len() - self.pos) as u64 {
                        return self
                            .bad(format!("FRAME of {n} bytes runs past the end (truncated?)"));
                    }
                }
                b'.' => {
                    let top = self.pop()?;
                    let mut budget = 16 * self.data.len() + 1024;
                    return self.materialise(top, 0, &mut budget);
                }
                b'(' => self.marks.push(self.stack.len()),
                b')' => self.push(Node::Tuple(Vec::new())),
                b't' => {
                    let items = self.pop_mark()?;
                    self.push(Node::Tuple(items));
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    if self.stack.len() < self.floor() + n {
                        return self.bad("stack underflow");
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.push(Node::Tuple(items));
                }
                b']' => self.push(Node::List(Vec::new())),
                b'l' => {
                    let items = self.pop_mark()?;
                    self.push(Node::List(items));
                }
                b'a' => {
                    let v = self.pop()?;
                    let l = self.top()?;
                    self.append_items(l, vec![v], false)?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    let l = self.top()?;
                    self.append_items(l, items, false)?;
                }
                b'}' => self.push(Node::Dict(Vec::new())),
                b'd' => {
                    let items = self.pop_mark()?;
                    self.push(Node::Dict(Vec::new()));
                    let d = self.top()?;
                    self.set_items(d, items)?;
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    let d = self.top()?;
                    self.set_items(d, vec![k, v])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    let d = self.top()?;
                    self.set_items(d, items)?;
                }
                0x8f => self.push(Node::Set(Vec::new())),
                0x90 => {
                    let items = self.pop_mark()?;
                    let s = self.top()?;
                    self.append_items(s, items, true)?;
                }
                0x91 => {
                    let items = self.pop_mark()?;
                    self.push(Node::Set(items));
                }
                b'N' => self.push(Node::None),
                0x88 => self.push(Node::Bool(true)),
                0x89 => self.push(Node::Bool(false)),
                b'J' => {
                    let v = self.u32()? as i32;
                    self.push(Node::Int(v as i64));
                }
                b'K' => {
                    let v = self.u8()?;
                    self.push(Node::Int(v as i64));
                }
                b'M' => {
                    let v = self.u16()?;
                    self.push(Node::Int(v as i64));
                }
                0x8a => {
                    let n = self.u8()? as u64;
                    let v = self.long(n)?;
                    self.push(v);
                }
                0x8b => {
                    let n = self.u32()? as u64;
                    let v = self.long(n)?;
                    self.push(v);
                }
                b'G' => {
                    let b = self.take(8)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    self.push(Node::Float(f64::from_be_bytes(a)));
                }
                b'X' => {
                    let n = self.u32()? as u64;
                    let v = self.utf8(n)?;
                    self.push(v);
                }
                0x8c => {
                    let n = self.u8()? as u64;
                    let v = self.utf8(n)?;
                    self.push(v);
                }
                0x8d => {
                    let n = self.u64()?;
                    let v = self.utf8(n)?;
                    self.push(v);
                }
                b'B' => {
                    let n = self.u32()? as u64;
                    let v = self.bytes(n)?;
                    self.push(v);
                }
                b'C' => {
                    let n = self.u8()? as u64;
                    let v = self.bytes(n)?;
                    self.push(v);
                }
                // SHORT_BINSTRING / BINSTRING: a Python 2 `str`, read as bytes (as Python 3's
                // `pickle.load(f, encoding="bytes")` does).
                b'U' => {
                    let n = self.u8()? as u64;
                    let v = self.bytes(n)?;
                    self.push(v);
                }
                b'T' => {
                    let n = self.u32()?;
                    if n > i32::MAX as u32 {
                        return self.bad("BINSTRING with a negative length");
                    }
                    let v = self.bytes(n as u64)?;
                    self.push(v);
                }
                0x8e => {
                    let n = self.u64()?;
                    let v = self.bytes(n)?;
                    self.push(v);
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.global(module, name)?;
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (module, name) = (self.str_of(module)?, self.str_of(name)?);
                    self.global(module, name)?;
                }
                b'R' => {
                    let args = self.pop()?;
                    let func = self.pop()?;
                    let is_odict = matches!(&self.nodes[func],
                        Node::Global { module, name } if module == "collections" && name == "OrderedDict");
                    if let Some((module, name)) = self.numpy_global(func) {
                        let node = numpy::reduce(&self.nodes, &module, &name, args)
                            .map_err(|m| self.unsupported(m))?;
                        self.push(node);
                    } else if is_odict {
                        // OrderedDict() is an empty dict that SETITEMS fills; anything else is odd.
                        if !matches!(&self.nodes[args], Node::Tuple(a) if a.is_empty()) {
                            return self.bad("collections.OrderedDict called with arguments");
                        }
                        self.push(Node::Dict(Vec::new()));
                    } else {
                        self.push(Node::Reduce { func, args });
                    }
                }
                0x81 | 0x92 => {
                    // NEWOBJ / NEWOBJ_EX (keyword arguments are dropped: torch writes none).
                    if op == 0x92 {
                        self.pop()?;
                    }
                    let args = self.pop()?;
                    let class = self.pop()?;
                    if !matches!(self.nodes[class], Node::Global { .. }) {
                        return self.bad("NEWOBJ on something that is not a class");
                    }
                    if let Some((module, name)) = self.numpy_global(class) {
                        return Err(self.unsupported(NumpyError::NewObject { module, name }));
                    }
                    self.push(Node::Object {
                        class,
                        args,
                        state: None,
                    });
                }
                b'b' => {
                    let state = self.pop()?;
                    let obj = self.top()?;
                    if numpy::is_buildable(&self.nodes[obj]) {
                        // Replaced in place: memo references see the completed value.
                        self.nodes[obj] = numpy::build(&self.nodes, obj, state, self.arrays)
                            .map_err(|m| self.unsupported(m))?;
                        continue;
                    }
                    match &mut self.nodes[obj] {
                        // OrderedDict attributes (`_metadata`) are irrelevant: ignore them.
                        Node::Dict(_) => {}
                        Node::Object { state: s, .. } => *s = Some(state),
                        _ => {
                            return self.bad(
                                "BUILD on something that is neither a dict nor a NEWOBJ object",
                            )
                        }
                    }
                }
                b'Q' => {
                    let pid = self.pop()?;
                    self.push(Node::PersistentId(pid));
                }
                b'q' => {
                    let k = self.u8()? as u32;
                    self.memo_put(k)?;
                }
                b'r' => {
                    let k = self.u32()?;
                    self.memo_put(k)?;
                }
                0x94 => {
                    let k =
                        u32::try_from(self.memo.len()).or_else(|_| self.bad("memo overflow"))?;
                    self.memo_put(k)?;
                }
                b'h' => {
                    let k = self.u8()? as u32;
                    self.memo_get(k)?;
                }
                b'j' => {
                    let k = self.u32()?;
                    self.memo_get(k)?;
                }
                b'0' => {
                    // POP: pops the top item, or the topmost mark when the stack above it is empty.
                    if self.stack.len() > self.floor() {
                        self.stack.pop();
                    } else {
                        self.pop_mark()?;
                    }
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let t = self.top()?;
                    self.stack.push(t);
                }
                other => return self.bad(format!("unsupported opcode 0x{other:02x}")),
            }
        }
    }

    fn materialise(&self, id: Id, depth: usize, budget: &mut usize) -> Result<Value, PickleError> {
        if depth > MAX_DEPTH {
            return self.bad(format!(
                "values nest deeper than {MAX_DEPTH} levels (or refer to themselves)"
            ));
        }
        if *budget == 0 {
            return self
                .bad("shared values expand to more items than the input can plausibly hold");
        }
        *budget -= 1;
        let m = |i: Id, budget: &mut usize| self.materialise(i, depth + 1, budget);
        let seq = |ids: &[Id], budget: &mut usize| -> Result<Vec<Value>, PickleError> {
            ids.iter().map(|&i| m(i, budget)).collect()
        };
        Ok(match &self.nodes[id] {
            Node::None => Value::None,
            Node::Bool(b) => Value::Bool(*b),
            Node::Int(i) => Value::Int(*i),
            Node::Float(f) => Value::Float(*f),
            // Strings and bytes cost their length: a memoized blob fetched many times still
            // materialises at most ~16x the input.
            Node::Str(s) => {
                *budget = budget.saturating_sub(s.len());
                Value::Str(s.clone())
            }
            Node::Bytes(b) => {
                *budget = budget.saturating_sub(b.len());
                Value::Bytes(b.clone())
            }
            Node::Tuple(v) => Value::Tuple(seq(v, budget)?),
            Node::List(v) | Node::Set(v) => Value::List(seq(v, budget)?),
            Node::Dict(pairs) => {
                let mut out = Vec::with_capacity(pairs.len());
                for &(k, v) in pairs {
                    out.push((m(k, budget)?, m(v, budget)?));
                }
                Value::Dict(out)
            }
            Node::Global { module, name } => Value::Global {
                module: module.clone(),
                name: name.clone(),
            },
            Node::Reduce { func, args } => Value::Reduce {
                func: Box::new(m(*func, budget)?),
                args: Box::new(m(*args, budget)?),
            },
            Node::Object { class, args, state } => Value::Object {
                class: Box::new(m(*class, budget)?),
                args: Box::new(m(*args, budget)?),
                state: match state {
                    Some(s) => Some(Box::new(m(*s, budget)?)),
                    None => None,
                },
            },
            Node::PersistentId(p) => Value::PersistentId(Box::new(m(*p, budget)?)),
            // A dtype or an unfinished array left in the tree is shown as the call that made it
            // (consumers reject it as an unsupported call).
            Node::NpDtype { code, order } => Value::Reduce {
                func: Box::new(Value::Global {
                    module: "numpy".into(),
                    name: "dtype".into(),
                }),
                args: Box::new(Value::Tuple(vec![Value::Str(format!("{order}{code}"))])),
            },
            Node::NpData { code, shape, data } => {
                *budget = budget.saturating_sub(data.len());
                Value::Array {
                    dtype: code.clone(),
                    shape: shape.clone(),
                    data: data.clone(),
                }
            }
            Node::NpArray { module } => Value::Reduce {
                func: Box::new(Value::Global {
                    module: module.clone(),
                    name: "_reconstruct".into(),
                }),
                args: Box::new(Value::Tuple(Vec::new())),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol2_dict_with_memo() {
        // {'a': l, 'b': l} with l = [1, 2.5, None], the second fetched back by BINGET.
        let p = b"\x80\x02}q\x00(X\x01\x00\x00\x00a]q\x01(K\x01G@\x04\x00\x00\x00\x00\x00\x00NeX\x01\x00\x00\x00bh\x01u.";
        let v = parse(p).unwrap();
        let list = Value::List(vec![Value::Int(1), Value::Float(2.5), Value::None]);
        assert_eq!(
            v,
            Value::Dict(vec![
                (Value::Str("a".into()), list.clone()),
                (Value::Str("b".into()), list)
            ])
        );
        // Same without the 'b' key: SETITEMS with an odd number of items.
        let p =
            b"\x80\x02}q\x00(X\x01\x00\x00\x00a]q\x01(K\x01G@\x04\x00\x00\x00\x00\x00\x00Neh\x01u.";
        assert!(parse(p).unwrap_err().to_string().contains("odd"));
    }

    #[test]
    fn memo_shares_mutations() {
        // d = {}; l = [d]; d[1] = 2 (after l was built); result (d, l): l[0] sees the update.
        let p = b"\x80\x02}q\x00]q\x01h\x00a0K\x01K\x02sh\x01\x86.";
        let v = parse(p).unwrap();
        let d = Value::Dict(vec![(Value::Int(1), Value::Int(2))]);
        assert_eq!(v, Value::Tuple(vec![d.clone(), Value::List(vec![d])]));
    }

    #[test]
    fn long1_and_negative_ints() {
        let p = b"\x80\x02(J\xff\xff\xff\xff\x8a\x08\xff\xff\xff\xff\xff\xff\xff\x7f\x8a\x01\x80\x8a\x00t.";
        let v = parse(p).unwrap();
        assert_eq!(
            v,
            Value::Tuple(vec![
                Value::Int(-1),
                Value::Int(i64::MAX),
                Value::Int(-128),
                Value::Int(0)
            ])
        );
        assert!(parse(b"\x80\x02\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01.").is_err());
    }

    #[test]
    fn forbidden_globals_are_named() {
        let e = parse(b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00lsR.").unwrap_err();
        assert!(e.to_string().contains("`os.system`"), "{e}");
        let e = parse(b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93.").unwrap_err();
        assert!(e.to_string().contains("builtins.eval"), "{e}");
        assert!(is_allowed_global("torch", "FloatStorage"));
        assert!(is_allowed_global("__torch__", "Module"));
        assert!(!is_allowed_global("torch", "load"));
        assert!(!is_allowed_global("torch._utils", "_rebuild_from_type_v2"));
        assert!(!is_allowed_global("__torch__", "x\ny"));
    }

    #[test]
    fn cycles_and_expansion_are_bounded() {
        // l = []; l.append(l)
        let e = parse(b"\x80\x02]q\x00h\x00a.").unwrap_err();
        assert!(e.to_string().contains("deeper"), "{e}");
        // Each level doubles: a0 = [], a(n+1) = (an, an); 40 levels.
        let mut p = b"\x80\x02]q\x00".to_vec();
        for i in 0..40u8 {
            p.extend_from_slice(&[b'0', b'h', i, b'h', i, 0x86, b'q', i + 1]);
        }
        p.push(b'.');
        let e = parse(&p).unwrap_err();
        assert!(e.to_string().contains("expand"), "{e}");
    }

    #[test]
    fn truncations_never_panic() {
        let p = b"\x80\x04\x95\x0a\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x01x\x94K\x01s.";
        assert!(parse(p).is_ok());
        for n in 0..p.len() {
            assert!(parse(&p[..n]).is_err());
        }
    }

    /// A CIFAR-10 python batch in miniature, opcode for opcode as Python 2's cPickle writes the
    /// real ones (protocol 2, `str` as SHORT_BINSTRING / BINSTRING, the array's data as one
    /// string): `{'data': uint8 array [2, 3], 'labels': [1, 0]}`.
    fn python2_batch(data: &[u8]) -> Vec<u8> {
        let mut p = b"\x80\x02}q\x01(U\x04dataq\x02cnumpy.core.multiarray\n_reconstruct\nq\x03\
cnumpy\nndarray\nq\x04K\x00\x85q\x05U\x01bq\x06\x87q\x07Rq\x08(K\x01K\x02K\x03\x86q\x09\
cnumpy\ndtype\nq\x0aU\x02u1q\x0bK\x00K\x01\x87q\x0cRq\x0d(K\x03U\x01|q\x0eNNNJ\xff\xff\xff\xff\
J\xff\xff\xff\xffK\x00tq\x0fb\x89T"
            .to_vec();
        p.extend_from_slice(&(data.len() as u32).to_le_bytes());
        p.extend_from_slice(data);
        p.extend_from_slice(b"q\x10tq\x11bU\x06labelsq\x12]q\x13(K\x01K\x00eu.");
        p
    }

    #[test]
    fn numpy_arrays_are_data_only_when_asked_for() {
        let p = python2_batch(&[1, 2, 3, 4, 5, 6]);
        let v = parse_with_arrays(&p).unwrap();
        assert_eq!(
            v,
            Value::Dict(vec![
                (
                    Value::Bytes(b"data".to_vec()),
                    Value::Array {
                        dtype: "u1".into(),
                        shape: vec![2, 3],
                        data: vec![1, 2, 3, 4, 5, 6],
                    }
                ),
                (
                    Value::Bytes(b"labels".to_vec()),
                    Value::List(vec![Value::Int(1), Value::Int(0)])
                ),
            ])
        );
        // The converter's reader still refuses arrays with elements.
        let e = parse(&p).unwrap_err();
        assert!(
            e.to_string().contains("shape (2, 3) is not supported"),
            "{e}"
        );
        // Data that does not fill the shape is an error, not a short array.
        let e = parse_with_arrays(&python2_batch(&[1, 2, 3, 4, 5])).unwrap_err();
        assert!(
            e.to_string().contains("5 bytes of data instead of 6"),
            "{e}"
        );
    }
}
