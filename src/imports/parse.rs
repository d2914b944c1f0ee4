//! Reads an import file as it arrives, chunk by chunk, in constant memory: CSV records
//! (RFC 4180: quoted fields with commas, quotes and line breaks, CRLF or LF, a UTF-8 BOM) or
//! NDJSON lines, each with the line it starts on and its raw text for the error report.
//!
//! A record longer than [`MAX_RECORD`] is read past, not held: it comes out as a record
//! marked `too_long`, without its text or fields, and the records after it keep their lines.

use csv_core::{ReadRecordResult, Reader};

/// The longest record kept, in bytes (without its line break): a longer row fails alone.
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
    /// The record as it was written, without its line break (empty when too long).
    pub raw: String,
    /// CSV: the fields; NDJSON: empty (the raw line is the JSON).
    pub fields: Vec<String>,
    /// Longer than [`MAX_RECORD`]: read past, neither its text nor its fields kept.
    pub too_long: bool,
    /// Bytes that are not UTF-8 were replaced: in which field (CSV; 0 for an NDJSON line).
    pub not_utf8: Option<usize>,
}

/// A record's text as PostgreSQL can keep it (for the error file): a NUL character, which
/// its text cannot hold, shown as U+FFFD. The fields keep theirs, to be refused by name.
fn storable(text: String) -> String {
    if text.contains('\0') {
        text.replace('\0', "\u{FFFD}")
    } else {
        text
    }
}

impl Record {
    fn too_long(line: u64) -> Self {
        Record {
            line,
            raw: String::new(),
            fields: Vec::new(),
            too_long: true,
            not_utf8: None,
        }
    }
}

pub struct Parser {
    format: Format,
    csv: Reader,
    /// The current record's text as consumed so far (its line break included, at most
    /// `MAX_RECORD` bytes and the two of a CRLF).
    raw: Vec<u8>,
    output: Vec<u8>,
    ends: Vec<usize>,
    /// How much of `output` and `ends` the current record has filled.
    written: usize,
    ended: usize,
    /// The line the current record's bytes start on.
    line: u64,
    /// CSV: line breaks consumed before the current record's text (blank lines csv-core
    /// skips), and whether that text has begun.
    leading: u64,
    in_text: bool,
    /// CSV: line breaks within the current record's text (quoted ones, its own).
    breaks: u64,
    /// The current record is longer than `MAX_RECORD`: read on to its end, nothing kept.
    skipping: bool,
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
            leading: 0,
            in_text: false,
            breaks: 0,
            skipping: false,
            started: false,
            head: Vec::new(),
        }
    }

    /// Feeds the next chunk (an empty one at the end of the file), appending complete
    /// records to `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<Record>) {
        if !self.started {
            // A byte order mark may come split over the first chunks.
            self.head.extend_from_slice(input);
            if self.head.len() < 3 && !input.is_empty() {
                return;
            }
            self.started = true;
            let head = std::mem::take(&mut self.head);
            let body = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&head);
            if !body.is_empty() {
                self.dispatch(body, out);
            }
            if input.is_empty() {
                self.dispatch(&[], out);
            }
            return;
        }
        self.dispatch(input, out);
    }

    fn dispatch(&mut self, input: &[u8], out: &mut Vec<Record>) {
        match self.format {
            Format::Ndjson => self.feed_lines(input, out),
            Format::Csv => self.feed_csv(input, out),
        }
    }

    /// Keeps `bytes` of the current record, or, once it is too long, none of it.
    fn keep(&mut self, bytes: &[u8]) {
        if self.skipping {
            return;
        }
        // Room for a line break (CRLF) after the longest record kept.
        if self.raw.len() + bytes.len() > MAX_RECORD + 2 {
            self.skipping = true;
            self.raw = Vec::new();
            self.written = 0;
            self.ended = 0;
        } else {
            self.raw.extend_from_slice(bytes);
        }
    }

    fn feed_lines(&mut self, input: &[u8], out: &mut Vec<Record>) {
        let end = input.is_empty();
        let mut rest = input;
        loop {
            match rest.iter().position(|b| *b == b'\n') {
                Some(at) => {
                    self.keep(&rest[..at]);
                    self.end_line(out);
                    rest = &rest[at + 1..];
                }
                None => {
                    self.keep(rest);
                    if end && (self.skipping || !self.raw.is_empty()) {
                        self.end_line(out);
                    }
                    return;
                }
            }
        }
    }

    fn end_line(&mut self, out: &mut Vec<Record>) {
        let raw = std::mem::take(&mut self.raw);
        let text = raw.strip_suffix(b"\r").unwrap_or(&raw);
        if std::mem::replace(&mut self.skipping, false) || text.len() > MAX_RECORD {
            out.push(Record::too_long(self.line));
        } else {
            let not_utf8 = std::str::from_utf8(text).is_err().then_some(0);
            let text = String::from_utf8_lossy(text);
            if !text.trim().is_empty() {
                out.push(Record {
                    line: self.line,
                    raw: storable(text.into_owned()),
                    fields: Vec::new(),
                    too_long: false,
                    not_utf8,
                });
            }
        }
        self.line += 1;
    }

    fn feed_csv(&mut self, input: &[u8], out: &mut Vec<Record>) {
        let mut rest = input;
        loop {
            if self.skipping {
                // What csv-core writes of a record too long is dropped as it comes.
                self.written = 0;
                self.ended = 0;
            }
            // A record may span chunks: csv-core goes on writing where it stopped.
            let (result, nin, nout, nend) = self.csv.read_record(
                rest,
                &mut self.output[self.written..],
                &mut self.ends[self.ended..],
            );
            self.take_csv(&rest[..nin]);
            rest = &rest[nin..];
            self.written += nout;
            self.ended += nend;
            match result {
                ReadRecordResult::InputEmpty | ReadRecordResult::End => return,
                ReadRecordResult::OutputFull if !self.skipping => {
                    let len = self.output.len();
                    self.output.resize(len * 2, 0);
                }
                ReadRecordResult::OutputEndsFull if !self.skipping => {
                    let len = self.ends.len();
                    self.ends.resize(len * 2, 0);
                }
                ReadRecordResult::OutputFull | ReadRecordResult::OutputEndsFull => {}
                ReadRecordResult::Record => self.emit(out),
            }
        }
    }

    /// Counts the line breaks of bytes csv-core consumed, and keeps the record's text.
    fn take_csv(&mut self, mut bytes: &[u8]) {
        let breaks = |bytes: &[u8]| bytes.iter().filter(|b| **b == b'\n').count() as u64;
        if !self.in_text {
            let blank = bytes
                .iter()
                .take_while(|b| **b == b'\n' || **b == b'\r')
                .count();
            self.leading += breaks(&bytes[..blank]);
            bytes = &bytes[blank..];
            self.in_text = !bytes.is_empty();
        }
        self.breaks += breaks(bytes);
        self.keep(bytes);
    }

    fn emit(&mut self, out: &mut Vec<Record>) {
        // Line breaks before the record's text (blank lines csv-core skipped) move its start.
        let line = self.line + self.leading;
        self.line += self.leading + self.breaks;
        self.leading = 0;
        self.breaks = 0;
        self.in_text = false;
        let (written, ended) = (self.written, self.ended);
        self.written = 0;
        self.ended = 0;
        let raw = std::mem::take(&mut self.raw);
        let mut text: &[u8] = &raw;
        while let [rest @ .., b'\n' | b'\r'] = text {
            text = rest;
        }
        if std::mem::replace(&mut self.skipping, false) || text.len() > MAX_RECORD {
            out.push(Record::too_long(line));
            return;
        }
        let data = &self.output[..written];
        let mut fields = Vec::with_capacity(ended);
        let mut not_utf8 = None;
        let mut start = 0;
        for &end in &self.ends[..ended] {
            let bytes = &data[start..end];
            if not_utf8.is_none() && std::str::from_utf8(bytes).is_err() {
                not_utf8 = Some(fields.len());
            }
            fields.push(String::from_utf8_lossy(bytes).into_owned());
            start = end;
        }
        // A blank line is no record.
        let blank = fields.len() == 1 && fields[0].is_empty();
        if !blank {
            out.push(Record {
                line,
                raw: storable(String::from_utf8_lossy(text).into_owned()),
                fields,
                too_long: false,
                not_utf8,
            });
        }
    }

    /// The bytes the parser's buffers hold: flat, whatever the records it reads past.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.raw.capacity()
            + self.output.capacity()
            + self.ends.capacity() * std::mem::size_of::<usize>()
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
            parser.feed(chunk, &mut out);
        }
        parser.feed(&[], &mut out);
        out
    }

    /// Each record's line, and its text (`None`: too long).
    fn lines(records: &[Record]) -> Vec<(u64, Option<&str>)> {
        records
            .iter()
            .map(|r| {
                assert_eq!(r.too_long, r.raw.is_empty() && r.fields.is_empty());
                (r.line, (!r.too_long).then_some(r.raw.as_str()))
            })
            .collect()
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

    #[test]
    fn a_csv_record_too_long_is_read_past_in_any_chunking() {
        let half = "x".repeat(MAX_RECORD / 2);
        let text = format!(
            "name,notes\r\na,1\r\nbig,\"{half},\n{half}\"\r\n\r\nb,2\r\n{}",
            "z".repeat(MAX_RECORD + 1)
        );
        for size in [1, 7, 4096, MAX_RECORD + 3, text.len()] {
            let records = read(Format::Csv, &text, size);
            assert_eq!(
                lines(&records),
                [
                    (1, Some("name,notes")),
                    (2, Some("a,1")),
                    (3, None),
                    (6, Some("b,2")),
                    (7, None)
                ],
                "chunks of {size}"
            );
            assert_eq!(records[3].fields, ["b", "2"]);
        }
    }

    #[test]
    fn an_ndjson_line_too_long_is_read_past_in_any_chunking() {
        let text = format!(
            "{{\"a\": 1}}\n{{\"b\": \"{}\"}}\r\n\n{{\"a\": 2}}\n{}",
            "x".repeat(MAX_RECORD),
            "y".repeat(MAX_RECORD + 1)
        );
        for size in [1, 7, 4096, MAX_RECORD + 3, text.len()] {
            let records = read(Format::Ndjson, &text, size);
            assert_eq!(
                lines(&records),
                [
                    (1, Some("{\"a\": 1}")),
                    (2, None),
                    (4, Some("{\"a\": 2}")),
                    (5, None)
                ],
                "chunks of {size}"
            );
        }
    }

    #[test]
    fn a_record_of_the_longest_length_is_kept_whole() {
        let longest = "x".repeat(MAX_RECORD);
        for size in [5, 4096, 3 * MAX_RECORD] {
            let csv = read(
                Format::Csv,
                &format!("{longest}\r\n{longest}x\r\nb\r\n"),
                size,
            );
            assert_eq!(
                lines(&csv),
                [(1, Some(longest.as_str())), (2, None), (3, Some("b"))]
            );
            let ndjson = read(Format::Ndjson, &format!("{longest}\r\n{longest}x\nb"), size);
            assert_eq!(
                lines(&ndjson),
                [(1, Some(longest.as_str())), (2, None), (3, Some("b"))]
            );
        }
    }

    #[test]
    fn a_record_read_past_is_not_held() {
        // 16 MiB in one record: the parser's buffers stay near the longest record kept.
        let mut field = "abc,".repeat(MAX_RECORD / 16);
        field.push_str(&"d".repeat(MAX_RECORD * 15));
        for (format, text) in [
            (Format::Csv, format!("h\n\"{field}\"\nafter\n")),
            (Format::Ndjson, format!("{{}}\n\"{field}\"\n{{}}\n")),
        ] {
            let mut parser = Parser::new(format);
            let mut out = Vec::new();
            let mut most = 0;
            for chunk in text.as_bytes().chunks(64 * 1024) {
                parser.feed(chunk, &mut out);
                most = most.max(parser.held());
            }
            parser.feed(&[], &mut out);
            assert!(most < 5 * MAX_RECORD, "{format}: {most} bytes held");
            assert_eq!(
                out.iter().map(|r| (r.line, r.too_long)).collect::<Vec<_>>(),
                [(1, false), (2, true), (3, false)],
                "{format}"
            );
        }
    }
}
