//! Named trainable tensors. A model registers its parameters here in a fixed order with
//! their initial values drawn from the trial's seeded stream; the optimizer and the
//! checkpoints address them by name.

use std::collections::HashMap;

use candle_core::{DType, Device, Result, Tensor, Var};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// The parameters of one model, in registration order.
pub struct Params {
    /// (name, variable) pairs; the order is the order of registration.
    vars: Vec<(String, Var)>,
    /// Device every parameter lives on.
    device: Device,
}

impl Params {
    /// An empty set on `device`.
    pub fn new(device: &Device) -> Self {
        Params {
            vars: Vec::new(),
            device: device.clone(),
        }
    }

    /// Registers a parameter of `shape` drawn uniformly from [-bound, bound]: the
    /// initialisation PyTorch uses for recurrent and linear layers (bound = 1/sqrt(fan_in)).
    pub fn uniform(
        &mut self,
        name: &str,
        shape: &[usize],
        bound: f64,
        rng: &mut ChaCha8Rng,
    ) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        let bound = bound as f32;
        let values: Vec<f32> = (0..n).map(|_| rng.random_range(-bound..=bound)).collect();
        let t = Tensor::from_vec(values, shape, &self.device)?;
        let var = Var::from_tensor(&t)?;
        let out = var.as_tensor().clone();
        self.vars.push((name.to_string(), var));
        Ok(out)
    }

    /// The variables, in registration order.
    pub fn vars(&self) -> &[(String, Var)] {
        &self.vars
    }

    /// Total number of scalar parameters.
    pub fn count(&self) -> usize {
        self.vars.iter().map(|(_, v)| v.elem_count()).sum()
    }

    /// The current values by name, each name prefixed with `prefix` (for checkpoints).
    pub fn tensors(&self, prefix: &str) -> HashMap<String, Tensor> {
        self.vars
            .iter()
            .map(|(n, v)| (format!("{prefix}{n}"), v.as_tensor().clone()))
            .collect()
    }

    /// Like [`Params::tensors`], but copies: the values stay as they are now while training
    /// goes on updating the variables in place (the weights of the epoch to serve).
    pub fn snapshot(&self, prefix: &str) -> Result<HashMap<String, Tensor>> {
        self.vars
            .iter()
            .map(|(n, v)| Ok((format!("{prefix}{n}"), v.as_tensor().copy()?)))
            .collect()
    }

    /// Overwrites every parameter with the tensor of the same name in `values`; a missing
    /// name or a shape that differs is an error, so a checkpoint of another model is refused.
    /// Names in `values` carry `prefix` (as written by [`Params::tensors`]).
    pub fn load(&self, values: &HashMap<String, Tensor>, prefix: &str) -> Result<()> {
        for (name, var) in &self.vars {
            let t = values
                .get(&format!("{prefix}{name}"))
                .ok_or_else(|| candle_core::Error::Msg(format!("parameter '{name}' missing")))?;
            if t.dims() != var.dims() {
                candle_core::bail!(
                    "parameter '{name}' has shape {:?} in the file but {:?} in the model",
                    t.dims(),
                    var.dims()
                );
            }
            var.set(&t.to_dtype(DType::F32)?.to_device(&self.device)?)?;
        }
        Ok(())
    }
}
