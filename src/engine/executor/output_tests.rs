//! The line splitter and the output pump: lines, blocks, secrets, long lines and the tail.
use super::*;
use std::sync::Mutex;

#[derive(Default)]
struct Collect(Mutex<Vec<String>>);
impl LogSink for Collect {
    fn line(&self, line: &str) {
        self.0.lock().unwrap().push(line.to_string());
    }
}

#[test]
fn splits_across_chunks_keeps_order_and_last_partial_line() {
    let sink = Collect::default();
    let mut s = LineSplitter::new(Redactor::default());
    s.push(b"one\ntw", &sink);
    s.push(b"o\r\nthree", &sink);
    let summary = s.finish(&sink);
    assert_eq!(*sink.0.lock().unwrap(), ["one", "two", "three"]);
    assert_eq!(summary.bytes, 14);
}

#[test]
fn long_lines_are_split_and_tail_is_bounded() {
    let sink = Collect::default();
    let mut s = LineSplitter::new(Redactor::default());
    s.push(&vec![b'x'; MAX_LINE_BYTES * 2 + 5], &sink);
    for i in 0..100 {
        s.push(format!("l{i}\n").as_bytes(), &sink);
    }
    let summary = s.finish(&sink);
    let lines = sink.0.lock().unwrap();
    assert_eq!(lines[0].len(), MAX_LINE_BYTES);
    assert_eq!(lines[2], format!("{}l0", "x".repeat(5)));
    assert_eq!(summary.tail.len(), TAIL_LINES);
    assert_eq!(summary.tail.last().unwrap(), "l99");
}

#[test]
fn a_secret_across_the_line_cut_is_masked() {
    let secret = "the-secret-value-42";
    let sink = Collect::default();
    let mut s = LineSplitter::new(Redactor::new([secret]));
    // The secret starts 5 bytes before the 16 KiB cut, and arrives in two chunks.
    let mut text = "x".repeat(MAX_LINE_BYTES - 5);
    text.push_str(secret);
    text.push_str(" after\n");
    let (a, b) = text.as_bytes().split_at(MAX_LINE_BYTES);
    s.push(a, &sink);
    s.push(b, &sink);
    s.finish(&sink);
    let lines = sink.0.lock().unwrap();
    assert_eq!(lines.len(), 2);
    assert!(
        lines
            .iter()
            .all(|l| !l.contains("the-secret") && !l.contains("value-42"))
    );
    assert_eq!(lines[1], "*** after");
}

#[test]
fn a_secret_longer_than_a_piece_is_masked_wherever_it_starts() {
    let secret: String = (0..20 * 1024)
        .map(|i| (b'a' + (i % 26) as u8) as char)
        .collect();
    for before in [0, 7, MAX_LINE_BYTES - 3, MAX_LINE_BYTES, MAX_LINE_BYTES + 1] {
        let sink = Collect::default();
        let mut s = LineSplitter::new(Redactor::new([secret.as_str()]));
        let text = format!("{}{secret} after\n", "x".repeat(before));
        // In 4 KiB chunks, as a pipe delivers them.
        for chunk in text.as_bytes().chunks(4096) {
            s.push(chunk, &sink);
        }
        s.finish(&sink);
        let lines = sink.0.lock().unwrap();
        let all = lines.concat();
        assert!(
            !all.contains(&secret[..64]) && !all.contains(&secret[secret.len() - 64..]),
            "{before} bytes before: part of the secret printed"
        );
        assert!(
            all.contains("*** after"),
            "{before}: {:?}",
            &all[..64.min(all.len())]
        );
    }
}

#[test]
fn invalid_utf8_is_replaced_not_fatal() {
    let sink = Collect::default();
    let mut s = LineSplitter::new(Redactor::default());
    s.push(b"ok \xff\xfe end\n", &sink);
    s.finish(&sink);
    assert_eq!(sink.0.lock().unwrap()[0], "ok \u{fffd}\u{fffd} end");
}

/// Lines pushed in every way of cutting the stream into chunks come out the same, and
/// the same as one line at a time: the block path changes speed, not output.
#[test]
fn blocks_and_lines_give_the_same_output_for_any_chunking() {
    let secret = "hunter2-secret";
    let long = "z".repeat(MAX_LINE_BYTES + 10);
    // Runs of more lines than the tail keeps, so that whole blocks hold the tail too.
    let many = |tag: &str| (0..40).map(|i| format!("{tag}{i}\n")).collect::<String>();
    let (before, after) = (many("b"), many("a"));
    let text = format!(
        "{before}plain\nwith {secret} inside\ncr line\r\n{long}\nkey AKIAIOSFODNN7EXAMPLE\n@?\n{after}last\nno newline"
    );
    // Not UTF-8: one byte 0xFF.
    let owned: Vec<u8> = text
        .bytes()
        .map(|b| if b == b'@' { 0xff } else { b })
        .collect();
    let bytes = owned.as_slice();
    let expected = {
        let sink = Collect::default();
        let mut s = LineSplitter::new(Redactor::new([secret]));
        for b in bytes {
            s.push(std::slice::from_ref(b), &sink);
        }
        let summary = s.finish(&sink);
        (sink.0.into_inner().unwrap(), summary.tail)
    };
    assert!(expected.0.iter().all(|l| !l.contains(secret)));
    assert_eq!(expected.1.len(), TAIL_LINES);
    assert_eq!(expected.1[0], "a12");
    for size in [1, 2, 7, 64, 300, 1000, MAX_LINE_BYTES, bytes.len()] {
        let sink = Collect::default();
        let mut s = LineSplitter::new(Redactor::new([secret]));
        for chunk in bytes.chunks(size) {
            s.push(chunk, &sink);
        }
        let summary = s.finish(&sink);
        let got = (sink.0.into_inner().unwrap(), summary.tail);
        assert_eq!(got, expected, "chunks of {size}");
    }
}

/// A block of more lines than the tail keeps leaves its last lines as the tail, in order
/// with what the line-by-line path adds before and after.
#[test]
fn the_tail_keeps_its_order_across_whole_blocks_and_single_lines() {
    let many = |tag: &str, n: usize| (0..n).map(|i| format!("{tag}{i}\n")).collect::<String>();
    let sink = Collect::default();
    let mut s = LineSplitter::new(Redactor::default());
    s.push(many("a", 40).as_bytes(), &sink);
    s.push(b"cr\r\n", &sink);
    s.push(many("b", 10).as_bytes(), &sink);
    s.push(b"end", &sink);
    let tail = s.finish(&sink).tail;
    assert_eq!(tail.len(), TAIL_LINES);
    assert_eq!((tail[0].as_str(), tail[17].as_str()), ("a22", "a39"));
    assert_eq!((tail[18].as_str(), tail[19].as_str()), ("cr", "b0"));
    assert_eq!(tail[29], "end");
    let mut s = LineSplitter::new(Redactor::default());
    s.push(many("a", 40).as_bytes(), &sink);
    let tail = s.finish(&sink).tail;
    assert_eq!((tail[0].as_str(), tail[29].as_str()), ("a10", "a39"));
    let mut s = LineSplitter::new(Redactor::default());
    s.push(many("a", 40).as_bytes(), &sink);
    s.push(many("b", 10).as_bytes(), &sink);
    let tail = s.finish(&sink).tail;
    assert_eq!((tail[0].as_str(), tail[19].as_str()), ("a20", "a39"));
    assert_eq!((tail[20].as_str(), tail[29].as_str()), ("b0", "b9"));
}

/// What a sink was called with.
#[derive(Debug, PartialEq)]
enum Call {
    Line(String),
    Block(String),
    Flush,
}

/// Records each call, to see which lines went as a block.
#[derive(Default)]
struct Calls(Mutex<Vec<Call>>);
impl LogSink for Calls {
    fn line(&self, line: &str) {
        self.0.lock().unwrap().push(Call::Line(line.to_string()));
    }
    fn lines(&self, block: &str) {
        self.0.lock().unwrap().push(Call::Block(block.to_string()));
    }
    fn flush(&self) {
        self.0.lock().unwrap().push(Call::Flush);
    }
}

impl Calls {
    fn take(&self) -> Vec<Call> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// Whole lines that need no change go to the sink as one block, also after a line begun
/// in an earlier chunk has ended on its own.
#[test]
fn whole_lines_of_one_chunk_reach_the_sink_as_one_block() {
    let sink = Calls::default();
    let mut s = LineSplitter::new(Redactor::default());
    s.push(b"a\nb\nc\n", &sink);
    assert_eq!(sink.take(), [Call::Block("a\nb\nc\n".into())]);
    s.push(b"par", &sink);
    s.push(b"t\nd\ne\nf", &sink);
    assert_eq!(
        sink.take(),
        [Call::Line("part".into()), Call::Block("d\ne\n".into())]
    );
}

/// A block holding a secret, or a line over the limit, is not sent whole: the secret is
/// masked and the line cut, each found alone.
#[test]
fn a_block_with_a_secret_or_an_overlong_line_goes_line_by_line() {
    let sink = Calls::default();
    let mut s = LineSplitter::new(Redactor::new(["hunter2-secret"]));
    s.push(b"one\nsay hunter2-secret\n", &sink);
    assert_eq!(
        sink.take(),
        [Call::Line("one".into()), Call::Line("say ***".into())]
    );
    let long = "x".repeat(MAX_LINE_BYTES + 1);
    s.push(format!("{long}\nend\n").as_bytes(), &sink);
    assert_eq!(
        sink.take(),
        [
            Call::Line(long[..MAX_LINE_BYTES].into()),
            Call::Line("x".into()),
            Call::Line("end".into())
        ]
    );
}

/// Lines up to 16 KiB come whole; one byte more and the rest comes as a second line.
/// Whole in one chunk (the block path) or begun in an earlier one (line by line).
#[test]
fn a_16_kib_line_comes_whole_and_a_longer_one_in_16_kib_pieces() {
    let sink = Collect::default();
    let mut s = LineSplitter::new(Redactor::default());
    s.push(format!("{}\n", "x".repeat(16_384)).as_bytes(), &sink);
    s.push(b"x", &sink);
    s.push(format!("{}\n", "x".repeat(16_383)).as_bytes(), &sink);
    s.push(format!("{}\n", "y".repeat(16_385)).as_bytes(), &sink);
    s.finish(&sink);
    let lengths: Vec<usize> = sink.0.lock().unwrap().iter().map(String::len).collect();
    assert_eq!(lengths, [16_384, 16_384, 16_384, 1]);
}

/// A line without its newline yet goes out in pieces as it comes, once enough follows a
/// cut to see a secret across it: memory holds a piece, not the whole line.
#[test]
fn a_long_line_goes_out_in_pieces_while_it_is_still_coming() {
    let sink = Collect::default();
    let redactor = Redactor::default();
    let reach = redactor.reach();
    let mut s = LineSplitter::new(redactor);
    s.push(&vec![b'x'; MAX_LINE_BYTES + reach - 1], &sink);
    assert!(sink.0.lock().unwrap().is_empty(), "too early to cut");
    s.push(b"x", &sink);
    assert_eq!(sink.0.lock().unwrap().len(), 1, "the first piece");
}

/// One read takes up to 256 KiB: 512 KiB of lines waiting in the pipe reach the sink as
/// two blocks, each followed by a flush, and the end's flush.
#[test]
fn a_read_takes_up_to_256_kib_and_flushes_once() {
    let (reader, mut writer) = std::io::pipe().unwrap();
    nix::fcntl::fcntl(&writer, nix::fcntl::FcntlArg::F_SETPIPE_SZ(1 << 20)).unwrap();
    let line = format!("{}\n", ".".repeat(1023));
    std::io::Write::write_all(&mut writer, line.repeat(512).as_bytes()).unwrap();
    drop(writer);
    let sink = Calls::default();
    let summary = pump(reader, Redactor::default(), &sink);
    assert_eq!(summary.bytes, 512 * 1024);
    let calls: Vec<&str> = sink
        .take()
        .iter()
        .map(|c| match c {
            Call::Block(b) if b.len() == 256 * 1024 => "256 KiB",
            Call::Block(_) => "block",
            Call::Line(_) => "line",
            Call::Flush => "flush",
        })
        .collect();
    assert_eq!(calls, ["256 KiB", "flush", "256 KiB", "flush", "flush"]);
}

/// The long-line check at its edges: a block of exactly 16 KiB, and a line one byte too
/// long after a short one (the jump past a window's last newline).
#[test]
fn a_long_line_is_found_after_short_ones_and_only_when_too_long() {
    let x = |n: usize| "x".repeat(n);
    assert!(!has_long_line(
        format!("{}\n", x(MAX_LINE_BYTES - 1)).as_bytes()
    ));
    assert!(!has_long_line(
        format!("a\n{}\n", x(MAX_LINE_BYTES)).as_bytes()
    ));
    assert!(has_long_line(
        format!("a\n{}\n", x(MAX_LINE_BYTES + 1)).as_bytes()
    ));
    assert!(has_long_line(
        format!("a\nb\n{}\nc\n", x(MAX_LINE_BYTES + 1)).as_bytes()
    ));
}

#[test]
fn a_block_of_many_short_lines_keeps_every_line_and_the_tail() {
    let sink = Collect::default();
    let mut s = LineSplitter::new(Redactor::default());
    let block: String = (0..1000).map(|i| format!("{i}\n")).collect();
    s.push(block.as_bytes(), &sink);
    s.push(b"tail-a\ntail-b\n", &sink);
    let summary = s.finish(&sink);
    assert_eq!(sink.0.lock().unwrap().len(), 1002);
    assert_eq!(summary.tail.len(), TAIL_LINES);
    assert_eq!(summary.tail[0], "972");
    assert_eq!(summary.tail[TAIL_LINES - 1], "tail-b");
    assert!(has_long_line(
        format!("{}\n", "x".repeat(MAX_LINE_BYTES + 1)).as_bytes()
    ));
    assert!(!has_long_line(
        format!("{}\n", "x".repeat(MAX_LINE_BYTES)).as_bytes()
    ));
}
