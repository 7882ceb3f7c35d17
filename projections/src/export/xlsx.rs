//! The Excel renderer: rust_xlsxwriter in constant-memory mode (rows go to a temporary file as
//! they are written).

use rust_xlsxwriter::{DocProperties, Format, FormatBorder, Workbook, XlsxError};

use super::{Cell, ExportError, Meta, TableWriter};

pub(super) struct XlsxTable {
    workbook: Workbook,
    meta: Meta,
    next_row: u32,
    time: Format,
}

impl XlsxTable {
    pub(super) fn new(meta: Meta) -> Result<Self, XlsxError> {
        let mut workbook = Workbook::new();
        let header = Format::new()
            .set_bold()
            .set_background_color("DDE3EA")
            .set_border_bottom(FormatBorder::Thin);
        let time = Format::new().set_num_format("yyyy-mm-dd hh:mm:ss");
        let worksheet = workbook.add_worksheet_with_constant_memory()?;
        worksheet.set_name(meta.sheet)?;
        for (col, column) in meta.columns.iter().enumerate() {
            let col = u16::try_from(col).unwrap_or(u16::MAX);
            worksheet.set_column_width(col, column.width)?;
            worksheet.write_string_with_format(0, col, column.title, &header)?;
        }
        worksheet.set_freeze_panes(1, 0)?;
        Ok(Self {
            workbook,
            meta,
            next_row: 1,
            time,
        })
    }
}

impl TableWriter for XlsxTable {
    fn row(&mut self, cells: &[Cell]) -> Result<(), ExportError> {
        let row = self.next_row;
        let worksheet = self.workbook.worksheet_from_index(0)?;
        for (col, cell) in cells.iter().enumerate() {
            let col = u16::try_from(col).unwrap_or(u16::MAX);
            match cell {
                Cell::Text(text) => {
                    worksheet.write_string(row, col, text)?;
                }
                Cell::Bool(value) => {
                    worksheet.write_boolean(row, col, *value)?;
                }
                Cell::Time(time) => {
                    worksheet.write_datetime_with_format(row, col, time.naive_utc(), &self.time)?;
                }
                Cell::Int(n) => {
                    // Positions and sequences are far below 2^53: exact as Excel numbers.
                    #[allow(clippy::cast_precision_loss)]
                    worksheet.write_number(row, col, *n as f64)?;
                }
                Cell::Empty => {}
            }
        }
        self.next_row += 1;
        Ok(())
    }

    fn finish(mut self: Box<Self>, rows: u64) -> Result<Vec<u8>, ExportError> {
        let last_col = u16::try_from(self.meta.columns.len().saturating_sub(1)).unwrap_or(0);
        let last_row = self.next_row.saturating_sub(1);
        let summary = self.meta.summary(rows);
        let worksheet = self.workbook.worksheet_from_index(0)?;
        worksheet.autofilter(0, 0, last_row, last_col)?;
        let properties = DocProperties::new()
            .set_title(&self.meta.title)
            .set_subject(format!("Filter: {}", self.meta.filter))
            .set_comment(summary)
            .set_keywords(self.meta.keywords())
            .set_author("client-registry");
        self.workbook.set_properties(&properties);
        Ok(self.workbook.save_to_buffer()?)
    }
}
