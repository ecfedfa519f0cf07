//! Tidy tests: rules about the source itself, checked by reading it (after rust-analyzer's
//! `tidy.rs`). Each names the architecture invariant it holds (ARCHITECTURE.md).

use std::path::{Path, PathBuf};

fn sources(under: &str) -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
        for entry in std::fs::read_dir(dir).expect("a source directory") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("a source file");
                out.push((path, text));
            }
        }
    }
    let mut out = Vec::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(under);
    if root.is_file() {
        out.push((root.clone(), std::fs::read_to_string(&root).expect("a source file")));
    } else {
        walk(&root, &mut out);
    }
    assert!(!out.is_empty(), "no sources under {under}");
    out
}

/// The files under `under` (outside `except`) that contain any of `needles`.
fn offenders(under: &str, except: &[&str], needles: &[&str]) -> Vec<String> {
    sources(under)
        .into_iter()
        .filter(|(p, _)| !except.iter().any(|e| p.to_string_lossy().contains(e)))
        .filter(|(_, text)| needles.iter().any(|n| text.contains(n)))
        .map(|(p, _)| p.display().to_string())
        .collect()
}

#[test]
fn sql_and_the_database_driver_stay_in_the_store() {
    assert_eq!(offenders("src", &["src/store/", "src/tidy.rs"], &["sqlx::", "use sqlx"]), Vec::<String>::new());
}

#[test]
fn the_domain_knows_no_http() {
    let http = ["axum::", "StatusCode", "crate::http", "hyper::", "HeaderValue"];
    assert_eq!(offenders("src/domain", &[], &http), Vec::<String>::new());
}

#[test]
fn the_domain_reads_time_only_through_the_injected_clock() {
    let system = ["SystemClock", "SystemTime::now", "Utc::now", "OffsetDateTime::now"];
    assert_eq!(offenders("src/domain", &[], &system), Vec::<String>::new());
}

#[test]
fn the_signer_never_touches_storage() {
    assert_eq!(offenders("src/signer.rs", &[], &["crate::store", "Store"]), Vec::<String>::new());
}
