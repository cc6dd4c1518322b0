//! A thin wrapper around plotters' `BitMapBackend` that fixes one bug: for 1-px lines that
//! are exactly horizontal or vertical, plotters-bitmap 0.3.7 fills the rectangle from `from`
//! to `to` and draws nothing when the line runs leftwards or upwards. Map coastlines are
//! full of such steps, so half of every border went missing. The wrapper turns those lines
//! round and forwards everything else; the default methods of the trait (paths, circles,
//! polygons, text) all come back through `draw_line` and `draw_pixel`, so they are fixed too.

use plotters::prelude::{BitMapBackend, DrawingBackend};
use plotters_backend::{BackendColor, BackendCoord, BackendStyle, DrawingErrorKind};

/// `BitMapBackend` with axis-aligned lines always drawn left-to-right or top-to-bottom.
pub(crate) struct Bitmap<'a>(pub(crate) BitMapBackend<'a>);

/// The error of every drawing call, the inner backend's.
type Failure = DrawingErrorKind<<BitMapBackend<'static> as DrawingBackend>::ErrorType>;

impl DrawingBackend for Bitmap<'_> {
    type ErrorType = <BitMapBackend<'static> as DrawingBackend>::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.0.get_size()
    }

    fn ensure_prepared(&mut self) -> Result<(), Failure> {
        self.0.ensure_prepared()
    }

    fn present(&mut self) -> Result<(), Failure> {
        self.0.present()
    }

    fn draw_pixel(&mut self, point: BackendCoord, color: BackendColor) -> Result<(), Failure> {
        self.0.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), Failure> {
        let backwards = (from.1 == to.1 && from.0 > to.0) || (from.0 == to.0 && from.1 > to.1);
        if backwards {
            self.0.draw_line(to, from, style)
        } else {
            self.0.draw_line(from, to, style)
        }
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), Failure> {
        self.0.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), Failure> {
        self.0.blit_bitmap(pos, size, src)
    }
}

#[cfg(test)]
mod tests {
    use plotters::prelude::*;

    use super::*;

    /// Draws one 1-px line on a white 10x10 canvas and returns the non-white pixel count.
    fn inked(from: (i32, i32), to: (i32, i32)) -> usize {
        let mut buf = vec![255u8; 10 * 10 * 3];
        {
            let root = Bitmap(BitMapBackend::with_buffer(&mut buf, (10, 10))).into_drawing_area();
            root.draw(&PathElement::new(vec![from, to], BLACK)).unwrap();
            root.present().unwrap();
        }
        buf.chunks(3).filter(|p| p != &[255, 255, 255]).count()
    }

    #[test]
    fn lines_are_drawn_in_every_direction() {
        assert_eq!(inked((2, 5), (7, 5)), 6);
        assert_eq!(inked((7, 5), (2, 5)), 6, "leftwards");
        assert_eq!(inked((5, 2), (5, 7)), 6);
        assert_eq!(inked((5, 7), (5, 2)), 6, "upwards");
    }
}
