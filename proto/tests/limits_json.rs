//! The browser page reads the protocol's limits from
//! `web/client/src/limits.json`; this test writes that file from
//! `confab_proto::limits` and fails when the checked-in copy differs, so
//! the page and the bridge cannot disagree. `CONFAB_BLESS=1` rewrites it.

use std::path::Path;

#[test]
fn the_page_reads_the_same_limits_as_the_bridge() {
    let mut json = String::from("{\n");
    for (i, (name, value)) in confab_proto::limits::ALL.iter().enumerate() {
        let comma = if i + 1 < confab_proto::limits::ALL.len() {
            ","
        } else {
            ""
        };
        json.push_str(&format!("  \"{name}\": {value}{comma}\n"));
    }
    json.push_str("}\n");

    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/client/src/limits.json");
    if std::env::var_os("CONFAB_BLESS").is_some() {
        std::fs::write(&path, &json).expect("writing limits.json");
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == json,
        "web/client/src/limits.json differs from confab_proto::limits: rerun this test with \
         CONFAB_BLESS=1, rebuild the page (npm run build in web/client) and commit both.\n\
         expected:\n{json}\nfound:\n{checked_in}"
    );
}
