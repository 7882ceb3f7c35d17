//! The embedded font (DejaVu Sans Condensed, regular and bold): glyph ids, widths and fitting
//! text into a column, and the glyphs a document used (for its widths and `/ToUnicode` map).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::OnceLock;

use flate2::write::ZlibEncoder;
use flate2::Compression;

use printpdf::ParsedFont;

/// A font with what is needed to lay text out and embed it.
pub(super) struct MeasuredFont {
    /// The sfnt program, as embedded (compressed once per process).
    pub(super) program: Vec<u8>,
    pub(super) program_length: usize,
    pub(super) name: String,
    pub(super) glyphs: BTreeMap<u32, u16>,
    pub(super) widths: BTreeMap<u16, u16>,
    pub(super) units_per_em: f32,
    pub(super) ascent: i16,
    pub(super) descent: i16,
    pub(super) bbox: [i16; 4],
    pub(super) stem_v: u32,
}

impl MeasuredFont {
    pub(super) fn parse(bytes: &[u8], name: &str, stem_v: u32) -> Option<Self> {
        let font = ParsedFont::from_bytes(bytes, 0, &mut Vec::new())?;
        let mut encoder = ZlibEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(bytes).ok()?;
        let metrics = &font.pdf_font_metrics;
        Some(Self {
            program: encoder.finish().ok()?,
            program_length: bytes.len(),
            name: name.to_owned(),
            units_per_em: f32::from(font.units_per_em.max(1)),
            ascent: font.font_metrics.ascent,
            descent: font.font_metrics.descent,
            bbox: [metrics.x_min, metrics.y_min, metrics.x_max, metrics.y_max],
            glyphs: font.codepoint_to_glyph,
            widths: font.glyph_widths,
            stem_v,
        })
    }

    pub(super) fn glyph(&self, c: char) -> u16 {
        self.glyphs.get(&u32::from(c)).copied().unwrap_or(0)
    }

    pub(super) fn char_width(&self, c: char) -> f32 {
        f32::from(self.widths.get(&self.glyph(c)).copied().unwrap_or(0)) / self.units_per_em
    }

    /// Width of `text` at `size` points.
    pub(super) fn width(&self, text: &str, size: f32) -> f32 {
        text.chars().map(|c| self.char_width(c)).sum::<f32>() * size
    }

    /// Whether the font has a glyph for `c`.
    pub(super) fn has_glyph(&self, c: char) -> bool {
        self.glyph(c) != 0
    }

    /// In thousandths of an em, as a PDF glyph width.
    pub(super) fn pdf_units(&self, value: f32) -> i64 {
        // Font units to 1/1000 em; values are small, the cast cannot overflow.
        #[allow(clippy::cast_possible_truncation)]
        let scaled = (value * 1000.0 / self.units_per_em).round() as i64;
        scaled
    }

    /// `text` cut (with an ellipsis) so that it fits in `max` points at `size`. Control
    /// characters become spaces; characters the font lacks (CJK, for DejaVu) become U+FFFD,
    /// so a reader — and a text extractor — sees that something is missing.
    pub(super) fn fit(&self, text: &str, size: f32, max: f32) -> String {
        let clean: String = text
            .chars()
            .map(|c| match c {
                c if c.is_control() => ' ',
                c if self.has_glyph(c) => c,
                _ => '\u{fffd}',
            })
            .collect();
        if self.width(&clean, size) <= max {
            return clean;
        }
        let budget = max - self.char_width('…') * size;
        let mut used = 0.0;
        let mut cut = String::new();
        for c in clean.chars() {
            used += self.char_width(c) * size;
            if used > budget {
                break;
            }
            cut.push(c);
        }
        cut.push('…');
        cut
    }
}

pub(super) struct Fonts {
    pub(super) regular: MeasuredFont,
    pub(super) bold: MeasuredFont,
}

/// DejaVu Sans Condensed, parsed (and its program compressed) once per process.
pub(super) fn fonts() -> Option<&'static Fonts> {
    static FONTS: OnceLock<Option<Fonts>> = OnceLock::new();
    FONTS
        .get_or_init(|| {
            Some(Fonts {
                regular: MeasuredFont::parse(
                    dejavu::sans_condensed::regular(),
                    "DejaVuSansCondensed",
                    80,
                )?,
                bold: MeasuredFont::parse(
                    dejavu::sans_condensed::bold(),
                    "DejaVuSansCondensed-Bold",
                    140,
                )?,
            })
        })
        .as_ref()
}

/// Which face a run of text is shown in.
#[derive(Clone, Copy)]
pub(super) enum Face {
    Regular,
    Bold,
}

/// Content-stream text in glyph ids, recording each glyph used (for widths and ToUnicode).
pub(super) struct Glyphs {
    pub(super) fonts: &'static Fonts,
    pub(super) used: [BTreeMap<u16, char>; 2],
}

impl Glyphs {
    pub(super) fn font(&self, face: Face) -> &'static MeasuredFont {
        match face {
            Face::Regular => &self.fonts.regular,
            Face::Bold => &self.fonts.bold,
        }
    }

    /// `text` as a hex string of glyph ids.
    pub(super) fn hex(&mut self, face: Face, text: &str) -> String {
        let font = self.font(face);
        let used = &mut self.used[face as usize];
        let mut hex = String::with_capacity(text.len() * 4 + 2);
        hex.push('<');
        for c in text.chars() {
            let glyph = font.glyph(c);
            used.entry(glyph).or_insert(c);
            let _ = write!(hex, "{glyph:04X}");
        }
        hex.push('>');
        hex
    }

    /// Sets the font and shows `text` with its baseline at (`x`, `y`).
    pub(super) fn show(
        &mut self,
        ops: &mut String,
        face: Face,
        size: f32,
        x: f32,
        y: f32,
        text: &str,
    ) {
        let hex = self.hex(face, text);
        let _ = writeln!(
            ops,
            "/F{} {size} Tf 1 0 0 1 {x:.2} {y:.2} Tm {hex} Tj",
            face as usize + 1
        );
    }
}
