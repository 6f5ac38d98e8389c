//! The packet capture's config keys (`capture`, `capture_limit`), typed
//! once by lang: good values are taken, bad ones refused at their line.

use std::collections::BTreeMap;

use peerlab_lang::{Experiment, RuntimeKeys, parse_config};

#[test]
fn capture_keys_are_typed() {
    let (raw, diags) = parse_config(
        "t.conf",
        "experiment_name = t\ncapture = true\ncapture_limit = 16MB\n",
    );
    assert!(diags.is_empty(), "{diags:?}");
    let (exp, diags) = Experiment::from_config(&raw, &BTreeMap::new());
    assert!(diags.is_empty(), "{diags:?}");
    assert_eq!(exp.runtime.capture, Some(true));
    assert_eq!(exp.runtime.capture_limit, Some(16_000_000));
    // And from a run record's strings, as the drivers read them.
    let strings: BTreeMap<String, String> = [("capture", "off"), ("capture_limit", "1GiB")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let (keys, errors) = RuntimeKeys::from_strings(&strings);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(keys.capture, Some(false));
    assert_eq!(keys.capture_limit, Some(1 << 30));
}

#[test]
fn bad_capture_values_are_refused_at_their_line() {
    for (key, bad) in [
        ("capture", "maybe"),
        ("capture_limit", "-1MB"),
        ("capture_limit", "10"),
        ("capture_limit", "lots"),
        ("capture_limit", "5XB"),
    ] {
        let text = format!("experiment_name = t\n{key} = {bad}\n");
        let (raw, diags) = parse_config("t.conf", &text);
        assert!(diags.is_empty(), "{diags:?}");
        let (_, diags) = Experiment::from_config(&raw, &BTreeMap::new());
        assert_eq!(diags.len(), 1, "{key} = {bad}: {diags:?}");
        let message = &diags[0].message;
        assert!(
            message.starts_with(&format!("bad value for `{key}`")),
            "{key} = {bad}: {message}"
        );
        assert!(message.contains(bad), "{message}");
        let at = diags[0].location.as_ref().map(|l| l.line);
        assert_eq!(at, Some(2), "{key} = {bad}: {:?}", diags[0]);
    }
}
