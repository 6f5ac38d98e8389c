//! `peerlab check` on input files that would exhaust or hang the machine:
//! an include of `/dev/zero`, a FIFO, a scenario far over the size limit,
//! includes that double at each level, half a million commands and one
//! more, invalid UTF-8, a byte-order mark, a multi-megabyte bad line. Each
//! is a diagnostic with file:line, quickly, never a hang or an abort.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Run `peerlab` in `dir`; a run still going after a minute is killed and
/// fails the test (the old code hung forever on a FIFO).
fn peerlab(dir: &Path, args: &[&str]) -> Output {
    let mut child = Command::new(peerlab_e2e::peerlab_bin())
        .current_dir(dir)
        .env_remove("PEERLAB_PLUGIN_PATH")
        .env("NO_COLOR", "1")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run peerlab");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() > deadline {
            child.kill().ok();
            let out = child.wait_with_output().expect("output");
            panic!(
                "peerlab {args:?} still ran after 60 s\n{}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn check(dir: &Path, file: &str) -> (Option<i32>, String) {
    let out = peerlab(dir, &["check", "--syntax-only", "--format", "short", file]);
    (out.status.code(), stdout(&out))
}

#[test]
fn an_include_of_dev_zero_is_refused_as_a_device() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x.scenario"), "@1 a\n&include /dev/zero\n").unwrap();
    let (code, text) = check(dir.path(), "x.scenario");
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("x.scenario:2:10: error[include-unreadable]: cannot read included file `/dev/zero`: not a regular file: it is a character device"),
        "{text}"
    );
}

#[test]
fn a_fifo_is_refused_not_waited_on() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe.scenario");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo only creates the node.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    std::fs::write(
        dir.path().join("x.scenario"),
        "@1 a\n&include pipe.scenario\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("x.conf"), "scenario_file = pipe.scenario\n").unwrap();
    let (code, text) = check(dir.path(), "x.scenario");
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("x.scenario:2:10: error[include-unreadable]: cannot read included file `pipe.scenario`: not a regular file: it is a FIFO (named pipe)"),
        "{text}"
    );
    let (code, text) = check(dir.path(), "pipe.scenario");
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("pipe.scenario:1:1: error[unreadable]: cannot read `pipe.scenario`: not a regular file: it is a FIFO (named pipe)"),
        "{text}"
    );
    let (code, text) = check(dir.path(), "x.conf");
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("it is a FIFO (named pipe)"), "{text}");
}

#[test]
fn a_scenario_over_the_size_limit_is_refused_unread() {
    let dir = tempfile::tempdir().unwrap();
    // The 1 GB scenario (it aborted on allocation), sparse: NULs on
    // one line, taking no disk space; peerlab reads 16 MiB and one byte.
    let f = std::fs::File::create(dir.path().join("big.scenario")).unwrap();
    f.set_len(1 << 30).unwrap();
    std::fs::write(dir.path().join("x.scenario"), "&include big.scenario\n").unwrap();
    let (code, text) = check(dir.path(), "big.scenario");
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("big.scenario:1:1: error[file-too-large]: `big.scenario` is larger than 16 MiB, the limit for one file"),
        "{text}"
    );
    let (code, text) = check(dir.path(), "x.scenario");
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(
            "x.scenario:1:10: error[file-too-large]: `big.scenario` is larger than 16 MiB"
        ),
        "{text}"
    );
    assert!(text.len() < 4096, "{} bytes of output", text.len());
}

#[test]
fn includes_that_double_at_each_level_stop_at_the_include_limit() {
    // The 23 files, each including the next twice: 4.2 M commands
    // and 2.5 GB before; now an error at the include that crossed the limit.
    let dir = tempfile::tempdir().unwrap();
    for i in 0..23 {
        let mut text = format!("@1 c{i}\n");
        if i < 22 {
            let next = i + 1;
            text.push_str(&format!(
                "&include f{next}.scenario\n&include f{next}.scenario\n"
            ));
        }
        std::fs::write(dir.path().join(format!("f{i}.scenario")), text).unwrap();
    }
    let (code, text) = check(dir.path(), "f0.scenario");
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("f21.scenario:3:10: error[too-many-includes]: more than 1,000 includes: peerlab stops reading the scenario here"),
        "{text}"
    );
}

#[test]
fn commands_beyond_half_a_million_are_refused_at_that_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x.scenario"), "@1 a\n".repeat(500_001)).unwrap();
    let (code, text) = check(dir.path(), "x.scenario");
    assert_eq!(code, Some(1), "{}", &text[..text.len().min(2000)]);
    assert!(
        text.contains("x.scenario:500001:1: error[too-many-commands]: more than 500,000 commands (with includes expanded)"),
        "{}",
        &text[..text.len().min(2000)]
    );
}

#[test]
fn invalid_utf8_is_reported_at_its_line_and_byte() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x.scenario"), b"@1 a\n@2 caf\xe9\n").unwrap();
    std::fs::write(
        dir.path().join("x.conf"),
        b"scenario_file = x.scenario\n# \xff\n",
    )
    .unwrap();
    let (code, text) = check(dir.path(), "x.scenario");
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("x.scenario:2:7: error[invalid-utf8]: `x.scenario` is not valid UTF-8: byte 0xe9 at line 2, byte 7 of the line (byte 11 of the file)"),
        "{text}"
    );
    let (code, text) = check(dir.path(), "x.conf");
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("x.conf:2:3: error[invalid-utf8]: `x.conf` is not valid UTF-8: byte 0xff at line 2, byte 3 of the line"),
        "{text}"
    );
}

#[test]
fn a_byte_order_mark_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("x.conf"),
        "\u{feff}experiment_name = bom\nscenario_file = x.scenario\ninstances_to_run = 2\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("x.scenario"),
        "\u{feff}@1 a\n&include inc.scenario\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("inc.scenario"), "\u{feff}@2 b\n").unwrap();
    let (code, text) = check(dir.path(), "x.conf");
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("ok: x.conf\n  experiment `bom`: 2 instances"),
        "{text}"
    );
    assert!(text.contains("2 commands"), "{text}");
}

#[test]
fn a_huge_bad_line_is_not_echoed_in_full() {
    let dir = tempfile::tempdir().unwrap();
    let line = format!("@1 a\nnonsense{}\n", "y".repeat(10 << 20));
    std::fs::write(dir.path().join("x.scenario"), line).unwrap();
    for format in ["human", "short", "json"] {
        let out = peerlab(
            dir.path(),
            &["check", "--syntax-only", "--format", format, "x.scenario"],
        );
        let text = stdout(&out);
        assert_eq!(out.status.code(), Some(1));
        assert!(text.len() < 8192, "{format}: {} bytes", text.len());
        assert!(text.contains("x.scenario"), "{format}: {text}");
        assert!(text.contains('…'), "{format}: {text}");
    }
}
