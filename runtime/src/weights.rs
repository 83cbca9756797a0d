//! The weights of a model by tensor name, as the executors read them: f32, or fp16 kept as stored
//! and widened on read. Below the format and every backend: [`crate::model::Model::weights`]
//! hands them out, the reference and the fast CPU backend take them.

use crate::error::{HoodError, Result};
use crate::tensor::{HostTensor, TensorValues};
use half::f16;
use half::slice::HalfFloatSliceExt;
use std::borrow::Cow;
use std::collections::HashMap;

/// One stored weight: f32, or f16 kept as it is stored and widened when read.
#[derive(Debug, Clone)]
enum Stored {
    F32(Vec<f32>),
    F16(Vec<f16>),
}

/// Weights by tensor name, read as f32. fp16 tensors stay fp16 in memory (half the size) and are
/// widened each time [`Weights::get`] reads them: exactly the values `f16::to_f32` gives, so the
/// reference computes the same as on weights widened up front.
#[derive(Debug, Default, Clone)]
pub struct Weights {
    map: HashMap<String, Stored>,
}

impl Weights {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn insert(&mut self, name: impl Into<String>, values: Vec<f32>) {
        self.map.insert(name.into(), Stored::F32(values));
    }
    /// Adds an owned tensor without copying it (i32 tensors are widened to f32).
    pub fn insert_host(&mut self, name: impl Into<String>, t: HostTensor) {
        let stored = match t.values {
            TensorValues::F32(v) => Stored::F32(v),
            TensorValues::F16(v) => Stored::F16(v),
            TensorValues::I32(v) => Stored::F32(v.iter().map(|&x| x as f32).collect()),
        };
        self.map.insert(name.into(), stored);
    }
    pub fn from_host<'a>(tensors: impl IntoIterator<Item = (&'a String, &'a HostTensor)>) -> Self {
        let mut w = Weights::new();
        for (n, t) in tensors {
            w.insert_host(n.clone(), t.clone());
        }
        w
    }
    /// As [`Weights::from_host`], taking the tensors instead of copying them.
    pub fn from_host_owned(tensors: impl IntoIterator<Item = (String, HostTensor)>) -> Self {
        let mut w = Weights::new();
        for (n, t) in tensors {
            w.insert_host(n, t);
        }
        w
    }
    /// The values of `name` as f32: borrowed when stored as f32, widened when stored as f16.
    pub fn get(&self, name: &str) -> Result<Cow<'_, [f32]>> {
        match self.map.get(name) {
            Some(Stored::F32(v)) => Ok(Cow::Borrowed(v.as_slice())),
            Some(Stored::F16(v)) => Ok(Cow::Owned(v.to_f32_vec())),
            None => Err(HoodError::graph(format!("weight '{name}' missing"))),
        }
    }
    /// A copy of `name` as a tensor of `shape`, in the type it is held in (f16 or f32; i32
    /// tensors were widened to f32 when added). `None` if absent or `shape` does not match.
    pub fn host_tensor(&self, name: &str, shape: Vec<usize>) -> Option<HostTensor> {
        let values = match self.map.get(name)? {
            Stored::F32(v) => TensorValues::F32(v.clone()),
            Stored::F16(v) => TensorValues::F16(v.clone()),
        };
        let t = HostTensor { shape, values };
        (t.shape.iter().product::<usize>() == t.len()).then_some(t)
    }
    /// Removes `name` (a consumer that has copied what it needs frees the memory early).
    pub fn remove(&mut self, name: &str) {
        self.map.remove(name);
    }
}
