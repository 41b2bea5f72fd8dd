//! Experiment records in a JavaScript `Map` owned by the page.
//!
//! The page keeps the map, so finished rounds survive a crashed or reloaded wasm instance
//! (a lost WebGPU device, say) and a rerun with the same config resumes after them, exactly
//! as `lth imp` does with its records directory.

use std::collections::BTreeSet;

use js_sys::{Map, Uint8Array};
use lab_core::base::store::{RunStore, StoreError};
use wasm_bindgen::JsCast;

#[derive(Clone)]
pub struct JsStore {
    map: Map,
}

impl JsStore {
    pub fn new(map: Map) -> Self {
        Self { map }
    }

    /// The runs with records, sorted: every key's first segment (lab-core's keys are
    /// `<run>/…`). The page's analyses look for the tickets of its runs.
    pub fn runs(&self) -> Vec<String> {
        let runs: BTreeSet<String> = js_sys::Array::from(&self.map.keys().into())
            .iter()
            .filter_map(|key| Some(key.as_string()?.split_once('/')?.0.to_string()))
            .collect();
        runs.into_iter().collect()
    }
}

impl RunStore for JsStore {
    fn read(&self, key: &str) -> Option<Vec<u8>> {
        let value = self.map.get(&key.into());
        value.dyn_ref::<Uint8Array>().map(Uint8Array::to_vec)
    }

    /// `read`'s answer without copying the record out of the map.
    fn exists(&self, key: &str) -> bool {
        self.map.get(&key.into()).is_instance_of::<Uint8Array>()
    }

    fn write(&mut self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.map.set(&key.into(), &Uint8Array::from(bytes).into());
        Ok(())
    }

    fn remove(&mut self, key: &str) -> Result<(), StoreError> {
        self.map.delete(&key.into());
        Ok(())
    }

    /// A run whose WebGPU device was lost resumes on the CPU from these records (the page's
    /// documented fallback); `<run>/backend` then lists both.
    fn allows_backend_switch(&self) -> bool {
        true
    }
}
