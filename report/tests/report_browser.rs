//! report.html in a real browser: headless Chromium (Debian's `chromium`,
//! installed by .ci/run) opens the report of a synthetic run, and the test
//! checks through the DevTools protocol, after the load event, that every
//! image decoded (`naturalWidth > 0`) and nothing was logged as an error;
//! it also saves a screenshot. A deliberately broken copy of the page shows
//! the check catches a broken image and a console error.
//!
//! The protocol runs over `--remote-debugging-pipe` (fds 3 and 4,
//! NUL-separated JSON): no port, no WebSocket. Chromium is found through
//! `PEERLAB_CHROMIUM`, then `/usr/bin/chromium`, then `chromium` on PATH;
//! without it the test fails saying what to install. Skipping it is an
//! explicit opt-out: `PEERLAB_SKIP_BROWSER=1` (scripts/test lists skips).

mod common;

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use peerlab_report::testing::png_size;
use peerlab_report::{ReportOptions, process_run};
use serde_json::{Value, json};

/// The whole browser session must finish within this.
const DEADLINE: Duration = Duration::from_secs(90);

fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PEERLAB_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let usr = PathBuf::from("/usr/bin/chromium");
    if usr.exists() {
        return Some(usr);
    }
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join("chromium"))
        .find(|p| p.exists())
}

/// A headless Chromium driven over the DevTools pipe.
struct Browser {
    child: Child,
    to: std::io::PipeWriter,
    from: mpsc::Receiver<Value>,
    next_id: u64,
    /// Events seen while waiting for replies.
    events: VecDeque<Value>,
    started: Instant,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn launch(exe: &Path) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let (cmd_read, cmd_write) = std::io::pipe().unwrap();
        let (out_read, out_write) = std::io::pipe().unwrap();
        let cmd_fd: OwnedFd = cmd_read.into();
        let out_fd: OwnedFd = out_write.into();
        let (a, b) = (cmd_fd.as_raw_fd(), out_fd.as_raw_fd());
        let mut command = Command::new(exe);
        command
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                "--window-size=1300,2200",
                "--remote-debugging-pipe",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: between fork and exec we only call async-signal-safe
        // fcntl/dup2 on fds this process owns. Duplicating above 10 first
        // means neither source fd can already be 3 or 4 (where dup2 would
        // be a no-op that keeps close-on-exec set).
        unsafe {
            command.pre_exec(move || {
                let a2 = libc::fcntl(a, libc::F_DUPFD, 10);
                let b2 = libc::fcntl(b, libc::F_DUPFD, 10);
                if a2 < 0 || b2 < 0 || libc::dup2(a2, 3) < 0 || libc::dup2(b2, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
        drop(cmd_fd);
        drop(out_fd);

        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(out_read);
            let mut buf = Vec::new();
            while r.read_until(0, &mut buf).map(|n| n > 0).unwrap_or(false) {
                if buf.last() == Some(&0) {
                    buf.pop();
                }
                if let Ok(v) = serde_json::from_slice::<Value>(&buf)
                    && tx.send(v).is_err()
                {
                    return;
                }
                buf.clear();
            }
        });
        Browser {
            child,
            to: cmd_write,
            from: rx,
            next_id: 1,
            events: VecDeque::new(),
            started: Instant::now(),
            _profile: profile,
        }
    }

    fn recv(&mut self) -> Value {
        let left = DEADLINE.saturating_sub(self.started.elapsed());
        match self.from.recv_timeout(left) {
            Ok(v) => v,
            Err(e) => panic!(
                "chromium stopped answering ({e:?}) after {:?}",
                self.started.elapsed()
            ),
        }
    }

    /// Sends a command (to a page session when `session` is set) and waits for its reply.
    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&msg).unwrap();
        bytes.push(0);
        self.to.write_all(&bytes).unwrap();
        loop {
            let v = self.recv();
            if v.get("id").and_then(Value::as_u64) == Some(id) {
                if let Some(err) = v.get("error") {
                    panic!("{method} failed: {err}");
                }
                return v["result"].clone();
            }
            self.events.push_back(v);
        }
    }

    /// Waits for an event of `method` on `session`, keeping the others.
    fn wait_event(&mut self, session: &str, method: &str) -> Value {
        if let Some(i) = self
            .events
            .iter()
            .position(|e| is_event(e, session, method))
        {
            return self.events.remove(i).unwrap_or_default();
        }
        loop {
            let v = self.recv();
            if is_event(&v, session, method) {
                return v;
            }
            self.events.push_back(v);
        }
    }

    /// Console errors, exceptions and error log entries seen so far.
    fn errors(&mut self, session: &str) -> Vec<String> {
        let mut out = Vec::new();
        for e in self.events.iter().filter(|e| e["sessionId"] == session) {
            let p = &e["params"];
            match e["method"].as_str().unwrap_or_default() {
                "Runtime.consoleAPICalled"
                    if matches!(p["type"].as_str(), Some("error" | "assert")) =>
                {
                    out.push(format!(
                        "console.{}: {}",
                        p["type"].as_str().unwrap_or("?"),
                        p["args"]
                    ));
                }
                "Runtime.exceptionThrown" => {
                    out.push(format!("exception: {}", p["exceptionDetails"]))
                }
                "Log.entryAdded" if p["entry"]["level"] == "error" => {
                    out.push(format!("log: {}", p["entry"]["text"]));
                }
                _ => {}
            }
        }
        out
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_event(v: &Value, session: &str, method: &str) -> bool {
    v["method"] == method && v["sessionId"] == session
}

/// What the page showed.
struct PageCheck {
    images: u64,
    loaded: u64,
    errors: Vec<String>,
    screenshot: Vec<u8>,
    /// What `probe` (a JavaScript expression giving a string) returned.
    probe: String,
    /// A smaller screenshot of the part `clip` selected, if any.
    clip: Option<Vec<u8>>,
}

/// Opens `page` in a new tab, waits for the load event, then inspects it.
fn check_page(b: &mut Browser, page: &Path) -> PageCheck {
    check_page_with(b, page, "''", None)
}

/// As [`check_page`], evaluating `probe` after the load and shooting the
/// element `clip` names (id, height in CSS pixels) at 60% scale.
fn check_page_with(
    b: &mut Browser,
    page: &Path,
    probe: &str,
    clip: Option<(&str, u32)>,
) -> PageCheck {
    let target = b.call(None, "Target.createTarget", json!({"url": "about:blank"}));
    let target_id = target["targetId"].as_str().unwrap().to_string();
    let attached = b.call(
        None,
        "Target.attachToTarget",
        json!({"targetId": target_id, "flatten": true}),
    );
    let s = attached["sessionId"].as_str().unwrap().to_string();
    for m in ["Page.enable", "Runtime.enable", "Log.enable"] {
        b.call(Some(&s), m, json!({}));
    }
    let url = format!("file://{}", page.canonicalize().unwrap().display());
    let nav = b.call(Some(&s), "Page.navigate", json!({"url": url}));
    assert!(nav.get("errorText").is_none(), "navigation failed: {nav}");
    b.wait_event(&s, "Page.loadEventFired");
    let expr = "JSON.stringify({images: document.images.length, \
                loaded: Array.from(document.images).filter(i => i.complete && i.naturalWidth > 0).length})";
    let r = b.call(
        Some(&s),
        "Runtime.evaluate",
        json!({"expression": expr, "returnByValue": true}),
    );
    let counts: Value = serde_json::from_str(
        r["result"]["value"]
            .as_str()
            .expect("evaluate returned no string"),
    )
    .unwrap();
    let probed = b.call(
        Some(&s),
        "Runtime.evaluate",
        json!({"expression": probe, "returnByValue": true}),
    );
    let probe = probed["result"]["value"]
        .as_str()
        .unwrap_or_else(|| panic!("the probe returned no string: {probed}"))
        .to_string();
    let shot = b.call(Some(&s), "Page.captureScreenshot", json!({"format": "png"}));
    let screenshot = base64_decode(shot["data"].as_str().expect("no screenshot data"));
    let clip = clip.map(|(id, height)| {
        let r = b.call(
            Some(&s),
            "Runtime.evaluate",
            json!({"expression": format!(
                "(function(){{var r=document.getElementById('{id}').getBoundingClientRect();return JSON.stringify({{x:r.left+window.scrollX,y:r.top+window.scrollY,w:r.width}});}})()"
            ), "returnByValue": true}),
        );
        let at: Value = serde_json::from_str(r["result"]["value"].as_str().unwrap()).unwrap();
        let shot = b.call(
            Some(&s),
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true,
                   "clip": {"x": at["x"], "y": at["y"], "width": at["w"], "height": height, "scale": 0.6}}),
        );
        base64_decode(shot["data"].as_str().expect("no screenshot data"))
    });
    let errors = b.errors(&s);
    b.call(None, "Target.closeTarget", json!({"targetId": target_id}));
    PageCheck {
        images: counts["images"].as_u64().unwrap(),
        loaded: counts["loaded"].as_u64().unwrap(),
        errors,
        screenshot,
        probe,
        clip,
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .expect("screenshot is not base64")
}

#[test]
fn report_loads_in_headless_chromium_with_every_image_and_no_errors() {
    if std::env::var("PEERLAB_SKIP_BROWSER").as_deref() == Ok("1") {
        eprintln!("SKIPPED (PEERLAB_SKIP_BROWSER=1): the report's browser test");
        return;
    }
    let exe = match chromium() {
        Some(exe) if exe.is_file() => exe,
        other => panic!(
            "chromium is not installed{}: install it (`apt-get install chromium fonts-dejavu-core`; \
             .ci/run does) or point PEERLAB_CHROMIUM at it, or set PEERLAB_SKIP_BROWSER=1 to skip this test",
            match other {
                Some(p) => format!(" (PEERLAB_CHROMIUM={} is not a file)", p.display()),
                None => String::new(),
            }
        ),
    };
    let (_tmp, dir) = common::small_run();
    process_run(&dir, &ReportOptions::default()).unwrap();
    let report = dir.join("report.html");

    // A copy with one image broken and a console error, to prove the check bites.
    let html = std::fs::read_to_string(&report).unwrap();
    let marker = "src=\"data:image/png;base64,";
    let at = html.find(marker).unwrap() + marker.len();
    let broken = format!(
        "{}AAAA{}",
        &html[..at],
        &html[at + 40..].replace(
            "</body>",
            "<script>console.error('deliberate')</script></body>"
        )
    );
    let broken_path = dir.join("broken.html");
    std::fs::write(&broken_path, broken).unwrap();

    let mut b = Browser::launch(&exe);
    let good = check_page(&mut b, &report);
    let bad = check_page(&mut b, &broken_path);
    drop(b);

    let shot_path =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report-browser-screenshot.png");
    std::fs::write(&shot_path, &good.screenshot).unwrap();
    let (w, h) = png_size(&good.screenshot).unwrap();
    assert!(w >= 800 && h >= 600, "screenshot is {w}x{h}");
    eprintln!("screenshot: {} ({w}x{h})", shot_path.display());

    assert_eq!(good.images, 8, "report.html should show 8 plots");
    assert_eq!(
        good.loaded, good.images,
        "images that did not load in chromium"
    );
    assert!(good.errors.is_empty(), "console errors: {:#?}", good.errors);

    assert_eq!(
        (bad.images, bad.loaded),
        (8, 7),
        "the check missed a broken image"
    );
    assert!(
        bad.errors.iter().any(|e| e.contains("deliberate")),
        "the check missed a console error: {:?}",
        bad.errors
    );
}

/// What a report with module metrics shows in the browser: every metric's
/// section with its plot(s) and its row in the summary tables, one row per
/// instance in the per-instance table, which sorts when a column is
/// clicked; every image decodes and nothing is logged as an error.
/// `PEERLAB_UPDATE_SCREENSHOT=1` also writes docs/report-metrics.png.
#[test]
fn a_report_with_module_metrics_shows_every_metric_in_chromium() {
    if std::env::var("PEERLAB_SKIP_BROWSER").as_deref() == Ok("1") {
        eprintln!("SKIPPED (PEERLAB_SKIP_BROWSER=1): the report's browser test");
        return;
    }
    let Some(exe) = chromium().filter(|e| e.is_file()) else {
        panic!(
            "chromium is not installed: install it (`apt-get install chromium fonts-dejavu-core`) or set PEERLAB_SKIP_BROWSER=1"
        );
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("0001-synthetic");
    let mut spec = peerlab_report::synth::SynthSpec::new(6).with_module_metrics();
    spec.experiment = "pingpong".into();
    spec.duration_s = 40;
    peerlab_report::synth::write_run(&dir, &spec).unwrap();
    let s = process_run(
        &dir,
        &ReportOptions {
            post_process_cmd: Some(
                "mkdir -p plots/extra && cp plots/metric-synth.rtt-cdf.svg plots/extra/rtt.svg"
                    .into(),
            ),
            ..ReportOptions::default()
        },
    )
    .unwrap();
    assert!(s.hook.as_ref().is_some_and(|h| h.ok), "{:?}", s.hook);
    let names = [
        "synth.shares",
        "synth.time_to_total",
        "synth.pending",
        "synth.retries",
        "synth.rtt",
    ];
    // Per metric: its section's image count and whether a summary table
    // links it; the per-instance table's rows, and its first column after
    // a click on the header sorts it descending (two clicks).
    let probe = format!(
        "(function(){{var names={names:?};var out={{}};names.forEach(function(n){{\
           var sec=document.getElementById('metric-'+n.replace(/[^A-Za-z0-9]/g,'-'));\
           out[n]={{images: sec?sec.querySelectorAll('img').length:-1,\
                   listed: !!document.querySelector('#metric-values a[href=\"#'+(sec?sec.id:'x')+'\"], #metric-observations a[href=\"#'+(sec?sec.id:'x')+'\"]')}};}});\
           var t=document.getElementById('per-instance-table');var th=t.querySelector('thead th');\
           th.click();th.click();\
           out.rows=t.tBodies[0].rows.length;out.first=t.tBodies[0].rows[0].cells[0].textContent;\
           out.links=t.querySelectorAll('tbody a').length;\
           out.extra=document.querySelectorAll('#post-process ~ .gallery img').length;\
           return JSON.stringify(out);}})()"
    );
    let mut b = Browser::launch(&exe);
    let page = check_page_with(
        &mut b,
        &dir.join("report.html"),
        &probe,
        Some(("metrics", 1500)),
    );
    drop(b);
    assert!(page.errors.is_empty(), "console errors: {:#?}", page.errors);
    assert_eq!(page.loaded, page.images, "images that did not load");
    // 8 general plots + 3 + 2 x 2 metric plots + the hook's image.
    assert_eq!(page.images, 8 + 3 + 4 + 1);
    let got: Value = serde_json::from_str(&page.probe).unwrap();
    for n in names {
        let want = if n.ends_with("rtt") || n.ends_with("time_to_total") {
            2
        } else {
            1
        };
        assert_eq!(got[n]["images"], want, "{n}: {got}");
        assert_eq!(
            got[n]["listed"], true,
            "{n} is not in a summary table: {got}"
        );
    }
    assert_eq!(got["rows"], 6, "{got}");
    assert_eq!(got["first"], "6", "sorting by instance, descending: {got}");
    assert_eq!(
        got["links"], 12,
        "each instance links its .out and .err: {got}"
    );
    assert_eq!(got["extra"], 1, "{got}");

    let clip = page.clip.unwrap();
    let (w, h) = png_size(&clip).unwrap();
    assert!(w >= 600 && h >= 600, "{w}x{h}");
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report-metrics.png");
    std::fs::write(&out, &clip).unwrap();
    eprintln!(
        "screenshot of the metrics: {} ({w}x{h}, {} bytes)",
        out.display(),
        clip.len()
    );
    if std::env::var("PEERLAB_UPDATE_SCREENSHOT").as_deref() == Ok("1") {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/report-metrics.png");
        assert!(
            clip.len() < 300_000,
            "{} bytes is too big for docs/",
            clip.len()
        );
        std::fs::write(docs, &clip).unwrap();
    }
}
