//! The recurrent weights of all gates, (H, G·H), and the three products a step makes with
//! them: h_{t−1}·W forward, and backward the weights' gradient hᵀ_{t−1}·dq and the gradient
//! dq·Wᵀ reaching h_{t−1}.
//!
//! When H is a multiple of 16 and the CPU has AVX2 and FMA, the products run on
//! `kernels::tile` with W (for the forward product) and Wᵀ (for the backward one) packed
//! into panels once per batch: the same W serves every step, so packing it each time, as
//! a general product must, would be wasted. Otherwise they go through `kernels::matmul`.
//! The two round differently in the last bits, like any two summation orders.

use crate::kernels::matmul;
use crate::kernels::tile::{self, NR, PAD, Product};

pub(super) struct Recurrent {
    h: usize,
    gh: usize,
    /// The weights, row-major (H, G·H): column block g is gate g's (H, H) matrix.
    pub w: Vec<f32>,
    /// Whether the products run on tiles (see the module comment).
    tiled: bool,
    /// W and Wᵀ in 16-column panels, when tiled.
    panels: Vec<f32>,
    panels_t: Vec<f32>,
}

impl Recurrent {
    pub fn new(h: usize, gh: usize) -> Self {
        Recurrent {
            h,
            gh,
            w: vec![0.0; h * gh],
            tiled: tile::available() && h.is_multiple_of(NR),
            panels: Vec::new(),
            panels_t: Vec::new(),
        }
    }

    /// Chooses tiles (when this CPU and H allow them) or the general product; for tests
    /// and benchmarks, which compare the two.
    pub fn use_tiles(&mut self, on: bool) {
        self.tiled = on && tile::available() && self.h.is_multiple_of(NR);
        self.pack();
    }

    pub fn tiled(&self) -> bool {
        self.tiled
    }

    /// Refreshes the panels after `w` changed.
    pub fn pack(&mut self) {
        if self.tiled {
            let (h, gh) = (self.h, self.gh);
            tile::pack(&self.w, h, gh, (gh, 1), &mut self.panels);
            tile::pack(&self.w, gh, h, (1, gh), &mut self.panels_t);
        }
    }

    /// Row stride of the (B, G·H) gradient `dq` the backward products read: padded when
    /// tiled, so that its rows, read as panels, do not all land in the same cache sets.
    pub fn dq_stride(&self) -> usize {
        if self.tiled { self.gh + PAD } else { self.gh }
    }

    /// `dst` (B, G·H) = `hp` (B, H) · W.
    pub fn forward(&self, hp: &[f32], b: usize, dst: &mut [f32]) {
        let (h, gh) = (self.h, self.gh);
        if self.tiled {
            let p = Product {
                m: b,
                n: gh,
                k: h,
                a: hp,
                a_s: (h, 1),
                b: &self.panels,
                b_s: (h * NR, NR),
            };
            p.run(dst, gh, false);
        } else {
            let none = gemm::Parallelism::None;
            matmul(b, gh, h, dst, false, hp, (h, 1), &self.w, (gh, 1), none);
        }
    }

    /// `g` (H, G·H) += `hp`ᵀ · `dq`, and `dh` (B, H) = [`dh` +] `dq` · Wᵀ, for `dq` (B, G·H)
    /// with row stride [`Recurrent::dq_stride`].
    pub fn backward(
        &self,
        hp: &[f32],
        dq: &[f32],
        b: usize,
        g: &mut [f32],
        dh: &mut [f32],
        acc: bool,
    ) {
        let (h, gh) = (self.h, self.gh);
        let rs = self.dq_stride();
        if self.tiled {
            let pg = Product {
                m: h,
                n: gh,
                k: b,
                a: hp,
                a_s: (1, h),
                b: dq,
                b_s: (NR, rs),
            };
            pg.run(g, gh, true);
            let ph = Product {
                m: b,
                n: h,
                k: gh,
                a: dq,
                a_s: (rs, 1),
                b: &self.panels_t,
                b_s: (gh * NR, NR),
            };
            ph.run(dh, h, acc);
        } else {
            let none = gemm::Parallelism::None;
            matmul(h, gh, b, g, true, hp, (1, h), dq, (rs, 1), none);
            matmul(b, h, gh, dh, acc, dq, (rs, 1), &self.w, (1, gh), none);
        }
    }
}
