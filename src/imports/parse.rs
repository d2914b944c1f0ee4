//! Reads an import file as it arrives, chunk by chunk, in constant memory: CSV records
//! (RFC 4180: quoted fields with commas, quotes and line breaks, CRLF or LF, a UTF-8 BOM) or
//! NDJSON lines, each with the line it starts on and its raw text for the error report.

use csv_core::{ReadRecordResult, Reader};

/// The longest record accepted: a row over this is a sign of a broken file.
pub const MAX_RECORD: usize = 1 << 20;

crate::text_enum! {
    /// How an import file is written: `csv` (`text/csv`) or `ndjson`
    /// (`application/x-ndjson`).
    pub enum Format {
        Csv = "csv",
        Ndjson = "ndjson",
    }
}

/// One record of the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The line it starts on (1 is the first line of the file).
    pub line: u64,
    /// The record as it was written, without its line break.
    pub raw: String,
    /// CSV: the fields; NDJSON: empty (the raw line is the JSON).
    pub fields: Vec<String>,
}

/// A file the reader cannot go on with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    pub line: u64,
    pub message: String,
}

pub struct Parser {
    format: Format,
    csv: Reader,
    /// The current record's bytes as consumed so far.
    raw: Vec<u8>,
    output: Vec<u8>,
    ends: Vec<usize>,
    /// How much of `output` and `ends` the current record has filled.
    written: usize,
    ended: usize,
    /// The line the current record starts on.
    line: u64,
    started: bool,
    head: Vec<u8>,
}

impl Parser {
    pub fn new(format: Format) -> Self {
        Parser {
            format,
            csv: Reader::new(),
            raw: Vec::new(),
            output: vec![0; 4096],
            ends: vec![0; 64],
            written: 0,
            ended: 0,
            line: 1,
            started: false,
            head: Vec::new(),
        }
    }

    /// Feeds the next chunk (an empty one at the end of the file), appending complete
    /// records to `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<Record>) -> Result<(), Broken> {
        if !self.started {
            // A byte order mark may come split over the first chunks.
            self.head.extend_from_slice(input);
            if self.head.len() < 3 && !input.is_empty() {
                return Ok(());
            }
            self.started = true;
            let head = std::mem::take(&mut self.head);
            let body = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&head);
            if !body.is_empty() {
                self.dispatch(body, out)?;
            }
            return if input.is_empty() {
                self.dispatch(&[], out)
            } else {
                Ok(())
            };
        }
        self.dispatch(input, out)
    }

    fn dispatch(&mut self, input: &[u8], out: &mut Vec<Record>) -> Result<(), Broken> {
        match self.format {
            Format::Ndjson => self.feed_lines(input, out),
            Format::Csv => self.feed_csv(input, out),
        }
    }

    fn too_long(&self) -> Broken {
        Broken {
            line: self.line,
            message: format!("a record is longer than {MAX_RECORD} bytes"),
        }
    }

    fn feed_lines(&mut self, input: &[u8], out: &mut Vec<Record>) -> Result<(), Broken> {
        let end = input.is_empty();
        let mut rest = input;
        loop {
            let (line, more) = match rest.iter().position(|b| *b == b'\n') {
                Some(at) => (&rest[..at], Some(&rest[at + 1..])),
                None if end && !self.raw.is_empty() => (&rest[..0], None),
                None => {
                    self.raw.extend_from_slice(rest);
                    if self.raw.len() > MAX_RECORD {
                        return Err(self.too_long());
                    }
                    return Ok(());
                }
            };
            self.raw.extend_from_slice(line);
            let raw = std::mem::take(&mut self.raw);
            let text = String::from_utf8_lossy(raw.strip_suffix(b"\r").unwrap_or(&raw));
            if !text.trim().is_empty() {
                out.push(Record {
                    line: self.line,
                    raw: text.into_owned(),
                    fields: Vec::new(),
                });
            }
            self.line += 1;
            match more {
                Some(more) => rest = more,
                None => return Ok(()),
            }
        }
    }

    fn feed_csv(&mut self, input: &[u8], out: &mut Vec<Record>) -> Result<(), Broken> {
        let mut rest = input;
        loop {
            // A record may span chunks: csv-core goes on writing where it stopped.
            let (result, nin, nout, nend) = self.csv.read_record(
                rest,
                &mut self.output[self.written..],
                &mut self.ends[self.ended..],
            );
            self.raw.extend_from_slice(&rest[..nin]);
            rest = &rest[nin..];
            self.written += nout;
            self.ended += nend;
            match result {
                ReadRecordResult::InputEmpty => {
                    if self.raw.len() > MAX_RECORD {
                        return Err(self.too_long());
                    }
                    return Ok(());
                }
                ReadRecordResult::OutputFull => {
                    let len = self.output.len();
                    self.output.resize(len * 2, 0);
                }
                ReadRecordResult::OutputEndsFull => {
                    let len = self.ends.len();
                    self.ends.resize(len * 2, 0);
                }
                ReadRecordResult::Record => {
                    self.emit(out);
                    self.written = 0;
                    self.ended = 0;
                }
                ReadRecordResult::End => return Ok(()),
            }
        }
    }

    fn emit(&mut self, out: &mut Vec<Record>) {
        let data = &self.output[..self.written];
        let mut fields = Vec::with_capacity(self.ended);
        let mut start = 0;
        for &end in &self.ends[..self.ended] {
            fields.push(String::from_utf8_lossy(&data[start..end]).into_owned());
            start = end;
        }
        let raw = std::mem::take(&mut self.raw);
        let breaks = raw.iter().filter(|b| **b == b'\n').count() as u64;
        let mut text = String::from_utf8_lossy(&raw).into_owned();
        while text.ends_with(['\n', '\r']) {
            text.pop();
        }
        // A blank line is no record.
        let blank = fields.len() == 1 && fields[0].is_empty();
        let line = self.line;
        // Line breaks before the record's text (blank lines csv-core skipped) move its start.
        let leading = raw
            .iter()
            .take_while(|b| **b == b'\n' || **b == b'\r')
            .filter(|b| **b == b'\n')
            .count() as u64;
        self.line += breaks;
        if !blank {
            out.push(Record {
                line: line + leading,
                raw: text.trim_start_matches(['\n', '\r']).to_owned(),
                fields,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `text` in chunks of `size` bytes.
    fn read(format: Format, text: &str, size: usize) -> Vec<Record> {
        let mut parser = Parser::new(format);
        let mut out = Vec::new();
        for chunk in text.as_bytes().chunks(size) {
            parser.feed(chunk, &mut out).unwrap();
        }
        parser.feed(&[], &mut out).unwrap();
        out
    }

    #[test]
    fn csv_quirks_survive_any_chunking() {
        let text =
            "\u{feff}name,notes\r\n\"Lovelace, Ada\",\"said \"\"hi\"\"\nthen left\"\r\n\r\nBob,\n";
        for size in [1, 2, 3, 7, 64] {
            let records = read(Format::Csv, text, size);
            let got: Vec<(u64, Vec<String>)> =
                records.iter().map(|r| (r.line, r.fields.clone())).collect();
            assert_eq!(
                got,
                vec![
                    (1, vec!["name".to_owned(), "notes".to_owned()]),
                    (
                        2,
                        vec![
                            "Lovelace, Ada".to_owned(),
                            "said \"hi\"\nthen left".to_owned()
                        ]
                    ),
                    (5, vec!["Bob".to_owned(), String::new()]),
                ],
                "chunks of {size}"
            );
            assert_eq!(
                records[1].raw,
                "\"Lovelace, Ada\",\"said \"\"hi\"\"\nthen left\""
            );
            assert_eq!(records[2].raw, "Bob,");
        }
    }

    #[test]
    fn a_last_record_without_a_line_break_counts() {
        let records = read(Format::Csv, "a,b\n1,2", 3);
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].fields, ["1", "2"]);
    }

    #[test]
    fn ndjson_lines_keep_their_numbers() {
        let text = "{\"a\": 1}\r\n\n{\"a\": 2}\n{broken";
        for size in [1, 4, 100] {
            let records = read(Format::Ndjson, text, size);
            let got: Vec<(u64, &str)> = records.iter().map(|r| (r.line, r.raw.as_str())).collect();
            assert_eq!(got, [(1, "{\"a\": 1}"), (3, "{\"a\": 2}"), (4, "{broken")]);
        }
    }
}
