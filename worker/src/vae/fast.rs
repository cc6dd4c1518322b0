//! A hand-written forward and backward pass of the MLP VAE for training on the CPU: the
//! same loss and gradients as `Vae::loss_terms` with candle's autograd (the tests hold it
//! to them and to finite differences), without the work autograd cannot avoid: no gradient
//! of the input images (a full D×H product per batch), no tensor allocated per gradient
//! contribution, the ReLU masks, the reparameterisation, the KL gradient and the
//! BCE-with-logits gradient fused into loops over preallocated buffers.
//!
//! Layout: rows are images, all row-major; weights are read in place from `Params` (stored
//! (in, out)) and gradients are written in `Params` order for `Adam::step_values`. Matrix
//! products go through the `gemm` crate (the one candle uses) with candle's thread count.
//! The ReLU gradient is taken where the output is positive (as PyTorch does; candle also
//! passes it at exactly 0, a point random data never hits).

mod math;
mod ops;
#[cfg(test)]
mod tests;

use candle_core::{Result, Storage};

use ops::{abt, affine, atb, col_sums, mask, output_layer, relu};

use crate::params::Params;

/// Parameter tensors of the VAE in registration order: enc, mu, logvar, dec1, dec2, each
/// weight then bias.
const TENSORS: usize = 10;

/// Scratch space for the passes of one VAE's shapes.
pub struct FastVae {
    d: usize,
    h: usize,
    z: usize,
    /// Rows of the current batch.
    b: usize,
    /// The batch's images (B, D).
    x: Vec<f32>,
    /// Encoder hidden layer after ReLU (B, H); then its gradient.
    h1: Vec<f32>,
    dh1: Vec<f32>,
    /// μ, log σ², σ = exp(log σ² / 2), the noise and z = μ + σ·ε (B, Z); then gradients.
    mu: Vec<f32>,
    lv: Vec<f32>,
    sd: Vec<f32>,
    eps: Vec<f32>,
    zz: Vec<f32>,
    dz: Vec<f32>,
    dmu: Vec<f32>,
    dlv: Vec<f32>,
    /// Decoder hidden layer after ReLU (B, H).
    h2: Vec<f32>,
    /// Logits (B, D), overwritten with their gradient.
    out: Vec<f32>,
    /// Per-image BCE and KL of the batch.
    recon: Vec<f32>,
    kl: Vec<f32>,
    /// Gradients in `Params` order.
    grads: Vec<Vec<f32>>,
    par: gemm::Parallelism,
}

/// Calls `f` with the values of every parameter, read in place.
fn with_params<T>(params: &Params, f: impl FnOnce(&[&[f32]]) -> T) -> Result<T> {
    let guards: Vec<_> = params
        .vars()
        .iter()
        .map(|(_, v)| v.as_tensor().storage_and_layout())
        .collect();
    let mut slices = Vec::with_capacity(guards.len());
    for (storage, layout) in &guards {
        let Storage::Cpu(cpu) = &**storage else {
            candle_core::bail!("the hand-written VAE pass needs parameters on the CPU")
        };
        let (a, b) = layout
            .contiguous_offsets()
            .ok_or_else(|| candle_core::Error::Msg("non-contiguous parameter".into()))?;
        slices.push(&cpu.as_slice::<f32>()?[a..b]);
    }
    Ok(f(&slices))
}

impl FastVae {
    /// Buffers for a VAE of `dim` inputs, `hidden` units and `latent` dimensions.
    pub fn new(dim: usize, hidden: usize, latent: usize) -> Self {
        let (d, h, z) = (dim, hidden, latent);
        let sizes = [d * h, h, h * z, z, h * z, z, z * h, h, h * d, d];
        let threads = candle_core::utils::get_num_threads();
        FastVae {
            d,
            h,
            z,
            b: 0,
            x: Vec::new(),
            h1: Vec::new(),
            dh1: Vec::new(),
            mu: Vec::new(),
            lv: Vec::new(),
            sd: Vec::new(),
            eps: Vec::new(),
            zz: Vec::new(),
            dz: Vec::new(),
            dmu: Vec::new(),
            dlv: Vec::new(),
            h2: Vec::new(),
            out: Vec::new(),
            recon: Vec::new(),
            kl: Vec::new(),
            grads: sizes.iter().map(|&n| vec![0.0; n]).collect(),
            par: if threads > 1 {
                gemm::Parallelism::Rayon(threads)
            } else {
                gemm::Parallelism::None
            },
        }
    }

    /// Sizes the buffers for `b` rows (they only grow).
    fn shape(&mut self, b: usize) {
        let (d, h, z) = (self.d, self.h, self.z);
        self.b = b;
        let grow = |v: &mut Vec<f32>, n: usize| v.resize(n.max(v.len()), 0.0);
        for (v, n) in [(&mut self.x, d), (&mut self.out, d)] {
            grow(v, b * n);
        }
        for v in [&mut self.h1, &mut self.dh1, &mut self.h2] {
            grow(v, b * h);
        }
        for v in [
            &mut self.mu,
            &mut self.lv,
            &mut self.sd,
            &mut self.eps,
            &mut self.zz,
            &mut self.dz,
            &mut self.dmu,
            &mut self.dlv,
        ] {
            grow(v, b * z);
        }
        grow(&mut self.recon, b);
        grow(&mut self.kl, b);
    }

    /// The batch of rows `idx` of the (n, D) `pixels` with noise `eps` (B, Z): computes the
    /// loss mean over images of BCE + `kl_weight`·KL, leaves every parameter's gradient in
    /// [`FastVae::grads`] and returns (Σ BCE, Σ KL) over the batch.
    pub fn step(
        &mut self,
        params: &Params,
        pixels: &[f32],
        idx: &[u32],
        eps: &[f32],
        kl_weight: f64,
    ) -> Result<(f64, f64)> {
        let (b, d) = (idx.len(), self.d);
        if b == 0 {
            candle_core::bail!("an empty batch");
        }
        if eps.len() != b * self.z {
            candle_core::bail!("noise of {} values for a batch of {b}", eps.len());
        }
        if params.vars().len() != TENSORS
            || params
                .vars()
                .iter()
                .zip(&self.grads)
                .any(|((_, v), g)| v.elem_count() != g.len())
        {
            candle_core::bail!("the parameters do not fit a VAE of these shapes");
        }
        self.shape(b);
        for (row, &i) in self.x.chunks_exact_mut(d).zip(idx) {
            let i = i as usize;
            row.copy_from_slice(&pixels[i * d..(i + 1) * d]);
        }
        self.eps[..b * self.z].copy_from_slice(eps);
        with_params(params, |w| self.passes(w, kl_weight as f32))?;
        let sum = |v: &[f32]| v[..b].iter().map(|&x| f64::from(x)).sum::<f64>();
        Ok((sum(&self.recon), sum(&self.kl)))
    }

    /// Gradients of the last [`FastVae::step`], in `Params` order.
    pub fn grads(&self) -> &[Vec<f32>] {
        &self.grads
    }

    /// Per-image BCE and KL of the last [`FastVae::step`].
    pub fn terms(&self) -> (&[f32], &[f32]) {
        (&self.recon[..self.b], &self.kl[..self.b])
    }

    /// Forward and backward over the loaded batch; `w` are the parameter values.
    fn passes(&mut self, w: &[&[f32]], kl_weight: f32) {
        let (b, d, h, z, par) = (self.b, self.d, self.h, self.z, self.par);
        let (bd, bh, bz) = (b * d, b * h, b * z);
        // Forward.
        affine(&mut self.h1[..bh], &self.x[..bd], w[0], w[1], par);
        relu(&mut self.h1[..bh]);
        affine(&mut self.mu[..bz], &self.h1[..bh], w[2], w[3], par);
        affine(&mut self.lv[..bz], &self.h1[..bh], w[4], w[5], par);
        for i in 0..bz {
            self.sd[i] = (0.5 * self.lv[i]).exp();
            self.zz[i] = self.mu[i] + self.sd[i] * self.eps[i];
        }
        affine(&mut self.h2[..bh], &self.zz[..bz], w[6], w[7], par);
        relu(&mut self.h2[..bh]);
        affine(&mut self.out[..bd], &self.h2[..bh], w[8], w[9], par);
        // Output layer: BCE per image and d loss / d logits (the loss is a mean over B).
        let scale = 1.0 / b as f32;
        let gb = &mut self.grads[9];
        gb.fill(0.0);
        output_layer(
            &mut self.out[..bd],
            &self.x[..bd],
            &mut self.recon[..b],
            gb,
            scale,
        );
        // KL per image, −½ Σ (1 + log σ² − μ² − σ²) with σ² = exp(log σ²) taken as σ·σ,
        // and its gradient.
        let kw = kl_weight * scale;
        for r in 0..b {
            let mut acc = 0.0;
            for i in r * z..(r + 1) * z {
                let (m, lv, s2) = (self.mu[i], self.lv[i], self.sd[i] * self.sd[i]);
                acc += 1.0 + lv - m * m - s2;
                self.dmu[i] = kw * m;
                self.dlv[i] = 0.5 * kw * (s2 - 1.0);
            }
            self.kl[r] = -0.5 * acc;
        }
        // Decoder backward; dh1 holds the decoder hidden layer's gradient until the encoder
        // needs it.
        let (g, out, x) = (&mut self.grads, &self.out[..bd], &self.x[..bd]);
        atb(&mut g[8], &self.h2[..bh], out, h, par);
        abt(&mut self.dh1[..bh], false, out, w[8], d, par);
        mask(&mut self.dh1[..bh], &self.h2[..bh]);
        col_sums(&mut g[7], &self.dh1[..bh]);
        atb(&mut g[6], &self.zz[..bz], &self.dh1[..bh], z, par);
        abt(&mut self.dz[..bz], false, &self.dh1[..bh], w[6], h, par);
        // Reparameterisation: dz/dμ = 1, dz/d log σ² = ½·σ·ε.
        for i in 0..bz {
            self.dmu[i] += self.dz[i];
            self.dlv[i] += 0.5 * self.dz[i] * self.sd[i] * self.eps[i];
        }
        // Encoder backward (the input's own gradient is never needed).
        let (dmu, dlv, h1) = (&self.dmu[..bz], &self.dlv[..bz], &self.h1[..bh]);
        atb(&mut g[2], h1, dmu, h, par);
        col_sums(&mut g[3], dmu);
        atb(&mut g[4], h1, dlv, h, par);
        col_sums(&mut g[5], dlv);
        abt(&mut self.dh1[..bh], false, dmu, w[2], z, par);
        abt(&mut self.dh1[..bh], true, dlv, w[4], z, par);
        mask(&mut self.dh1[..bh], h1);
        col_sums(&mut g[1], &self.dh1[..bh]);
        atb(&mut g[0], x, &self.dh1[..bh], d, par);
    }
}
