//! The MLP VAE of the coursework: encoder D → H (ReLU) → (μ, log σ²) of Z; decoder
//! Z → H (ReLU) → D logits, sigmoid for pixels. Weights are stored (in, out) so a layer is
//! `x.matmul(w) + b`.
//!
//! Loss per image = BCE(x̂, x) summed over pixels + kl_weight · KL(q(z|x) ‖ N(0, I)), with
//! KL = −½ Σ (1 + log σ² − μ² − σ²); the batch loss is the mean over images. BCE is computed
//! from the logits, max(l, 0) − l·x + log(1 + e^−|l|), which equals BCE on sigmoid(l) but
//! never takes the log of 0.

use candle_core::{Result, Tensor};
use rand_chacha::ChaCha8Rng;

use crate::params::Params;

/// One affine layer.
struct Linear {
    w: Tensor,
    b: Tensor,
}

impl Linear {
    fn new(
        p: &mut Params,
        name: &str,
        fan_in: usize,
        fan_out: usize,
        rng: &mut ChaCha8Rng,
    ) -> Result<Self> {
        let k = 1.0 / (fan_in as f64).sqrt();
        Ok(Linear {
            w: p.uniform(&format!("{name}.w"), &[fan_in, fan_out], k, rng)?,
            b: p.uniform(&format!("{name}.b"), &[1, fan_out], k, rng)?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.matmul(&self.w)?.broadcast_add(&self.b)
    }
}

/// The VAE.
pub struct Vae {
    /// Input values per image (3·S·S).
    pub dim: usize,
    /// Latent dimensions.
    pub latent: usize,
    enc: Linear,
    mu: Linear,
    logvar: Linear,
    dec1: Linear,
    dec2: Linear,
}

/// Per-image loss terms of a batch (each of shape (B,)).
pub struct LossTerms {
    /// Reconstruction term: BCE summed over pixels.
    pub recon: Tensor,
    /// KL(q(z|x) ‖ N(0, I)) summed over latent dimensions.
    pub kl: Tensor,
}

impl Vae {
    /// Builds a VAE, registering its parameters in `params`.
    pub fn new(
        dim: usize,
        hidden: usize,
        latent: usize,
        params: &mut Params,
        rng: &mut ChaCha8Rng,
    ) -> Result<Self> {
        Ok(Vae {
            dim,
            latent,
            enc: Linear::new(params, "enc", dim, hidden, rng)?,
            mu: Linear::new(params, "mu", hidden, latent, rng)?,
            logvar: Linear::new(params, "logvar", hidden, latent, rng)?,
            dec1: Linear::new(params, "dec1", latent, hidden, rng)?,
            dec2: Linear::new(params, "dec2", hidden, dim, rng)?,
        })
    }

    /// (μ, log σ²) of q(z|x) for a batch (B, D).
    pub fn encode(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let h = self.enc.forward(x)?.relu()?;
        Ok((self.mu.forward(&h)?, self.logvar.forward(&h)?))
    }

    /// Pre-sigmoid outputs for latent codes (B, Z).
    pub fn decode_logits(&self, z: &Tensor) -> Result<Tensor> {
        self.dec2.forward(&self.dec1.forward(z)?.relu()?)
    }

    /// Pixels in [0, 1] for latent codes (B, Z).
    pub fn decode(&self, z: &Tensor) -> Result<Tensor> {
        candle_nn::ops::sigmoid(&self.decode_logits(z)?)
    }

    /// Loss terms of a batch with reparameterisation noise `eps` (B, Z).
    pub fn loss_terms(&self, x: &Tensor, eps: &Tensor) -> Result<LossTerms> {
        let (mu, logvar) = self.encode(x)?;
        let z = (&mu + ((&logvar * 0.5)?.exp()? * eps)?)?;
        let logits = self.decode_logits(&z)?;
        Ok(LossTerms {
            recon: bce_with_logits(&logits, x)?,
            kl: kl_divergence(&mu, &logvar)?,
        })
    }
}

/// Σ over the last dimension of BCE(sigmoid(logits), x), from the logits.
pub fn bce_with_logits(logits: &Tensor, x: &Tensor) -> Result<Tensor> {
    let soft = (logits.abs()?.neg()?.exp()? + 1.0)?.log()?;
    ((logits.relu()? - (logits * x)?)? + soft)?.sum(1)
}

/// KL(N(μ, σ²) ‖ N(0, I)) per row: −½ Σ (1 + log σ² − μ² − σ²).
pub fn kl_divergence(mu: &Tensor, logvar: &Tensor) -> Result<Tensor> {
    let inner = ((logvar + 1.0)? - mu.sqr()?)? - logvar.exp()?;
    inner?.sum(1)? * -0.5
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn kl_matches_the_hand_computed_value() {
        // μ = (1, 0), log σ² = (0, ln 4): KL = −½[(1+0−1−1) + (1+ln4−0−4)] = −½(−4 + ln 4) = 2 − ln 2
        let mu = Tensor::new(&[[1f32, 0.]], &Device::Cpu).unwrap();
        let lv = Tensor::new(&[[0f32, 4f32.ln()]], &Device::Cpu).unwrap();
        let kl = kl_divergence(&mu, &lv).unwrap().to_vec1::<f32>().unwrap()[0];
        assert!((kl - (2.0 - 2f32.ln())).abs() < 1e-6, "{kl}");
        let zero = kl_divergence(
            &Tensor::zeros((1, 3), candle_core::DType::F32, &Device::Cpu).unwrap(),
            &Tensor::zeros((1, 3), candle_core::DType::F32, &Device::Cpu).unwrap(),
        )
        .unwrap();
        assert_eq!(zero.to_vec1::<f32>().unwrap(), vec![0.0]);
    }

    #[test]
    fn bce_from_logits_equals_bce_on_probabilities() {
        let l = [-3f32, -0.5, 0.0, 2.0, 30.0];
        let x = [0f32, 0.25, 1.0, 0.5, 1.0];
        let want: f32 = l
            .iter()
            .zip(&x)
            .map(|(&l, &x)| {
                let p = 1.0 / (1.0 + (-l).exp());
                -(x * p.max(1e-30).ln() + (1.0 - x) * (1.0 - p).max(1e-30).ln())
            })
            .sum();
        let lt = Tensor::new(&[l], &Device::Cpu).unwrap();
        let xt = Tensor::new(&[x], &Device::Cpu).unwrap();
        let got = bce_with_logits(&lt, &xt).unwrap().to_vec1::<f32>().unwrap()[0];
        assert!((got - want).abs() < 1e-4, "{got} vs {want}");
    }

    #[test]
    fn shapes() {
        let mut p = Params::new(&Device::Cpu);
        let mut rng = crate::rng::stream(0, crate::rng::Purpose::Init, 0);
        let vae = Vae::new(12, 7, 3, &mut p, &mut rng).unwrap();
        let x = Tensor::ones((5, 12), candle_core::DType::F32, &Device::Cpu).unwrap();
        let (mu, lv) = vae.encode(&x).unwrap();
        assert_eq!((mu.dims(), lv.dims()), (&[5, 3][..], &[5, 3][..]));
        assert_eq!(vae.decode(&mu).unwrap().dims(), &[5, 12]);
        let eps = Tensor::zeros((5, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
        let t = vae.loss_terms(&x, &eps).unwrap();
        assert_eq!((t.recon.dims(), t.kl.dims()), (&[5][..], &[5][..]));
    }
}
