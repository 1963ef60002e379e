//! The platform boundary: only `src/platform/` may use the JavaScript binding crates
//! (`wasm_bindgen`, `wasm_bindgen_futures`, `js_sys`, `web_sys`, the worker crate's
//! `worker_sys`, and the worker crate's re-exports of them). Every other module speaks Rust
//! and `worker` types, so the bindings an upgrade of `worker` or wasm-bindgen can break sit in
//! one place (`src/platform/mod.rs`).
//!
//! The check reads the sources: any code line outside the layer that names one of those
//! crates as a path segment fails the test with its `file:line`. Comment and doc lines are
//! skipped; `serde_wasm_bindgen` and the like are other names and do not match.

// Helpers outside `#[test]` functions are not covered by clippy.toml's test allowances.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};

/// The crates only the platform layer may name.
const CONFINED: [&str; 5] = [
    "wasm_bindgen",
    "wasm_bindgen_futures",
    "js_sys",
    "web_sys",
    "worker_sys",
];

/// The layer, relative to the crate root.
const LAYER: &str = "src/platform";

/// Files outside the layer still allowed to use the bindings, each until its binding moves
/// into the layer (remove an entry once its file is clean: the test fails on a stale entry).
const PENDING: [&str; 0] = [];

/// The confined crates a line of code names, if it is code (not a comment or doc line).
fn confined_names(line: &str) -> Vec<&'static str> {
    let code = line.trim_start();
    if code.starts_with("//") {
        return Vec::new();
    }
    // A trailing comment after code: what follows `//` outside a string literal is cut (a
    // line with a quote before its `//` is kept whole, which can only add a finding).
    let code = match (code.find("//"), code.find('"')) {
        (Some(comment), quote) if quote.is_none_or(|q| q > comment) => {
            code.get(..comment).unwrap_or(code)
        }
        _ => code,
    };
    let mut found = Vec::new();
    for segment in code.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if let Some(name) = CONFINED.iter().find(|name| **name == segment) {
            found.push(*name);
        }
    }
    found
}

fn rust_files(dir: &Path, into: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {dir:?}: {e}"));
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, into);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            into.push(path);
        }
    }
}

/// `(file, line, names)` for every use outside the layer, PENDING files included.
fn uses_outside_layer(root: &Path) -> Vec<(String, usize, Vec<&'static str>)> {
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    files.sort();
    let mut found = Vec::new();
    for file in files {
        let relative = file
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if relative.starts_with(&format!("{LAYER}/")) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for (i, line) in text.lines().enumerate() {
            let names = confined_names(line);
            if !names.is_empty() {
                found.push((relative.clone(), i + 1, names));
            }
        }
    }
    found
}

#[test]
fn only_the_platform_layer_uses_the_binding_crates() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(
        root.join(LAYER).join("mod.rs").is_file(),
        "{LAYER}/mod.rs is missing: the boundary has nothing to guard"
    );
    let found = uses_outside_layer(root);
    let outside: Vec<String> = found
        .iter()
        .filter(|(file, _, _)| !PENDING.contains(&file.as_str()))
        .map(|(file, line, names)| format!("{file}:{line}: {}", names.join(", ")))
        .collect();
    assert!(
        outside.is_empty(),
        "JavaScript bindings used outside {LAYER}/ (move the binding into an adapter there):\n{}",
        outside.join("\n")
    );
    let stale: Vec<&str> = PENDING
        .iter()
        .copied()
        .filter(|pending| !found.iter().any(|(file, _, _)| file == pending))
        .collect();
    assert!(
        stale.is_empty(),
        "PENDING lists files that no longer use the bindings (remove them): {stale:?}"
    );
}

#[test]
fn the_check_sees_paths_and_skips_comments_and_other_names() {
    for (line, names) in [
        ("use wasm_bindgen::JsValue;", vec!["wasm_bindgen"]),
        ("    let x: js_sys::Array = y;", vec!["js_sys"]),
        ("fn f(r: web_sys::Request) {}", vec!["web_sys"]),
        (
            "let s: &worker::worker_sys::D1Database;",
            vec!["worker_sys"],
        ),
        (
            "use worker::wasm_bindgen::prelude::*;",
            vec!["wasm_bindgen"],
        ),
        (
            "use wasm_bindgen_futures::JsFuture;",
            vec!["wasm_bindgen_futures"],
        ),
        (
            "#[wasm_bindgen::prelude::wasm_bindgen(js_name = f)]",
            vec!["wasm_bindgen", "wasm_bindgen"],
        ),
        ("let x = f(); // js_sys would do this", vec![]),
        ("/// Like `web_sys::Request`, but cheaper.", vec![]),
        ("//! wasm_bindgen's own conversion", vec![]),
        ("let v = serde_wasm_bindgen::from_value(x);", vec![]),
        ("let my_js_sys_thing = 1;", vec![]),
    ] {
        assert_eq!(confined_names(line), names, "{line}");
    }
}
