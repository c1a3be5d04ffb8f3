use std::collections::BTreeSet;

use hashmesh_protocol::{Category, Entry, Fingerprint, FingerprintKind, MemberId, RecordId, Status};

use super::*;

const PDQ: &str = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";
const MD5: &str = "0123456789abcdef0123456789abcdef";

fn cat(name: &str) -> Category {
    name.parse().expect("valid")
}

fn fp(text: &str) -> Fingerprint {
    text.parse().expect("valid")
}

fn read(format: Format, defaults: &Defaults, text: impl AsRef<[u8]>) -> (Vec<Parsed>, Vec<RowError>) {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for row in rows(format, defaults, text.as_ref()).expect("readable") {
        match row.expect("no I/O error") {
            Ok(p) => good.push(p),
            Err(e) => bad.push(e),
        }
    }
    (good, bad)
}

fn csam() -> Defaults {
    Defaults { kind: None, category: Some(cat("csam")) }
}

/// (fingerprint, category) of every entry: what "the same set" means across formats.
fn set(entries: &[Entry]) -> BTreeSet<(Fingerprint, Category)> {
    entries.iter().flat_map(|e| e.fingerprints.iter().map(|f| (f.clone(), e.category.clone()))).collect()
}

fn sample() -> Vec<Entry> {
    let entry = |fps: &[&str], category: &str, links: &[&str]| Entry {
        fingerprints: fps.iter().map(|f| fp(f)).collect(),
        category: cat(category),
        links: links.iter().map(|l| (*l).to_owned()).collect(),
        note: Some("seen, twice; \"quoted\"".into()),
        expires_at: Some(4_102_444_800_000),
    };
    let url = crate::hashers::url::fingerprint("https://example.com/a?b=1").expect("url").to_string();
    vec![
        entry(&[&format!("pdq:{PDQ}"), &format!("md5:{MD5}")], "csam", &["https://example.com/p/1"]),
        entry(&[&format!("md5:{}", "ab".repeat(16))], "drugs", &[]),
        entry(&[&url], "harmful_behavior", &["https://example.com/a?b=1"]),
        entry(&[&format!("pdq:{}", "0f".repeat(32))], "benign", &[]),
    ]
}

fn write_all(format: Format, entries: &[Entry]) -> (String, u64) {
    let mut writer = Writer::new(format, None, Vec::new()).expect("header");
    for (i, e) in entries.iter().enumerate() {
        let status = if i % 2 == 0 { Status::Verified } else { Status::Pending };
        writer.entry(RecordId([i as u8; 32]), MemberId([7; 32]), status, e).expect("written");
    }
    let (written, unwritable) = (writer.written, writer.unwritable);
    // The sample: 2 + 1 + 1 + 1 fingerprints; plain and jsonl write all of them.
    let fingerprints = entries.iter().map(|e| e.fingerprints.len() as u64).sum::<u64>();
    assert_eq!(written + unwritable, fingerprints, "{format}: every fingerprint written or counted");
    (String::from_utf8(writer.finish().expect("finished")).expect("utf-8"), unwritable)
}

#[test]
fn every_format_reads_back_what_it_writes() {
    let entries = sample();
    for format in Format::ALL {
        let (text, unwritable) = write_all(format, &entries);
        // plain and te name no category in the file: they read back with the one given.
        let per_category: Vec<Entry> = if matches!(format, Format::Plain | Format::Te) {
            entries.iter().filter(|e| e.category == cat("csam")).cloned().collect()
        } else {
            entries.clone()
        };
        let (text, expected) = if matches!(format, Format::Plain | Format::Te) {
            let (t, _) = write_all(format, &per_category);
            (t, per_category)
        } else {
            (text, entries.clone())
        };
        let (good, bad) = read(format, &csam(), &text);
        assert!(bad.is_empty(), "{format}: {bad:?}\n{text}");
        let got: Vec<Entry> = good.into_iter().map(|p| p.entry).collect();
        assert_eq!(set(&got), set(&expected), "{format}:\n{text}");
        assert_eq!(unwritable, 0, "{format}: every sample kind is writable");
    }
}

#[test]
fn csv_and_jsonl_keep_links_notes_and_expiry() {
    let entries = sample();
    for format in [Format::Csv, Format::Jsonl] {
        let (text, _) = write_all(format, &entries);
        let (good, _) = read(format, &csam(), &text);
        let first = good.iter().find(|p| p.entry.category == cat("drugs")).expect("drugs row");
        assert_eq!(first.entry.note.as_deref(), Some("seen, twice; \"quoted\""), "{format}");
        assert_eq!(first.entry.expires_at, Some(4_102_444_800_000), "{format}");
        let linked = good.iter().find(|p| p.entry.category == cat("harmful_behavior")).expect("url row");
        assert_eq!(linked.entry.links, vec!["https://example.com/a?b=1".to_owned()], "{format}");
    }
}

#[test]
fn te_writes_signal_types_python_threatexchange_knows() {
    let (text, unwritable) = write_all(Format::Te, &sample());
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.contains(&format!("pdq {PDQ}").as_str()), "{text}");
    assert!(lines.contains(&format!("video_md5 {MD5}").as_str()), "{text}");
    // A url hash is written as the link that hashes to it.
    assert!(lines.contains(&"url https://example.com/a?b=1"), "{text}");
    assert_eq!(unwritable, 0);
    // A kind it has no name for is counted, not written.
    let sha1 = Entry { fingerprints: vec![fp(&format!("sha1:{}", "aa".repeat(20)))], ..sample()[1].clone() };
    let (text, unwritable) = write_all(Format::Te, std::slice::from_ref(&sha1));
    assert_eq!((text.as_str(), unwritable), ("", 1));
    let (text, unwritable) = write_all(Format::Hma, &[sha1]);
    assert_eq!((text.as_str(), unwritable), ("signal_type,signal_str,collab,category,tags\n", 1));
}

#[test]
fn hma_exports_say_the_opinion_and_the_status() {
    let (text, _) = write_all(Format::Hma, &sample());
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows[0], "signal_type,signal_str,collab,category,tags");
    // Verified (even rows in write_all) is a positive opinion, pending an investigation seed,
    // and an allow-list entry a negative one whatever its status.
    assert!(rows.contains(&format!("pdq,{PDQ},CSAM,POSITIVE_CLASS,verified").as_str()), "{text}");
    assert!(
        rows.contains(&format!("video_md5,{},DRUGS,INVESTIGATION_SEED,pending", "ab".repeat(16)).as_str()),
        "{text}"
    );
    assert!(
        rows.contains(&format!("pdq,{},BENIGN,NEGATIVE_CLASS,pending", "0f".repeat(32)).as_str()),
        "{text}"
    );
}

#[test]
fn hma_rows_map_banks_to_categories_and_negative_opinions_to_benign() {
    let text = format!(
        "signal_type,signal_str,collab,category,tags\n\
         pdq,{PDQ},CSAM,POSITIVE_CLASS,\n\
         video_md5,{MD5},DRUGS,INVESTIGATION_SEED,a b\n\
         pdq,{},MEMES,NEGATIVE_CLASS,\n\
         raw_text,hello,CSAM,POSITIVE_CLASS,\n\
         pdq,{PDQ},not-a-bank!,POSITIVE_CLASS,\n",
        "0f".repeat(32)
    );
    let (good, bad) = read(Format::Hma, &Defaults::default(), &text);
    let got: Vec<(String, &str)> =
        good.iter().map(|p| (p.entry.fingerprints[0].to_string(), p.entry.category.as_str())).collect();
    assert_eq!(
        got,
        vec![
            (format!("pdq:{PDQ}"), "csam"),
            (format!("md5:{MD5}"), "drugs"),
            (format!("pdq:{}", "0f".repeat(32)), "benign")
        ]
    );
    assert_eq!(bad.iter().map(|b| b.line).collect::<Vec<_>>(), vec![5, 6]);
    assert!(bad[0].reason.contains("raw_text"), "{}", bad[0].reason);
    assert!(bad[1].reason.contains("not-a-bank!"), "{}", bad[1].reason);
}

#[test]
fn te_follows_python_threatexchange_parsing() {
    let url = "https://example.com/x";
    let text = format!(
        "pdq {PDQ}\n\nvideo_md5 {}\nmd5 {MD5}\nurl {url}\n# a comment line\nraw_text hello there\nnospace\n",
        MD5.to_uppercase()
    );
    let (good, bad) = read(Format::Te, &csam(), &text);
    let fps: Vec<String> = good.iter().map(|p| p.entry.fingerprints[0].to_string()).collect();
    let url_fp = crate::hashers::url::fingerprint(url).expect("url").to_string();
    assert_eq!(fps, vec![format!("pdq:{PDQ}"), format!("md5:{MD5}"), format!("md5:{MD5}"), url_fp]);
    assert_eq!(good[3].entry.links, vec![url.to_owned()]);
    assert_eq!(good.iter().map(|p| p.line).collect::<Vec<_>>(), vec![1, 3, 4, 5]);
    assert_eq!(bad.iter().map(|b| b.line).collect::<Vec<_>>(), vec![7, 8]);
    // A collab with a default signal type takes whole lines as signals.
    let (good, bad) = read(Format::Te, &Defaults { kind: Some(FingerprintKind::Pdq), ..csam() }, PDQ);
    assert_eq!((good.len(), bad.len()), (1, 0));
}

#[test]
fn bad_rows_are_reported_with_line_and_reason_and_do_not_stop_the_read() {
    let long_note = "n".repeat(5000);
    let text = format!(
        "hash,kind,category,note,expires\n\
         {PDQ},pdq,csam,,\n\
         zz,pdq,csam,,\n\
         {PDQ},,csam,,\n\
         {MD5},md5,Not A Category,,\n\
         {MD5},md5,drugs,{long_note},\n\
         {MD5},md5,drugs,,tomorrow\n\
         {MD5},md5,drugs,,2027-01-31T00:00:00Z\n"
    );
    let (good, bad) = read(Format::Csv, &Defaults::default(), &text);
    assert_eq!(good.iter().map(|p| p.line).collect::<Vec<_>>(), vec![2, 8]);
    assert_eq!(good[1].entry.expires_at, Some(1_801_353_600_000));
    let reasons: Vec<(u64, &str)> = bad.iter().map(|b| (b.line, b.reason.as_str())).collect();
    assert_eq!(reasons.iter().map(|r| r.0).collect::<Vec<_>>(), vec![3, 4, 5, 6, 7], "{reasons:?}");
    assert!(reasons[1].1.contains("no kind"), "{}", reasons[1].1);
    assert!(reasons[2].1.contains("category"), "{}", reasons[2].1);
    assert!(reasons[3].1.contains("note"), "{}", reasons[3].1);
    assert!(reasons[4].1.contains("RFC 3339"), "{}", reasons[4].1);

    let mut text = format!("{PDQ}\n").into_bytes();
    text.extend_from_slice(b"\xff\xfe\n");
    text.extend_from_slice(format!("md5:{MD5}\n{}\n", "a".repeat(300 * 1024)).as_bytes());
    let (good, bad) = read(Format::Plain, &Defaults { kind: Some(FingerprintKind::Pdq), ..csam() }, &text);
    assert_eq!(good.iter().map(|p| p.line).collect::<Vec<_>>(), vec![1, 3]);
    assert_eq!(bad.iter().map(|b| b.line).collect::<Vec<_>>(), vec![2, 4]);
    assert!(bad[1].reason.contains("longer than"), "{}", bad[1].reason);

    let (good, bad) = read(Format::Jsonl, &csam(), "{\"fingerprints\": [\"md5:00\"]}\n\n{not json\n");
    assert_eq!(
        (good.len(), bad.iter().map(|b| b.line).collect::<Vec<_>>()),
        (0, vec![1, 3]),
        "a blank line is no row"
    );

    // A long line that is a valid entry (32 links of about 2 KB) is read whole.
    let links: Vec<String> =
        (0..32).map(|i| format!("https://example.com/{i}/{}", "x".repeat(1970))).collect();
    let line = serde_json::json!({ "fingerprints": [format!("md5:{MD5}")], "links": links }).to_string();
    assert!(line.len() > 60_000);
    let (good, bad) = read(Format::Jsonl, &csam(), format!("{line}\n"));
    assert_eq!((good.len(), bad), (1, vec![]));
    assert_eq!(good[0].entry.links.len(), 32);
}

#[test]
fn lists_without_categories_need_one_given() {
    for format in [Format::Plain, Format::Te] {
        let err = rows(format, &Defaults::default(), &b""[..]).err().expect("refused");
        assert!(err.contains("--category"), "{err}");
    }
    let err = rows(Format::Csv, &csam(), &b"a,b\n1,2\n"[..]).err().expect("no hash column");
    assert!(err.contains("hash"), "{err}");
}

#[test]
fn names_round_trip() {
    for format in Format::ALL {
        assert_eq!(format.name().parse::<Format>(), Ok(format));
    }
    assert!("xml".parse::<Format>().is_err());
    use crate::signals::{SignalType, bank_category, bank_name};
    for category in ["csam", "drugs", "harmful_behavior", "benign", "x9", "9lives"] {
        assert_eq!(bank_category(&bank_name(&cat(category))), Some(cat(category)));
    }
    assert_eq!(bank_name(&cat("9lives")), "_9LIVES");
    for kind in FingerprintKind::ALL {
        if let Some(t) = SignalType::of_kind(kind) {
            assert_eq!(kind_of_signal_type(t.name()), Some(kind));
        }
    }
    assert_eq!(kind_of_signal_type("md5"), Some(FingerprintKind::Md5));
    assert_eq!(kind_of_signal_type("sha256"), Some(FingerprintKind::Sha256));
    assert_eq!(bank_category("_X"), Some(cat("_x")), "only a digit after _ was added by bank_name");
    assert_eq!(SignalType::Pdq.distance(7), "7");
    assert_eq!(SignalType::VideoMd5.distance(0), "-");
    assert_eq!(Format::Csv.to_string(), "csv");
    assert_eq!(
        Format::ALL.map(Format::content_type),
        [
            "text/plain; charset=utf-8",
            "text/csv; charset=utf-8",
            "text/plain; charset=utf-8",
            "text/csv; charset=utf-8",
            "application/x-ndjson"
        ]
    );
    assert_eq!(kind_of_signal_type("raw_text"), None);
}

/// A reader that is interrupted once (a signal), then fails for real after its data.
struct Flaky<'a> {
    data: &'a [u8],
    interrupted: bool,
}

impl std::io::Read for Flaky<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if !self.interrupted {
            self.interrupted = true;
            return Err(std::io::ErrorKind::Interrupted.into());
        }
        if self.data.is_empty() {
            return Err(std::io::Error::other("connection reset"));
        }
        let n = buf.len().min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

#[test]
fn an_interrupted_read_is_retried_and_a_failed_one_ends_the_rows() {
    let text = format!("md5:{MD5}\n");
    let mut rows =
        rows(Format::Plain, &csam(), Flaky { data: text.as_bytes(), interrupted: false }).expect("rows");
    assert!(matches!(rows.next(), Some(Ok(Ok(_)))), "the row after the interruption is read");
    assert!(matches!(rows.next(), Some(Err(e)) if e.to_string() == "connection reset"));
}

#[test]
fn a_csv_that_cannot_be_read_ends_the_rows_with_the_error() {
    let text = format!("hash,kind,category\n{MD5},md5,csam\n");
    let mut rows =
        rows(Format::Csv, &Defaults::default(), Flaky { data: text.as_bytes(), interrupted: false })
            .expect("header read");
    assert!(matches!(rows.next(), Some(Ok(Ok(_)))));
    assert!(matches!(rows.next(), Some(Err(e)) if e.to_string().contains("connection reset")));
}

#[test]
fn lines_up_to_the_limit_are_read_and_comments_skipped() {
    // A line of exactly MAX_LINE_BYTES with its newline: a (bad) row, not "too long".
    let long = format!("#\n{}\n{}\n", "a".repeat(MAX_LINE_BYTES - 1), "a".repeat(MAX_LINE_BYTES));
    let (good, bad) = read(Format::Plain, &Defaults { kind: Some(FingerprintKind::Md5), ..csam() }, long);
    assert!(good.is_empty());
    assert_eq!(bad.len(), 2, "the comment is no row");
    assert!(!bad[0].reason.contains("longer than"), "{}", bad[0].reason);
    assert!(bad[1].reason.contains("longer than"), "{}", bad[1].reason);
}

#[test]
fn an_export_of_one_kind_holds_only_that_kind() {
    let mut writer = Writer::new(Format::Plain, Some(FingerprintKind::Md5), Vec::new()).expect("writer");
    for e in sample() {
        writer.entry(RecordId([0; 32]), MemberId([7; 32]), Status::Pending, &e).expect("written");
    }
    assert_eq!(writer.written, 2);
    let text = String::from_utf8(writer.finish().expect("done")).expect("utf-8");
    assert_eq!(text, format!("md5:{MD5}\nmd5:{}\n", "ab".repeat(16)));
}
