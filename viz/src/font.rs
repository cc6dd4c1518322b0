//! Registers the embedded DejaVu Sans font with plotters' `ab_glyph` text renderer, so text
//! renders the same on a bare container as on a desktop: no system font is ever looked up.

use std::sync::OnceLock;

use plotters::style::{FontStyle, register_font};

use crate::{Result, VizError};

/// The family name plotters asks for by default (`FontFamily::SansSerif`); registering under
/// it means chart defaults (axis labels, legends) pick up DejaVu without being told.
pub(crate) const FAMILY: &str = "sans-serif";

/// Registers DejaVu Sans (regular, and bold for titles) once per process.
///
/// Every drawing function calls this first; later calls are a lock-free read.
pub(crate) fn ensure_registered() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        register_font(FAMILY, FontStyle::Normal, dejavu::sans::regular()).is_ok()
            && register_font(FAMILY, FontStyle::Bold, dejavu::sans::bold()).is_ok()
    });
    if ok { Ok(()) } else { Err(VizError::Font) }
}
