//! The PDF renderer: A4 landscape, a table with its header repeated on every page, "page X of
//! Y", and DejaVu Sans Condensed embedded (the 14 standard PDF fonts are Latin-1 only).
//! Values wider than their column are cut with an ellipsis at the column edge.
//!
//! Written page by page straight into the file (PDF 1.7, ISO 32000-1): each finished page is
//! serialised and compressed at once, so memory holds the file so far and one page, not every
//! page of a 100,000-row export (printpdf kept all pages' operations and then a whole `lopdf`
//! document until it saved: +300 MB for 100,000 rows). What is only known at the end — the
//! row count of the summary line and the page total — is drawn by two form XObjects that
//! every page refers to and that are written last; so are the fonts, with the widths and the
//! `/ToUnicode` map of the glyphs actually used. printpdf's font parser reads the font.
//!
//! Text is shown with Identity-H Type 0 fonts: each character is its glyph id, two bytes.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{Cell, ExportError, Meta, TableWriter};

mod file;
mod fonts;

use file::{
    compress, info_string, PdfFile, BOLD, CATALOG, INFO, PAGES, PAGE_TOTAL, REGULAR, SUMMARY,
};
use fonts::{fonts, Face, Glyphs};

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
/// Baseline of the footer.
const FOOTER_Y: f32 = MARGIN - 6.0;
/// Where the "page X of Y" footer starts.
const FOOTER_X: f32 = PAGE_WIDTH - MARGIN - 80.0;

pub(super) struct PdfTable {
    file: PdfFile,
    glyphs: Glyphs,
    meta: Meta,
    /// Left edge and width of each column.
    columns: Vec<(f32, f32)>,
    pages: Vec<u32>,
    /// The current page's fills, and its text operations.
    background: String,
    text: String,
    /// Top of the next row.
    y: f32,
    rows_on_page: usize,
}

impl PdfTable {
    pub(super) fn new(meta: Meta) -> Result<Self, ExportError> {
        let fonts =
            fonts().ok_or_else(|| ExportError::Pdf("the embedded font cannot be parsed".into()))?;
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
            file: PdfFile::new(),
            glyphs: Glyphs {
                fonts,
                used: [BTreeMap::new(), BTreeMap::new()],
            },
            meta,
            columns,
            pages: Vec::new(),
            background: String::new(),
            text: String::new(),
            y: TABLE_TOP,
            rows_on_page: 0,
        };
        table.start_page();
        Ok(table)
    }

    /// Title, filter and the table header at the top of a fresh page.
    fn start_page(&mut self) {
        let fonts = self.glyphs.fonts;
        let top = PAGE_HEIGHT - MARGIN;
        let width = PAGE_WIDTH - 2.0 * MARGIN;
        self.text.push_str("0 g\n");
        let title = fonts.bold.fit(&self.meta.title, TITLE_SIZE, width);
        self.glyphs.show(
            &mut self.text,
            Face::Bold,
            TITLE_SIZE,
            MARGIN,
            top - TITLE_SIZE,
            &title,
        );
        let filter = fonts
            .regular
            .fit(&format!("Filter: {}", self.meta.filter), NOTE_SIZE, width);
        self.glyphs.show(
            &mut self.text,
            Face::Regular,
            NOTE_SIZE,
            MARGIN,
            top - TITLE_SIZE - 14.0,
            &filter,
        );
        let _ = writeln!(
            self.background,
            "0.85 g {MARGIN:.2} {:.2} {width:.2} {HEADER_HEIGHT:.2} re f",
            TABLE_TOP - HEADER_HEIGHT
        );
        for (i, column) in self.meta.columns.iter().enumerate() {
            let (left, col_width) = self.columns[i];
            let title = fonts
                .bold
                .fit(column.title, CELL_SIZE, col_width - 2.0 * PADDING);
            self.glyphs.show(
                &mut self.text,
                Face::Bold,
                CELL_SIZE,
                left + PADDING,
                TABLE_TOP - HEADER_HEIGHT + 5.0,
                &title,
            );
        }
        let _ = writeln!(self.text, "/F1 {CELL_SIZE} Tf");
        self.y = TABLE_TOP - HEADER_HEIGHT;
        self.rows_on_page = 0;
    }

    /// Writes the current page (and its content, compressed) into the file.
    fn end_page(&mut self) -> Result<(), ExportError> {
        let number = self.pages.len() + 1;
        let footer = format!("page {number} of ");
        let mut ops = String::with_capacity(self.background.len() + self.text.len() + 256);
        let _ = write!(ops, "q\n{}Q\nBT\n{}", self.background, self.text);
        self.glyphs.show(
            &mut ops,
            Face::Regular,
            NOTE_SIZE,
            FOOTER_X,
            FOOTER_Y,
            &footer,
        );
        let title = self.glyphs.fonts.regular.fit(
            &self.meta.title,
            NOTE_SIZE,
            (PAGE_WIDTH - 2.0 * MARGIN) / 2.0,
        );
        self.glyphs
            .show(&mut ops, Face::Regular, NOTE_SIZE, MARGIN, FOOTER_Y, &title);
        ops.push_str("ET\n");
        // The summary line (row count) and the page total are known only at the end: form
        // XObjects written then.
        let total_x = FOOTER_X + self.glyphs.fonts.regular.width(&footer, NOTE_SIZE);
        let _ = write!(
            ops,
            "q 1 0 0 1 {MARGIN:.2} {:.2} cm /Sum Do Q\nq 1 0 0 1 {total_x:.2} {FOOTER_Y:.2} cm /Tot Do Q\n",
            PAGE_HEIGHT - MARGIN - TITLE_SIZE - 25.0
        );
        self.background.clear();
        self.text.clear();
        let content = self.file.reserve();
        let page = self.file.reserve();
        self.file
            .stream(content, "/Filter /FlateDecode", &compress(ops.as_bytes())?);
        self.file.object(
            page,
            &format!(
                "<< /Type /Page /Parent {PAGES} 0 R /MediaBox [0 0 {PAGE_WIDTH} {PAGE_HEIGHT}] \
                 /Resources << /Font << /F1 {REGULAR} 0 R /F2 {BOLD} 0 R >> \
                 /XObject << /Sum {SUMMARY} 0 R /Tot {PAGE_TOTAL} 0 R >> >> \
                 /Contents {content} 0 R >>"
            ),
        );
        self.pages.push(page);
        Ok(())
    }

    /// A form XObject showing one line of regular text at its origin.
    fn text_form(&mut self, id: u32, text: &str) -> Result<(), ExportError> {
        let mut ops = String::from("BT\n0 g\n");
        self.glyphs
            .show(&mut ops, Face::Regular, NOTE_SIZE, 0.0, 0.0, text);
        ops.push_str("ET\n");
        let entries = format!(
            "/Type /XObject /Subtype /Form /BBox [0 -4 {PAGE_WIDTH} 12] \
             /Resources << /Font << /F1 {REGULAR} 0 R >> >> /Filter /FlateDecode"
        );
        self.file.stream(id, &entries, &compress(ops.as_bytes())?);
        Ok(())
    }

    /// The Type 0 font `id` for `face`, with widths and a ToUnicode map of the glyphs used.
    fn font(&mut self, id: u32, face: Face) {
        let font = self.glyphs.font(face);
        let used = std::mem::take(&mut self.glyphs.used[face as usize]);
        let program = self.file.reserve();
        self.file.stream(
            program,
            &format!("/Length1 {} /Filter /FlateDecode", font.program_length),
            &font.program,
        );
        let descriptor = self.file.reserve();
        let [x_min, y_min, x_max, y_max] = font.bbox.map(|v| font.pdf_units(f32::from(v)));
        self.file.object(
            descriptor,
            &format!(
                "<< /Type /FontDescriptor /FontName /{name} /Flags 32 \
                 /FontBBox [{x_min} {y_min} {x_max} {y_max}] /ItalicAngle 0 /Ascent {ascent} \
                 /Descent {descent} /CapHeight {ascent} /StemV {stem} /FontFile2 {program} 0 R >>",
                name = font.name,
                ascent = font.pdf_units(f32::from(font.ascent)),
                descent = font.pdf_units(f32::from(font.descent)),
                stem = font.stem_v,
            ),
        );
        let mut widths = String::new();
        for glyph in used.keys() {
            let width = font.pdf_units(f32::from(font.widths.get(glyph).copied().unwrap_or(0)));
            let _ = write!(widths, "{glyph} [{width}] ");
        }
        let cid_font = self.file.reserve();
        self.file.object(
            cid_font,
            &format!(
                "<< /Type /Font /Subtype /CIDFontType2 /BaseFont /{name} \
                 /CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> \
                 /FontDescriptor {descriptor} 0 R /DW 1000 /W [{widths}] /CIDToGIDMap /Identity >>",
                name = font.name
            ),
        );
        let cmap = to_unicode_cmap(&used);
        let to_unicode = self.file.reserve();
        self.file.stream(to_unicode, "", cmap.as_bytes());
        self.file.object(
            id,
            &format!(
                "<< /Type /Font /Subtype /Type0 /BaseFont /{name} /Encoding /Identity-H \
                 /DescendantFonts [{cid_font} 0 R] /ToUnicode {to_unicode} 0 R >>",
                name = font.name
            ),
        );
    }
}

impl TableWriter for PdfTable {
    /// One row is one text-matrix op and one `TJ` whose offsets jump to each column.
    fn row(&mut self, cells: &[Cell]) -> Result<(), ExportError> {
        if self.y - ROW_HEIGHT < TABLE_BOTTOM {
            self.end_page()?;
            self.start_page();
        }
        let bottom = self.y - ROW_HEIGHT;
        if self.rows_on_page % 2 == 1 {
            let _ = writeln!(
                self.background,
                "0.95 g {MARGIN:.2} {bottom:.2} {:.2} {ROW_HEIGHT:.2} re f",
                PAGE_WIDTH - 2.0 * MARGIN
            );
        }
        let font = &self.glyphs.fonts.regular;
        let mut items = String::new();
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
                let _ = write!(items, " {:.1} ", -(start - pen) / CELL_SIZE * 1000.0);
            }
            let fitted = font.fit(&text, CELL_SIZE, width - 2.0 * PADDING);
            pen = start + font.width(&fitted, CELL_SIZE);
            items.push_str(&self.glyphs.hex(Face::Regular, &fitted));
        }
        if !items.is_empty() {
            let _ = writeln!(
                self.text,
                "1 0 0 1 {:.2} {:.2} Tm [{items}] TJ",
                MARGIN + PADDING,
                bottom + 4.0
            );
        }
        self.y = bottom;
        self.rows_on_page += 1;
        Ok(())
    }

    fn finish(mut self: Box<Self>, rows: u64) -> Result<Vec<u8>, ExportError> {
        self.end_page()?;
        let summary = self.meta.summary(rows);
        let summary = self
            .glyphs
            .fonts
            .regular
            .fit(&summary, NOTE_SIZE, PAGE_WIDTH - 2.0 * MARGIN);
        self.text_form(SUMMARY, &summary)?;
        let total = self.pages.len().to_string();
        self.text_form(PAGE_TOTAL, &total)?;
        self.font(REGULAR, Face::Regular);
        self.font(BOLD, Face::Bold);
        let kids: String = self
            .pages
            .iter()
            .map(|page| format!("{page} 0 R"))
            .collect::<Vec<_>>()
            .join(" ");
        self.file.object(
            PAGES,
            &format!(
                "<< /Type /Pages /Kids [{kids}] /Count {} >>",
                self.pages.len()
            ),
        );
        self.file
            .object(CATALOG, &format!("<< /Type /Catalog /Pages {PAGES} 0 R >>"));
        let info = format!(
            "<< /Title {} /Subject {} /Keywords {} /Creator {} /Producer {} >>",
            info_string(&self.meta.title),
            info_string(&format!("Filter: {}", self.meta.filter)),
            info_string(&self.meta.keywords()),
            info_string("client-registry"),
            info_string("client-registry"),
        );
        self.file.object(INFO, &info);
        Ok(self.file.finish())
    }
}

/// The `/ToUnicode` CMap of the glyphs a document used: each glyph id to its character.
fn to_unicode_cmap(used: &BTreeMap<u16, char>) -> String {
    let mut cmap = String::from(
        "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n\
         /CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n\
         /CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n\
         1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n",
    );
    let pairs: Vec<(&u16, &char)> = used.iter().collect();
    for block in pairs.chunks(100) {
        let _ = writeln!(cmap, "{} beginbfchar", block.len());
        for (glyph, c) in block {
            let mut units = [0u16; 2];
            let utf16: String = c
                .encode_utf16(&mut units)
                .iter()
                .map(|u| format!("{u:04X}"))
                .collect();
            let _ = writeln!(cmap, "<{glyph:04X}> <{utf16}>");
        }
        cmap.push_str("endbfchar\n");
    }
    cmap.push_str("endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n");
    cmap
}
