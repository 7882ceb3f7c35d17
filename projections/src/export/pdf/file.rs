//! The PDF file itself: numbered objects written one after another, compressed streams, and
//! the cross-reference table at the end.

use std::fmt::Write as _;
use std::io::Write as _;

use flate2::write::ZlibEncoder;
use flate2::Compression;

use super::super::ExportError;

/// Objects whose numbers are fixed before anything is written.
pub(super) const CATALOG: u32 = 1;
pub(super) const PAGES: u32 = 2;
pub(super) const INFO: u32 = 3;
pub(super) const SUMMARY: u32 = 4;
pub(super) const PAGE_TOTAL: u32 = 5;
pub(super) const REGULAR: u32 = 6;
pub(super) const BOLD: u32 = 7;

/// A PDF text string (`<FEFF…>`, UTF-16BE) for the document information dictionary.
pub(super) fn info_string(text: &str) -> String {
    let mut hex = String::from("<FEFF");
    for unit in text.encode_utf16() {
        let _ = write!(hex, "{unit:04X}");
    }
    hex.push('>');
    hex
}

pub(super) fn compress(data: &[u8]) -> Result<Vec<u8>, ExportError> {
    let mut encoder = ZlibEncoder::new(Vec::with_capacity(data.len() / 3), Compression::fast());
    encoder
        .write_all(data)
        .and_then(|()| encoder.finish())
        .map_err(|e| ExportError::Pdf(e.to_string()))
}

/// The file being written: bytes so far and where each object starts.
pub(super) struct PdfFile {
    pub(super) out: Vec<u8>,
    pub(super) offsets: Vec<Option<usize>>,
}

impl PdfFile {
    pub(super) fn new() -> Self {
        let mut out = Vec::with_capacity(1 << 20);
        out.extend_from_slice(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n");
        Self {
            out,
            // The fixed objects.
            offsets: vec![None; usize::try_from(BOLD).unwrap_or(7)],
        }
    }

    /// A number for an object written later.
    pub(super) fn reserve(&mut self) -> u32 {
        self.offsets.push(None);
        u32::try_from(self.offsets.len()).unwrap_or(u32::MAX)
    }

    pub(super) fn begin(&mut self, id: u32) {
        if let Some(slot) = usize::try_from(id)
            .ok()
            .and_then(|i| i.checked_sub(1))
            .and_then(|i| self.offsets.get_mut(i))
        {
            *slot = Some(self.out.len());
        }
        self.out
            .extend_from_slice(format!("{id} 0 obj\n").as_bytes());
    }

    pub(super) fn object(&mut self, id: u32, body: &str) {
        self.begin(id);
        self.out.extend_from_slice(body.as_bytes());
        self.out.extend_from_slice(b"\nendobj\n");
    }

    /// A stream object; `entries` go into its dictionary beside `/Length`.
    pub(super) fn stream(&mut self, id: u32, entries: &str, data: &[u8]) {
        self.begin(id);
        self.out.extend_from_slice(
            format!("<< /Length {} {entries} >>\nstream\n", data.len()).as_bytes(),
        );
        self.out.extend_from_slice(data);
        self.out.extend_from_slice(b"\nendstream\nendobj\n");
    }

    /// The cross-reference table and trailer.
    pub(super) fn finish(mut self) -> Vec<u8> {
        let xref = self.out.len();
        let mut table = format!("xref\n0 {}\n0000000000 65535 f \n", self.offsets.len() + 1);
        for offset in &self.offsets {
            let _ = writeln!(table, "{:010} 00000 n ", offset.unwrap_or(0));
        }
        let _ = write!(
            table,
            "trailer\n<< /Size {} /Root {CATALOG} 0 R /Info {INFO} 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            self.offsets.len() + 1
        );
        self.out.extend_from_slice(table.as_bytes());
        self.out
    }
}
