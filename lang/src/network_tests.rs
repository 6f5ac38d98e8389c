//! Tests of the network model's values and topology files.

use super::*;

fn file(name: &str, text: &str) -> SourceFile {
    SourceFile::new(name, text)
}

#[test]
fn bandwidths_take_units_and_refuse_negative_or_zero() {
    assert_eq!(parse_bandwidth("10Mbit"), Ok(10e6));
    assert_eq!(parse_bandwidth("500kbit"), Ok(500e3));
    assert_eq!(parse_bandwidth("1Gbit"), Ok(1e9));
    assert_eq!(parse_bandwidth("8000bit"), Ok(8000.0));
    assert_eq!(parse_bandwidth("2.5mbps"), Ok(2.5e6));
    assert_eq!(parse_bandwidth("unlimited"), Ok(f64::INFINITY));
    let neg = parse_bandwidth("-1Mbit").unwrap_err().to_string();
    assert!(neg.contains("cannot be negative"), "{neg}");
    assert!(parse_bandwidth("0Mbit").is_err());
    for bad in ["10", "10MB", "fast", "", "Mbit", "10Xbit"] {
        assert!(parse_bandwidth(bad).is_err(), "{bad}");
    }
    assert_eq!(format_bandwidth(10e6), "10Mbit");
    assert_eq!(format_bandwidth(1.5e3), "1.5kbit");
}

#[test]
fn byte_sizes() {
    assert_eq!(parse_bytes("1500"), Ok(1500));
    assert_eq!(parse_bytes("64kB"), Ok(64_000));
    assert_eq!(parse_bytes("1MiB"), Ok(1 << 20));
    for bad in ["-1", "0", "1GB", "x"] {
        assert!(parse_bytes(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_csv_matrix_reads_and_a_missing_pair_is_refused_at_its_line() {
    let ok = "# one-way latency, ms\nfrom\\to,a,b,c\na,5,20,30\nb,20,5,40ms\nc,30,40,5\n";
    let (spec, diags) = parse_topology(&file("t.csv", ok));
    assert!(diags.is_empty(), "{diags:?}");
    let spec = spec.unwrap();
    assert_eq!(spec.groups, ["a", "b", "c"]);
    assert_eq!(spec.latency(1, 2), Duration::from_millis(40));
    assert_eq!(spec.latency(2, 2), Duration::from_millis(5));

    let missing = "from\\to,a,b,c\na,5,20,30\nb,20,5,\nc,30,40,5\n";
    let (spec, diags) = parse_topology(&file("t.csv", missing));
    assert!(spec.is_none());
    assert_eq!(diags.len(), 1, "{diags:?}");
    let d = &diags[0];
    assert_eq!(d.code, Some("topology-missing-pair"));
    assert_eq!(d.location.as_ref().unwrap().line, 3);
    assert!(d.message.contains("from `b` to `c`"), "{}", d.message);

    let no_row = "from\\to,a,b\na,5,20\n";
    let (spec, diags) = parse_topology(&file("t.csv", no_row));
    assert!(spec.is_none());
    assert!(
        diags[0].message.contains("no row for group `b`"),
        "{diags:?}"
    );

    let negative = "x,a\na,-3\n";
    let (_, diags) = parse_topology(&file("t.csv", negative));
    assert!(diags[0].message.contains("cannot be negative"), "{diags:?}");
}

#[test]
fn json_matrix_and_coordinates() {
    let m = "{\n  \"latency_ms\": {\n    \"a\": {\"a\": 1, \"b\": \"20ms\"},\n    \"b\": {\"b\": 1}\n  }\n}\n";
    let (spec, diags) = parse_topology(&file("t.json", m));
    assert!(spec.is_none());
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!(diags[0].code, Some("topology-missing-pair"));
    assert_eq!(diags[0].location.as_ref().unwrap().line, 4);

    let c =
        "{\"coordinates\": {\"a\": [0, 0], \"b\": [3, 4]}, \"ms_per_unit\": 10, \"intra_ms\": 2}";
    let (spec, diags) = parse_topology(&file("t.json", c));
    assert!(diags.is_empty(), "{diags:?}");
    let spec = spec.unwrap();
    assert_eq!(spec.latency(0, 1), Duration::from_millis(50));
    assert_eq!(spec.latency(1, 1), Duration::from_millis(2));

    let (_, diags) = parse_topology(&file("t.json", "{\n  \"latency_ms\": [\n"));
    assert_eq!(diags[0].location.as_ref().unwrap().line, 3, "{diags:?}");
}

#[test]
fn assignments() {
    let spec = builtin("world").unwrap();
    let rr = Topology::assign(spec.clone(), &Assignment::RoundRobin, 7).unwrap();
    assert_eq!(rr.of_instance, [0, 1, 2, 0, 1, 2, 0]);
    assert_eq!(rr.latency(1, 3), Some(Duration::from_millis(115)));
    assert_eq!(rr.latency(1, 8), None);
    let how = Assignment::parse("asia:0.5, europe:0.25, north_america:0.25").unwrap();
    let t = Topology::assign(spec.clone(), &how, 10).unwrap();
    assert_eq!(t.of_instance.len(), 10);
    assert_eq!(t.of_instance.iter().filter(|&&g| g == 2).count(), 5);
    let bad = Assignment::parse("europe:0.5, mars:0.5").unwrap();
    let e = Topology::assign(spec, &bad, 4).unwrap_err();
    assert!(e.contains("group `mars`"), "{e}");
    assert!(Assignment::parse("europe:0.5").is_err());
    assert!(Assignment::parse("europe").is_err());
    assert_eq!(Assignment::parse("round_robin"), Ok(Assignment::RoundRobin));
}
