//! End-to-end: plugin files that are not what they seem. A truncated `.so`
//! (a library half-written by `cargo build`) is refused with a message
//! before `dlopen` maps it (mapping it killed peerlab with SIGBUS), and a
//! plugin found by name is opened by its absolute path, never through the
//! dynamic linker's search path (`LD_LIBRARY_PATH` could substitute another
//! library).

use peerlab_e2e::{Dir, workspace_plugin};

const CONF: &str = "experiment_name = \"x\"\nscenario_file = 'x.scenario'\ninstances_to_run = 2\nexperiment_time = 10\n";

/// The file offsets where `libexample.so`'s program headers say its
/// segments end, from its ELF header (64-bit little-endian).
fn segment_ends(elf: &[u8]) -> Vec<u64> {
    let u16_at = |o: usize| u64::from(u16::from_le_bytes([elf[o], elf[o + 1]]));
    let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().unwrap());
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    (0..phnum)
        .map(|i| {
            let at = (phoff + i * phentsize) as usize;
            u64_at(at + 8) + u64_at(at + 32)
        })
        .filter(|end| *end > 0)
        .collect()
}

#[test]
fn truncated_plugin_is_refused_with_a_message_not_a_signal() {
    let lib = std::fs::read(workspace_plugin("example")).unwrap();
    let ends = segment_ends(&lib);
    let last = *ends.iter().max().unwrap();
    // Cuts: inside the ELF header, inside the program headers, in the
    // middle of the segments (the old code died of SIGBUS there), one byte
    // short of the last one.
    let cuts = [
        10,
        0x48,
        (last / 8) as usize,
        (last / 2) as usize,
        last as usize - 1,
    ];
    for cut in cuts {
        let dir = Dir::new("truncated-plugin");
        dir.write("plugins/libexample.so", &lib[..cut]);
        dir.write("x.conf", CONF);
        dir.write("x.scenario", "&module example\n@0:01 greet bob\n");

        let named = dir
            .peerlab()
            .args(["modules", "example", "--plugin-path", "plugins"])
            .run();
        named
            .expect_code(2)
            .stderr_has("plugins/libexample.so")
            .stderr_has("truncated: the file is");
        assert!(
            named.stderr.contains(&format!("the file is {cut} bytes")),
            "cut at {cut}:\n{named}"
        );

        let listed = dir
            .peerlab()
            .args(["modules", "--plugin-path", "plugins"])
            .run();
        assert!(listed.code.is_some(), "killed by a signal:\n{listed}");
        listed.stdout_has("truncated: the file is");

        let check = dir
            .peerlab()
            .args(["check", "x.conf", "--plugin-path", "plugins"])
            .run();
        check
            .expect_code(1)
            .stdout_has("truncated: the file is")
            .stdout_has("was it being built?");

        let run = dir
            .peerlab()
            .args(["run", "x.conf", "--simulate", "--plugin-path", "plugins"])
            .run();
        run.expect_code(2).stderr_has("truncated: the file is");
    }
}

#[test]
fn a_plugin_found_by_name_is_opened_by_its_path_not_the_library_search_path() {
    // The experiment's directory is the working directory, so the plugin is
    // found as the relative file `libexample.so`; a decoy of the same name
    // (another plugin: gossip's) waits on LD_LIBRARY_PATH.
    let dir = Dir::new("decoy-plugin");
    std::fs::copy(
        workspace_plugin("example"),
        dir.path().join("libexample.so"),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("decoy")).unwrap();
    std::fs::copy(
        workspace_plugin("gossip"),
        dir.path().join("decoy/libexample.so"),
    )
    .unwrap();
    dir.write("x.conf", CONF);
    dir.write("x.scenario", "&module example\n@0:01 greet bob\n");
    let check = dir
        .peerlab()
        .env("LD_LIBRARY_PATH", dir.path().join("decoy"))
        .args(["check", "x.conf"])
        .run();
    check.expect_code(0).stdout_has("modules: example");
    // A path without a directory part is the same trap.
    let modules = dir
        .peerlab()
        .env("LD_LIBRARY_PATH", dir.path().join("decoy"))
        .args(["modules", "libexample.so"])
        .run();
    modules.expect_code(0).stdout_has("example ");
    assert!(
        !modules.stdout.contains("gossip"),
        "the decoy was loaded:\n{modules}"
    );
    assert!(
        modules
            .stdout
            .contains(&dir.path().canonicalize().unwrap().display().to_string()),
        "the module's source is its absolute path:\n{modules}"
    );
}
