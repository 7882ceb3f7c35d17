//! The PDF renderer: printpdf, A4 landscape, a table with its header repeated on every page,
//! "page X of Y", and DejaVu Sans Condensed embedded (the 14 standard PDF fonts are Latin-1
//! only). Values wider than their column are cut with an ellipsis at the column edge.

use std::sync::OnceLock;

use printpdf::{
    Color, FontId, Greyscale, Mm, Op, PaintMode, ParsedFont, PdfDocument, PdfFontHandle, PdfPage,
    PdfSaveOptions, Pt, Rect, TextItem, TextMatrix,
};

use super::{Cell, ExportError, Meta, TableWriter};

const PAGE_WIDTH: f32 = 841.89;
const PAGE_HEIGHT: f32 = 595.28;
const MARGIN: f32 = 36.0;
const TITLE_SIZE: f32 = 14.0;
const NOTE_SIZE: f32 = 8.0;
const CELL_SIZE: f32 = 8.0;
const ROW_HEIGHT: f32 = 13.0;
const HEADER_HEIGHT: f32 = 16.0;
const PADDING: f32 = 3.0;
/// Top of the table on every page (below title, filter and summary).
const TABLE_TOP: f32 = PAGE_HEIGHT - MARGIN - 48.0;
/// Lowest row bottom (above the footer).
const TABLE_BOTTOM: f32 = MARGIN + 12.0;

/// A font with the advance widths needed to fit text into columns.
struct MeasuredFont {
    font: ParsedFont,
    /// Advance widths of ASCII characters, in em.
    ascii: [f32; 128],
    units_per_em: f32,
}

impl MeasuredFont {
    fn parse(bytes: &[u8]) -> Option<Self> {
        let font = ParsedFont::from_bytes(bytes, 0, &mut Vec::new())?;
        let units_per_em = f32::from(font.units_per_em.max(1));
        let mut measured = Self {
            font,
            ascii: [0.0; 128],
            units_per_em,
        };
        for (i, width) in measured.ascii.iter_mut().enumerate() {
            *width = char::from_u32(u32::try_from(i).unwrap_or(0))
                .map_or(0.0, |c| Self::glyph_width(&measured.font, units_per_em, c));
        }
        Some(measured)
    }

    fn glyph_width(font: &ParsedFont, units_per_em: f32, c: char) -> f32 {
        let gid = font.lookup_glyph_index(u32::from(c)).unwrap_or(0);
        f32::from(font.get_glyph_width(gid).unwrap_or(0)) / units_per_em
    }

    fn char_width(&self, c: char) -> f32 {
        match usize::try_from(u32::from(c)) {
            Ok(i) if i < 128 => self.ascii[i],
            _ => Self::glyph_width(&self.font, self.units_per_em, c),
        }
    }

    /// Width of `text` at `size` points.
    fn width(&self, text: &str, size: f32) -> f32 {
        text.chars().map(|c| self.char_width(c)).sum::<f32>() * size
    }

    /// Whether the font has a glyph for `c`.
    fn has_glyph(&self, c: char) -> bool {
        c.is_ascii()
            || self
                .font
                .lookup_glyph_index(u32::from(c))
                .is_some_and(|g| g != 0)
    }

    /// `text` cut (with an ellipsis) so that it fits in `max` points at `size`. Control
    /// characters become spaces; characters the font lacks (CJK, for DejaVu) become U+FFFD,
    /// so a reader — and a text extractor — sees that something is missing.
    fn fit(&self, text: &str, size: f32, max: f32) -> String {
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

struct Fonts {
    regular: MeasuredFont,
    bold: MeasuredFont,
}

/// DejaVu Sans Condensed, parsed once per process.
fn fonts() -> Option<&'static Fonts> {
    static FONTS: OnceLock<Option<Fonts>> = OnceLock::new();
    FONTS
        .get_or_init(|| {
            Some(Fonts {
                regular: MeasuredFont::parse(dejavu::sans_condensed::regular())?,
                bold: MeasuredFont::parse(dejavu::sans_condensed::bold())?,
            })
        })
        .as_ref()
}

fn text_at(font: &FontId, size: f32, x: f32, y: f32, text: String) -> [Op; 3] {
    [
        Op::SetFont {
            font: PdfFontHandle::External(font.clone()),
            size: Pt(size),
        },
        Op::SetTextMatrix {
            matrix: TextMatrix::Translate(Pt(x), Pt(y)),
        },
        Op::ShowText {
            items: vec![TextItem::Text(text)],
        },
    ]
}

fn grey(level: f32) -> Color {
    Color::Greyscale(Greyscale::new(level, None))
}

fn filled(x: f32, y: f32, width: f32, height: f32) -> Op {
    let mut rect = Rect::from_xywh(Pt(x), Pt(y), Pt(width), Pt(height));
    rect.mode = Some(PaintMode::Fill);
    Op::DrawRectangle { rectangle: rect }
}

pub(super) struct PdfTable {
    fonts: &'static Fonts,
    document: PdfDocument,
    regular: FontId,
    bold: FontId,
    meta: Meta,
    /// Left edge and width of each column.
    columns: Vec<(f32, f32)>,
    /// Finished pages: background ops and text ops.
    pages: Vec<(Vec<Op>, Vec<Op>)>,
    background: Vec<Op>,
    text: Vec<Op>,
    /// Top of the next row.
    y: f32,
    rows_on_page: usize,
}

impl PdfTable {
    pub(super) fn new(meta: Meta) -> Result<Self, ExportError> {
        let fonts =
            fonts().ok_or_else(|| ExportError::Pdf("the embedded font cannot be parsed".into()))?;
        let mut document = PdfDocument::new(&meta.title);
        document.metadata.info.subject = format!("Filter: {}", meta.filter);
        document.metadata.info.keywords = vec![format!("feed position {}", meta.position)];
        document.metadata.info.creator = "client-registry".to_owned();
        let regular = document.add_font(&fonts.regular.font);
        let bold = document.add_font(&fonts.bold.font);
        let table_width = PAGE_WIDTH - 2.0 * MARGIN;
        let mut x = MARGIN;
        let columns = meta
            .columns
            .iter()
            .map(|column| {
                let width = column.share * table_width;
                let left = x;
                x += width;
                (left, width)
            })
            .collect();
        let mut table = Self {
            fonts,
            document,
            regular,
            bold,
            meta,
            columns,
            pages: Vec::new(),
            background: Vec::new(),
            text: Vec::new(),
            y: TABLE_TOP,
            rows_on_page: 0,
        };
        table.start_page();
        Ok(table)
    }

    /// Title, filter and the table header at the top of a fresh page.
    fn start_page(&mut self) {
        let fonts = self.fonts;
        let top = PAGE_HEIGHT - MARGIN;
        let width = PAGE_WIDTH - 2.0 * MARGIN;
        self.text.push(Op::SetFillColor { col: grey(0.0) });
        self.text.extend(text_at(
            &self.bold,
            TITLE_SIZE,
            MARGIN,
            top - TITLE_SIZE,
            fonts.bold.fit(&self.meta.title, TITLE_SIZE, width),
        ));
        let filter = format!("Filter: {}", self.meta.filter);
        self.text.extend(text_at(
            &self.regular,
            NOTE_SIZE,
            MARGIN,
            top - TITLE_SIZE - 14.0,
            fonts.regular.fit(&filter, NOTE_SIZE, width),
        ));
        // The summary line (with the row count) is written when the document is finished.
        self.background.push(Op::SetFillColor { col: grey(0.85) });
        self.background.push(filled(
            MARGIN,
            TABLE_TOP - HEADER_HEIGHT,
            width,
            HEADER_HEIGHT,
        ));
        for (i, column) in self.meta.columns.iter().enumerate() {
            let (left, col_width) = self.columns[i];
            let title = fonts
                .bold
                .fit(column.title, CELL_SIZE, col_width - 2.0 * PADDING);
            self.text.extend(text_at(
                &self.bold,
                CELL_SIZE,
                left + PADDING,
                TABLE_TOP - HEADER_HEIGHT + 5.0,
                title,
            ));
        }
        self.text.push(Op::SetFont {
            font: PdfFontHandle::External(self.regular.clone()),
            size: Pt(CELL_SIZE),
        });
        self.y = TABLE_TOP - HEADER_HEIGHT;
        self.rows_on_page = 0;
    }

    fn end_page(&mut self) {
        let background = std::mem::take(&mut self.background);
        let text = std::mem::take(&mut self.text);
        self.pages.push((background, text));
    }
}

impl TableWriter for PdfTable {
    /// One row is one text-matrix op and one `TJ` whose offsets jump to each column: a
    /// 100,000-row export then holds ~200,000 ops instead of ~1,800,000.
    fn row(&mut self, cells: &[Cell]) -> Result<(), ExportError> {
        if self.y - ROW_HEIGHT < TABLE_BOTTOM {
            self.end_page();
            self.start_page();
        }
        let bottom = self.y - ROW_HEIGHT;
        if self.rows_on_page % 2 == 1 {
            self.background.push(Op::SetFillColor { col: grey(0.95) });
            self.background.push(filled(
                MARGIN,
                bottom,
                PAGE_WIDTH - 2.0 * MARGIN,
                ROW_HEIGHT,
            ));
        }
        let fonts = self.fonts;
        let mut items = Vec::with_capacity(cells.len() * 2);
        // Where the pen is, relative to the row's start.
        let mut pen = 0.0;
        for (cell, (left, width)) in cells.iter().zip(&self.columns) {
            let text = cell.text();
            if text.is_empty() {
                continue;
            }
            let start = left - MARGIN;
            if start > pen {
                // A TJ offset is in thousandths of an em, positive to the left.
                items.push(TextItem::Offset(-(start - pen) / CELL_SIZE * 1000.0));
            }
            let fitted = fonts.regular.fit(&text, CELL_SIZE, width - 2.0 * PADDING);
            pen = start + fonts.regular.width(&fitted, CELL_SIZE);
            items.push(TextItem::Text(fitted));
        }
        if !items.is_empty() {
            self.text.push(Op::SetTextMatrix {
                matrix: TextMatrix::Translate(Pt(MARGIN + PADDING), Pt(bottom + 4.0)),
            });
            self.text.push(Op::ShowText { items });
        }
        self.y = bottom;
        self.rows_on_page += 1;
        Ok(())
    }

    fn finish(mut self: Box<Self>, rows: u64) -> Result<Vec<u8>, ExportError> {
        self.end_page();
        let total = self.pages.len();
        let summary = self.meta.summary(rows);
        let top = PAGE_HEIGHT - MARGIN;
        let width = PAGE_WIDTH - 2.0 * MARGIN;
        let fonts = self.fonts;
        let mut pages = Vec::with_capacity(total);
        for (number, (background, text)) in std::mem::take(&mut self.pages).into_iter().enumerate()
        {
            let mut ops = background;
            ops.push(Op::StartTextSection);
            ops.extend(text);
            ops.extend(text_at(
                &self.regular,
                NOTE_SIZE,
                MARGIN,
                top - TITLE_SIZE - 25.0,
                fonts.regular.fit(&summary, NOTE_SIZE, width),
            ));
            let footer = format!("page {} of {total}", number + 1);
            let footer_width = fonts.regular.width(&footer, NOTE_SIZE);
            ops.extend(text_at(
                &self.regular,
                NOTE_SIZE,
                PAGE_WIDTH - MARGIN - footer_width,
                MARGIN - 6.0,
                footer,
            ));
            ops.extend(text_at(
                &self.regular,
                NOTE_SIZE,
                MARGIN,
                MARGIN - 6.0,
                fonts.regular.fit(&self.meta.title, NOTE_SIZE, width / 2.0),
            ));
            ops.push(Op::EndTextSection);
            pages.push(PdfPage::new(Mm(297.0), Mm(210.0), ops));
        }
        let options = PdfSaveOptions {
            // Subsetting needs printpdf's text_layout feature (and its large dependency
            // tree); the whole font is embedded instead (~650 KB per face).
            subset_fonts: false,
            ..PdfSaveOptions::default()
        };
        let bytes = self
            .document
            .with_pages(pages)
            .save(&options, &mut Vec::new());
        Ok(bytes)
    }
}
