//! Picks the device a trial runs on: `cpu`, `cuda:N`, or `auto` (the first GPU when the
//! binary was built with the `cuda` feature and a GPU answers, else the CPU).

use anyhow::{Context, Result, bail};
use candle_core::Device;

/// Parses a `--device` value into a candle device.
pub fn parse(spec: &str) -> Result<Device> {
    let spec = spec.trim().to_ascii_lowercase();
    match spec.as_str() {
        "cpu" => Ok(Device::Cpu),
        "auto" => Ok(auto()),
        s if s == "cuda" || s.starts_with("cuda:") => {
            let ordinal: usize = match s.strip_prefix("cuda:") {
                Some(n) => n.parse().with_context(|| {
                    format!("'{s}': the GPU index must be a number, e.g. cuda:0")
                })?,
                None => 0,
            };
            if !candle_core::utils::cuda_is_available() {
                bail!(
                    "--device {s}: this worker was built without CUDA support; rebuild with `--features cuda` or use --device cpu"
                );
            }
            Device::new_cuda(ordinal).with_context(|| format!("cannot open GPU {ordinal}"))
        }
        other => bail!("unknown device '{other}'; use cpu, cuda:N or auto"),
    }
}

fn auto() -> Device {
    match Device::new_cuda(0) {
        Ok(d) if candle_core::utils::cuda_is_available() => d,
        _ => Device::Cpu,
    }
}

/// A short human name of the device, for logs and JSON.
pub fn describe(device: &Device) -> String {
    match device {
        Device::Cpu => "cpu".into(),
        Device::Cuda(_) => "cuda".into(),
        Device::Metal(_) => "metal".into(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_cpu_and_rejects_garbage() {
        assert!(super::parse("cpu").unwrap().is_cpu());
        assert!(super::parse("auto").is_ok());
        let e = super::parse("tpu").unwrap_err().to_string();
        assert!(e.contains("cpu, cuda:N or auto"), "{e}");
    }
}
