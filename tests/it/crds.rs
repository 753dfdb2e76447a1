//! The checked-in CRDs must be what the Rust types generate.

use std::path::Path;

use curio::crd::generate;

#[test]
fn checked_in_crds_match_the_rust_types() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("crds");
    let stale = generate::stale_files(&dir).expect("read crds/");
    assert!(
        stale.is_empty(),
        "crds/ is stale ({stale:?}): run `cargo run -- crds --write` and commit"
    );
}

#[test]
fn crds_check_fails_on_a_changed_file() {
    let dir = tempfile::tempdir().unwrap();
    generate::write_all(dir.path()).unwrap();
    let check = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_curio"))
            .args(["crds", "--check", "--dir"])
            .arg(dir.path())
            .output()
            .expect("run curio crds --check")
    };
    assert!(check().status.success());
    let file = dir.path().join("catalogsources.curio.dev.yaml");
    let edited = std::fs::read_to_string(&file)
        .unwrap()
        .replace("maxLength: 253", "maxLength: 254");
    std::fs::write(&file, edited).unwrap();
    let out = check();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("catalogsources.curio.dev.yaml"));
}
